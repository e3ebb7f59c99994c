"""Tests for shipyard.jsonutil: strict compact JSON with clear errors."""

from __future__ import annotations

import datetime
import math

import pytest
from pydantic import BaseModel

from shipyard.errors import SerializationError
from shipyard.jsonutil import byte_size, dumps, loads


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
