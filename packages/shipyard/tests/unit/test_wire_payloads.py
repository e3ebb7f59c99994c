"""Decoding trigger payloads by ``payloadType``: plain JSON, JSON text, SuperJSON as the
official SDK writes it, text; everything else refused with the field named."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.errors import ValidationError
from shipyard.schemas import decode_payload, decode_superjson

# Each SuperJSON text below is what @trigger.dev/core 4.8.3's stringifyIO produced for the
# JavaScript value in the comment.
SUPERJSON_CASES: list[tuple[str, Any]] = [
    # {a: 1, b: [1, 2]}
    ('{"json":{"a":1,"b":[1,2]}}', {"a": 1, "b": [1, 2]}),
    # {d: new Date(0), u: undefined, n: null, big: 10n, s: new Set([1]), m: new Map([["k", 1]])}
    (
        '{"json":{"d":"1970-01-01T00:00:00.000Z","u":null,"n":null,"big":"10","s":[1],'
        '"m":[["k",1]]},"meta":{"values":{"d":["Date"],"u":["undefined"],"big":["bigint"],'
        '"s":["set"],"m":["map"]}}}',
        {"d": "1970-01-01T00:00:00.000Z", "n": None, "big": 10, "s": [1], "m": [["k", 1]]},
    ),
    # [1, undefined]
    ('{"json":[1,null],"meta":{"values":{"1":["undefined"]}}}', [1, None]),
    # 42 and null
    ('{"json":42}', 42),
    ('{"json":null}', None),
    # {p: o, q: o, arr: [o]} with o = {x: 1}: the JSON repeats the object
    (
        '{"json":{"p":{"x":1},"q":{"x":1},"arr":[{"x":1}]},'
        '"meta":{"referentialEqualities":{"p":["q","arr.0"]}}}',
        {"p": {"x": 1}, "q": {"x": 1}, "arr": [{"x": 1}]},
    ),
    # {c: {d: 5n}}
    ('{"json":{"c":{"d":"5"}},"meta":{"values":{"c.d":["bigint"]}}}', {"c": {"d": 5}}),
    # {r: /a+/g, e: new Error("boom"), url: new URL("http://a/b")}: JSON forms kept
    (
        '{"json":{"r":"/a+/g","e":{"name":"Error","message":"boom"},"url":"http://a/b"},'
        '"meta":{"values":{"r":["regexp"],"e":["Error"],"url":["URL"]}}}',
        {"r": "/a+/g", "e": {"name": "Error", "message": "boom"}, "url": "http://a/b"},
    ),
    # 10n at the root
    ('{"json":"10","meta":{"values":["bigint"]}}', 10),
]


@pytest.mark.parametrize(("text", "expected"), SUPERJSON_CASES)
def test_superjson_from_the_sdk(text: str, expected: Any) -> None:
    assert decode_payload(text, "application/super+json") == expected


@pytest.mark.parametrize("value", ["NaN", "-Infinity"])
def test_superjson_non_finite_numbers_are_refused(value: str) -> None:
    text = f'{{"json":{{"n":"{value}"}},"meta":{{"values":{{"n":["number"]}}}}}}'
    with pytest.raises(ValidationError, match="JSON cannot represent") as caught:
        decode_payload(text, "application/super+json")
    assert caught.value.context["param"] == "payload"


def test_superjson_negative_zero_is_a_number() -> None:
    text = '{"json":{"z":"-0"},"meta":{"values":{"z":["number"]}}}'
    assert decode_payload(text, "application/super+json") == {"z": -0.0}


@pytest.mark.parametrize(
    "payload",
    [{"json": 1}, '{"nojson":1}', "not json", "[1]"],
)
def test_malformed_superjson_is_refused(payload: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        decode_payload(payload, "application/super+json", param="items[2].payload")
    assert caught.value.context["param"] == "items[2].payload"


def test_superjson_with_dotted_path_escapes() -> None:
    document = {"json": {"a.b": None, "c": 1}, "meta": {"values": {"a\\.b": ["undefined"]}}}
    assert decode_superjson(document) == {"c": 1}


@pytest.mark.parametrize(
    ("payload", "payload_type", "expected"),
    [
        ({"a": 1}, None, {"a": 1}),
        ("hello", None, "hello"),
        (None, None, None),
        ('{"a": 1}', "application/json", {"a": 1}),
        ({"a": 1}, "application/json", {"a": 1}),
        (None, "application/json", None),
        ("hello", "text/plain", "hello"),
    ],
)
def test_plain_json_and_text(payload: Any, payload_type: str | None, expected: Any) -> None:
    assert decode_payload(payload, payload_type) == expected


@pytest.mark.parametrize(
    ("payload", "payload_type", "param", "message"),
    [
        ("{", "application/json", "payload", "not valid JSON"),
        ("NaN", "application/json", "payload", "not valid JSON"),
        ({"a": 1}, "text/plain", "payload", "must be a string"),
        ("trigger/packet_1/payload.json", "application/store", "options.payloadType", "inline"),
        ("x", "application/xml", "options.payloadType", "Unsupported payloadType"),
    ],
)
def test_refused_payloads_name_the_field(
    payload: Any, payload_type: str, param: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        decode_payload(payload, payload_type)
    assert caught.value.context["param"] == param
