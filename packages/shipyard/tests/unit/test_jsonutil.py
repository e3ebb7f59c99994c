"""Tests for shipyard.jsonutil: strict compact JSON with clear errors."""

from __future__ import annotations

import datetime
import math

import pytest
from pydantic import BaseModel

from shipyard.errors import JsonTooDeepError, SerializationError
from shipyard.jsonutil import (
    DECODE_MAX_DEPTH,
    MAX_JSON_DEPTH,
    byte_size,
    dumps,
    loads,
    text_depth,
    too_deep_marker,
)


class _Item(BaseModel):
    name: str
    when: datetime.date


def test_dumps_is_compact_and_keeps_unicode() -> None:
    assert dumps({"a": [1, 2.5, None, True], "b": "é☃"}) == '{"a":[1,2.5,null,true],"b":"é☃"}'


def test_dumps_dates_as_iso_strings() -> None:
    value = {
        "d": datetime.date(2024, 1, 2),
        "dt": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
    }
    assert dumps(value) == '{"d":"2024-01-02","dt":"2024-01-02T03:04:05+00:00"}'


def test_dumps_pydantic_model_in_json_mode() -> None:
    item = _Item(name="x", when=datetime.date(2020, 5, 6))
    assert dumps({"item": item}) == '{"item":{"name":"x","when":"2020-05-06"}}'


def test_dumps_tuple_as_list() -> None:
    assert dumps((1, "a")) == '[1,"a"]'


def test_unserialisable_value_names_type_and_path() -> None:
    with pytest.raises(SerializationError) as info:
        dumps({"items": [1, 2, {3}]}, what="Payload")
    assert str(info.value) == (
        "Payload is not JSON-serialisable: value at $.items[2] has type 'set'"
    )
    assert info.value.context["path"] == "$.items[2]"
    assert info.value.code == "NOT_SERIALIZABLE"


def test_unserialisable_top_level_value() -> None:
    with pytest.raises(SerializationError, match=r"^Value is not JSON-serialisable: value at \$ "):
        dumps(b"bytes")


def test_odd_keys_are_quoted_in_path() -> None:
    with pytest.raises(SerializationError) as info:
        dumps({"a b": {"ok": 1, "bad": object()}}, what="Output")
    assert str(info.value) == (
        "Output is not JSON-serialisable: value at $[\"a b\"].bad has type 'object'"
    )


def test_decimal_is_rejected() -> None:
    from decimal import Decimal

    with pytest.raises(SerializationError, match="has type 'Decimal'"):
        dumps({"price": Decimal("1.5")})


def test_nan_is_rejected_with_path() -> None:
    with pytest.raises(SerializationError) as info:
        dumps({"x": [0, math.nan]}, what="Metadata")
    assert info.value.context["path"] == "$.x[1]"
    assert str(info.value).startswith("Metadata is not JSON-serialisable: value at $.x[1] is nan")


def test_non_string_key_is_rejected() -> None:
    with pytest.raises(SerializationError) as info:
        dumps({"outer": {(1, 2): "v"}})
    assert info.value.context["path"] == "$.outer"
    assert "has a key of type 'tuple'" in str(info.value)


def test_int_keys_are_allowed_as_json_does() -> None:
    assert dumps({1: "a"}) == '{"1":"a"}'


def test_circular_reference_is_rejected() -> None:
    data: dict[str, object] = {"a": []}
    inner = data["a"]
    assert isinstance(inner, list)
    inner.append(data)
    with pytest.raises(SerializationError, match="circular reference"):
        dumps(data)


def test_loads_round_trip_and_none() -> None:
    assert loads(None) is None
    assert loads('{"a":[1,"é"]}') == {"a": [1, "é"]}
    assert loads(b'{"a":1}') == {"a": 1}
    assert loads(dumps({"k": [1, 2]})) == {"k": [1, 2]}


def test_loads_invalid_json() -> None:
    with pytest.raises(SerializationError, match="Not valid JSON"):
        loads("{nope")


def test_byte_size_counts_utf8_bytes() -> None:
    assert byte_size("") == 0
    assert byte_size("abc") == 3
    assert byte_size("é") == 2
    assert byte_size("☃") == 3


