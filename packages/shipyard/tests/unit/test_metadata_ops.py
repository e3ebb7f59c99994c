"""Tests for shipyard.metadata_ops: the metadata operation semantics of Trigger.dev v4."""

from __future__ import annotations

import copy
import datetime
import random
from typing import Any

import pytest

from shipyard.errors import MetadataTooLargeError, SerializationError, ValidationError
from shipyard.metadata_ops import (
    METADATA_MAX_BYTES,
    MetadataOp,
    apply_ops,
    check_metadata_size,
    collapse_ops,
    op_from_dict,
    op_to_dict,
)


def _apply(current: dict[str, Any], *ops: MetadataOp) -> dict[str, Any]:
    result, unapplied = apply_ops(current, ops)
    assert unapplied == []
    return result


# --- set / del / replace ----------------------------------------------------------------------


def test_set_top_level_and_overwrite() -> None:
    assert _apply({"a": 1}, MetadataOp("set", "a", 2), MetadataOp("set", "b", [1])) == {
        "a": 2,
        "b": [1],
    }


def test_set_plain_key_with_dots_is_literal() -> None:
    assert _apply({}, MetadataOp("set", "a.b", 1)) == {"a.b": 1}


def test_set_path_creates_intermediate_dicts() -> None:
    assert _apply({}, MetadataOp("set", "$.progress.percent", 50)) == {"progress": {"percent": 50}}
    assert _apply({"progress": {"step": 1}}, MetadataOp("set", "$.progress.percent", 5)) == {
        "progress": {"step": 1, "percent": 5}
    }


def test_set_path_with_array_indexes() -> None:
    start = {"items": [{"done": False}, {"done": False}]}
    assert _apply(start, MetadataOp("set", "$.items[1].done", True)) == {
        "items": [{"done": False}, {"done": True}]
    }
    assert _apply(start, MetadataOp("set", "$.items[2]", {"done": True}))["items"][2] == {
        "done": True
    }
    assert _apply({}, MetadataOp("set", "$.rows[0].x", 1)) == {"rows": [{"x": 1}]}


def test_set_path_that_cannot_be_placed_is_unapplied_and_leaves_no_trace() -> None:
    through_scalar = MetadataOp("set", "$.a.b", 1)
    past_end = MetadataOp("set", "$.items[5]", 1)
    fresh_past_end = MetadataOp("set", "$.new.list[3]", 1)
    index_on_dict = MetadataOp("set", "$.obj[0]", 1)
    start = {"a": 3, "items": [0], "obj": {}}
    result, unapplied = apply_ops(start, [through_scalar, past_end, fresh_past_end, index_on_dict])
    assert result == start
    assert unapplied == [through_scalar, past_end, fresh_past_end, index_on_dict]


def test_del_top_level_only() -> None:
    assert _apply({"a": 1, "b": 2}, MetadataOp("del", "a")) == {"b": 2}
    assert _apply({"b": 2}, MetadataOp("del", "missing")) == {"b": 2}
    with pytest.raises(ValidationError, match="top-level keys only"):
        MetadataOp("del", "$.a.b")


def test_replace() -> None:
    assert _apply({"a": 1}, MetadataOp("replace", value={"z": [1]})) == {"z": [1]}


@pytest.mark.parametrize("value", [[1, 2], "text", None, 3])
def test_replace_requires_object(value: Any) -> None:
    with pytest.raises(ValidationError, match="needs an object"):
        MetadataOp("replace", value=value)


# --- append / remove / increment --------------------------------------------------------------


def test_append_cases() -> None:
    assert _apply({}, MetadataOp("append", "log", "a")) == {"log": ["a"]}
    assert _apply({"log": ["a"]}, MetadataOp("append", "log", "b")) == {"log": ["a", "b"]}
    assert _apply({"log": "a"}, MetadataOp("append", "log", "b")) == {"log": ["a", "b"]}
    assert _apply({"log": None}, MetadataOp("append", "log", 1)) == {"log": [None, 1]}
    assert _apply({}, MetadataOp("append", "$.run.steps", {"n": 1})) == {
        "run": {"steps": [{"n": 1}]}
    }


def test_remove_all_deep_equal() -> None:
    start = {"xs": [{"a": [1]}, 1, {"a": [1]}, True, 1.0, "1", {"a": [2]}]}
    assert _apply(start, MetadataOp("remove", "xs", {"a": [1]})) == {
        "xs": [1, True, 1.0, "1", {"a": [2]}]
    }
    # JSON equality: 1 == 1.0 but true is not 1 and "1" is not 1.
    assert _apply(start, MetadataOp("remove", "xs", 1)) == {
        "xs": [{"a": [1]}, {"a": [1]}, True, "1", {"a": [2]}]
    }
    assert _apply({"xs": [1, 2]}, MetadataOp("remove", "xs", 3)) == {"xs": [1, 2]}


def test_remove_on_non_array_is_unapplied() -> None:
    on_scalar = MetadataOp("remove", "x", 1)
    on_missing = MetadataOp("remove", "nope", 1)
    result, unapplied = apply_ops({"x": 1}, [on_scalar, on_missing])
    assert result == {"x": 1}
    assert unapplied == [on_scalar, on_missing]


def test_increment_and_decrement() -> None:
    assert _apply({"n": 5}, MetadataOp("increment", "n", 2)) == {"n": 7}
    assert _apply({"n": 5}, MetadataOp("increment", "n", -7)) == {"n": -2}
    assert _apply({}, MetadataOp("increment", "n", 3)) == {"n": 3}
    assert _apply({"n": "x"}, MetadataOp("increment", "n", 1)) == {"n": 1}
    assert _apply({"n": True}, MetadataOp("increment", "n", 1)) == {"n": 1}
    assert _apply({"n": 1.5}, MetadataOp("increment", "n", 1)) == {"n": 2.5}
    assert _apply({}, MetadataOp("increment", "$.stats.done", 1)) == {"stats": {"done": 1}}


@pytest.mark.parametrize("value", ["1", None, True, float("nan")])
def test_increment_requires_number(value: Any) -> None:
    with pytest.raises(ValidationError, match="finite number"):
        MetadataOp("increment", "n", value)


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["__proto__", "constructor", "prototype", "$.a.__proto__"])
def test_unsafe_keys_rejected(key: str) -> None:
    with pytest.raises(ValidationError, match="Unsafe metadata key"):
        MetadataOp("set", key, 1)


def test_unsafe_keys_in_values_rejected() -> None:
    with pytest.raises(ValidationError, match="Unsafe metadata key '__proto__'"):
        MetadataOp("set", "a", {"ok": [{"__proto__": 1}]})
    with pytest.raises(ValidationError, match="Unsafe metadata key 'constructor'"):
        MetadataOp("replace", value={"constructor": {}})
    with pytest.raises(ValidationError, match="Unsafe metadata key 'prototype'"):
        MetadataOp("append", "a", {"prototype": 1})


def test_bad_kind_key_and_path() -> None:
    with pytest.raises(ValidationError, match="Unknown metadata operation 'update'"):
        MetadataOp("update", "a", 1)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="needs a non-empty string key"):
        MetadataOp("set", None, 1)
    with pytest.raises(ValidationError, match="needs a non-empty string key"):
        MetadataOp("append", "", 1)
    with pytest.raises(ValidationError, match="Invalid metadata path"):
        MetadataOp("set", "$.a..b", 1)
    with pytest.raises(ValidationError, match="Invalid metadata path"):
        MetadataOp("set", "$.", 1)


# --- immutability -----------------------------------------------------------------------------


def test_input_and_op_values_not_mutated_or_aliased() -> None:
    current = {"list": [1, 2], "nested": {"a": 1}}
    snapshot = copy.deepcopy(current)
    value = [9]
    ops = [
        MetadataOp("append", "list", 3),
        MetadataOp("set", "$.nested.b", 2),
        MetadataOp("remove", "list", 1),
        MetadataOp("set", "v", value),
        MetadataOp("append", "v", 10),
    ]
    result, _ = apply_ops(current, ops)
    assert current == snapshot
    assert value == [9]
    assert result == {"list": [2, 3], "nested": {"a": 1, "b": 2}, "v": [9, 10]}
    result["nested"]["a"] = 100
    assert current["nested"] == {"a": 1}


# --- collapse ---------------------------------------------------------------------------------


def test_collapse_rules() -> None:
    ops = [
        MetadataOp("increment", "n", 1),
        MetadataOp("increment", "n", 2),
        MetadataOp("increment", "n", -1),
        MetadataOp("set", "s", 1),
        MetadataOp("set", "s", 2),
        MetadataOp("del", "d"),
        MetadataOp("del", "d"),
        MetadataOp("increment", "m", 1),
        MetadataOp("increment", "n", 5),
        MetadataOp("set", "t", 1),
        MetadataOp("set", "s", 3),
        MetadataOp("append", "a", 1),
        MetadataOp("append", "a", 1),
    ]
    assert collapse_ops(ops) == [
        MetadataOp("increment", "n", 2),
        MetadataOp("set", "s", 2),
        MetadataOp("del", "d"),
        MetadataOp("increment", "m", 1),
        MetadataOp("increment", "n", 5),
        MetadataOp("set", "t", 1),
        MetadataOp("set", "s", 3),
        MetadataOp("append", "a", 1),
        MetadataOp("append", "a", 1),
    ]
    assert collapse_ops([]) == []