# -- nesting depth ------------------------------------------------------------------------


def _nested(levels: int) -> object:
    value: object = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("5", 0),
        ('"[[["', 0),
        ("[]", 1),
        ("{}", 1),
        ('{"a":[1,"]]"],"b":{}}', 2),
        ('[["\\\\"],"x\\\\\\"[",[[]]]', 3),
        ('{"k":"[","v":"]"}', 1),
        ('["", "", [""]]', 2),
        ("[" * 500 + "]" * 500, 500),
    ],
)
def test_text_depth(text: str, depth: int) -> None:
    assert text_depth(text) == depth
    assert text_depth(text.encode()) == depth


def test_dumps_allows_the_limit_and_refuses_one_more_level() -> None:
    assert dumps(_nested(MAX_JSON_DEPTH)) == "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    with pytest.raises(JsonTooDeepError) as info:
        dumps({"a": _nested(MAX_JSON_DEPTH)}, what="Payload")
    assert isinstance(info.value, SerializationError)
    assert info.value.context["limit"] == MAX_JSON_DEPTH
    assert info.value.context["path"].startswith("$.a[0][0]")
    assert str(info.value).startswith("Payload is nested too deeply (at $.a[0][0]")
    assert str(info.value).endswith(f"at most {MAX_JSON_DEPTH} levels of arrays and objects.")


def test_dumps_of_a_value_deeper_than_the_stack_is_a_clear_error() -> None:
    with pytest.raises(JsonTooDeepError, match="Output is nested too deeply"):
        dumps(_nested(50_000), what="Output")


def test_a_larger_max_depth_is_for_envelopes_and_none_turns_the_check_off() -> None:
    assert dumps([_nested(MAX_JSON_DEPTH)], max_depth=MAX_JSON_DEPTH + 1)
    assert dumps(_nested(300), max_depth=None).startswith("[[[")


def test_deep_pydantic_models_are_checked_on_what_they_dump() -> None:
    class Node(BaseModel):
        child: list[object]

    with pytest.raises(JsonTooDeepError):
        dumps(Node(child=[_nested(MAX_JSON_DEPTH)]))


def test_lone_surrogates_are_refused_with_their_path() -> None:
    with pytest.raises(SerializationError) as info:
        dumps({"a": ["ok", "x\ud800"]}, what="Metadata")
    assert info.value.context["path"] == "$.a[1]"
    assert "lone surrogate" in str(info.value) and "UTF-8" in str(info.value)
    with pytest.raises(SerializationError, match=r"value at \$ has a key with a lone surrogate"):
        dumps({"\udc00": 1})


def test_loads_refuses_text_deeper_than_the_decode_limit_without_recursion() -> None:
    assert loads("[" * DECODE_MAX_DEPTH + "]" * DECODE_MAX_DEPTH) is not None
    for levels in (DECODE_MAX_DEPTH + 1, 980, 200_000):
        text = "[" * levels + "]" * levels
        with pytest.raises(JsonTooDeepError, match=f"deeper than {DECODE_MAX_DEPTH} levels"):
            loads(text)
        marker = loads(text, too_deep="marker")
        assert marker == too_deep_marker(DECODE_MAX_DEPTH)
        assert marker["$shipyard_error"] == "JSON_TOO_DEEP"
    with pytest.raises(JsonTooDeepError, match=r"^The body nests deeper than 64 levels"):
        loads(b"[" * 65 + b"]" * 65, max_depth=64, what="The body")
    with pytest.raises(JsonTooDeepError):
        loads("[" * 200_000 + "]" * 200_000, max_depth=None)
    with pytest.raises(SerializationError, match=r"^The body is not valid JSON"):
        loads(b"{", what="The body")


def test_loads_of_an_empty_object_or_array_gives_a_new_value_each_time() -> None:
    """The texts most columns hold skip the parser; each call still gets its own value."""
    first, second = loads("{}"), loads("{}")
    assert first == {} and first is not second
    first["a"] = 1
    assert loads("{}") == {}
    items = loads("[]")
    assert items == [] and items is not loads("[]")