_KEYS = ["a", "b", "$.c.d", "$.c", "$.e[0]", "$.e[1]"]


def _random_op(rng: random.Random) -> MetadataOp:
    kind = rng.choice(["set", "del", "replace", "append", "remove", "increment", "increment"])
    key = rng.choice(_KEYS)
    value: Any = rng.choice([0, 1, 2, "x", [1], {"k": 1}, None])
    if kind == "del":
        return MetadataOp("del", rng.choice(["a", "b", "c", "e"]))
    if kind == "replace":
        return MetadataOp("replace", value=rng.choice([{}, {"a": 1}, {"c": {"d": 2}, "e": []}]))
    if kind == "increment":
        return MetadataOp("increment", key, rng.randint(-3, 3))
    if kind == "remove":
        return MetadataOp("remove", key, rng.choice([1, "x", [1]]))
    return MetadataOp(kind, key, value)  # type: ignore[arg-type]


def test_collapse_preserves_result_over_random_sequences() -> None:
    rng = random.Random(20240601)
    starts: list[dict[str, Any]] = [{}, {"a": 1, "c": {"d": [1, 1]}, "e": [5]}, {"c": 3}]
    collapsed_any = 0
    for _ in range(3_000):
        # Runs of the same kind and key make collapsing likely.
        ops: list[MetadataOp] = []
        for _ in range(rng.randint(0, 12)):
            op = _random_op(rng)
            ops.extend([op] * rng.choice([1, 1, 2, 3]))
        start = rng.choice(starts)
        collapsed = collapse_ops(ops)
        collapsed_any += len(collapsed) < len(ops)
        assert apply_ops(start, collapsed)[0] == apply_ops(start, ops)[0], ops
    assert collapsed_any > 1_000


# --- size -------------------------------------------------------------------------------------


def test_check_metadata_size_exact() -> None:
    assert check_metadata_size({}) == 2
    assert check_metadata_size({"a": 1}) == 7
    assert check_metadata_size({"é": "☃"}) == 12
    assert check_metadata_size({"d": datetime.date(2024, 1, 2)}) == len('{"d":"2024-01-02"}')


def test_check_metadata_size_limit() -> None:
    assert METADATA_MAX_BYTES == 262_144
    overhead = len('{"k":""}')
    at_limit = {"k": "x" * (METADATA_MAX_BYTES - overhead)}
    assert check_metadata_size(at_limit) == METADATA_MAX_BYTES
    over = {"k": "x" * (METADATA_MAX_BYTES - overhead + 1)}
    with pytest.raises(MetadataTooLargeError) as info:
        check_metadata_size(over)
    assert info.value.context["limit"] == 262_144
    assert info.value.context["size"] == 262_145
    assert "262,145 bytes" in str(info.value)
    assert "256 KiB" in str(info.value)


def test_check_metadata_size_unserialisable() -> None:
    with pytest.raises(SerializationError, match=r"^Metadata is not JSON-serialisable: .*\$\.s"):
        check_metadata_size({"s": {1, 2}})


# --- storage round trip -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "stored"),
    [
        (MetadataOp("set", "$.a.b", [1]), {"kind": "set", "key": "$.a.b", "value": [1]}),
        (MetadataOp("del", "a"), {"kind": "del", "key": "a"}),
        (MetadataOp("replace", value={"x": 1}), {"kind": "replace", "value": {"x": 1}}),
        (MetadataOp("increment", "n", -2), {"kind": "increment", "key": "n", "value": -2}),
        (MetadataOp("set", "a", None), {"kind": "set", "key": "a", "value": None}),
    ],
)
def test_op_dict_round_trip(op: MetadataOp, stored: dict[str, Any]) -> None:
    assert op_to_dict(op) == stored
    assert op_from_dict(stored) == op


def test_op_from_dict_rejects_bad_input() -> None:
    with pytest.raises(ValidationError, match="Unknown field"):
        op_from_dict({"kind": "set", "key": "a", "value": 1, "extra": 2})
    with pytest.raises(ValidationError, match="needs a 'kind'"):
        op_from_dict({"key": "a"})
    with pytest.raises(ValidationError, match="must be an object"):
        op_from_dict([1])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="Unknown metadata operation"):
        op_from_dict({"kind": "bogus", "key": "a"})
