"""Payloads as they arrive over HTTP: decoding ``payload`` according to ``payloadType``.

Trigger.dev's client never sends a payload as plain JSON. It serialises it first
(``stringifyIO``) and says how in ``options.payloadType``:

==========================  =================================================================
``payloadType``             what ``payload`` is, and what Shipyard does with it
==========================  =================================================================
absent                      the JSON value itself (what ``curl`` users send): used as is
``application/json``        JSON **text** when it is a string (parsed), else the value itself
``application/super+json``  SuperJSON text ``{"json": …, "meta": …}`` — what the official SDK
                            v4 sends for every non-string payload. Shipyard takes ``json``
                            and applies the two ``meta`` annotations that change meaning in
                            Python: ``undefined`` (the key is dropped, as ``JSON.stringify``
                            would) and ``bigint`` (a Python ``int``). ``Date`` values stay the
                            ISO strings SuperJSON wrote (Shipyard's own convention for dates);
                            ``Set`` and ``Map`` stay the arrays SuperJSON wrote; ``NaN`` and
                            ``±Infinity`` are rejected (JSON has no such numbers).
``text/plain``              a string payload, used as that string (the SDK sends strings so)
``application/store``       a payload the SDK uploaded to object storage first (it does so
                            for payloads of 128 KiB and more): **not supported**, rejected
anything else               rejected, naming the accepted types
==========================  =================================================================

Every rejection is a :class:`~shipyard.errors.ValidationError` whose ``param`` names the field,
so the HTTP layer answers 400 with a message the caller can act on.

Example::

    >>> decode_payload('{"json":{"n":1,"u":null},"meta":{"values":{"u":["undefined"]}}}',
    ...                "application/super+json")
    {'n': 1}
"""

from __future__ import annotations

import json
import math
from typing import Any

from shipyard.errors import ValidationError

__all__ = ["SUPPORTED_PAYLOAD_TYPES", "decode_payload", "decode_superjson"]

SUPPORTED_PAYLOAD_TYPES = ("application/json", "application/super+json", "text/plain")
"""The ``payloadType`` values Shipyard decodes."""

_REMOVE = object()


def _invalid(message: str, param: str) -> ValidationError:
    return ValidationError(message, param=param)


def decode_payload(payload: Any, payload_type: str | None, *, param: str = "payload") -> Any:
    """The Python value a trigger's ``payload`` stands for, given its ``payloadType``.

    ``param`` names the payload in error messages (``items[3].payload`` in a batch).

    Raises:
        ValidationError: the type is unsupported, or the payload does not decode as that type.

    Example::

        >>> decode_payload('{"a": 1}', "application/json"), decode_payload({"a": 1}, None)
        ({'a': 1}, {'a': 1})
    """
    if payload_type is None:
        return payload
    if payload_type == "application/json":
        if isinstance(payload, str):
            return _parse_json_text(payload, param, payload_type)
        return payload
    if payload_type == "application/super+json":
        if payload is None:
            return None
        if not isinstance(payload, str):
            raise _invalid(
                f"{param} must be SuperJSON text when payloadType is application/super+json.",
                param,
            )
        return decode_superjson(_parse_json_text(payload, param, payload_type), param=param)
    if payload_type == "text/plain":
        if payload is None:
            return None
        if not isinstance(payload, str):
            raise _invalid(f"{param} must be a string when payloadType is text/plain.", param)
        return payload
    if payload_type == "application/store":
        raise _invalid(
            "Offloaded payloads (payloadType application/store) are not supported: send the "
            "payload inline (up to 3 MiB). The official SDK offloads payloads of 128 KiB and "
            "more, so keep them smaller when triggering through it.",
            "options.payloadType",
        )
    raise _invalid(
        f"Unsupported payloadType {payload_type!r}; use one of "
        f"{', '.join(SUPPORTED_PAYLOAD_TYPES)} or leave it out to send plain JSON.",
        "options.payloadType",
    )


def _parse_json_text(text: str, param: str, payload_type: str) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise _invalid(f"{param} is not valid JSON text for {payload_type}: {exc}", param) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def decode_superjson(document: Any, *, param: str = "payload") -> Any:
    """The value of a parsed SuperJSON document ``{"json": value, "meta": {...}}``.

    Applies ``undefined`` (drop the key) and ``bigint`` (to ``int``) annotations and rejects
    ``number`` annotations (``NaN``/``Infinity``). Other annotations leave SuperJSON's JSON form
    in place; ``referentialEqualities`` need nothing (the JSON already repeats the values).

    Raises:
        ValidationError: the document is not SuperJSON, or holds a value JSON cannot represent.

    Example::

        >>> decode_superjson({"json": {"n": "10"}, "meta": {"values": {"n": ["bigint"]}}})
        {'n': 10}
    """
    if not isinstance(document, dict) or "json" not in document:
        raise _invalid(f'{param} is not SuperJSON: expected {{"json": ..., "meta": ...}}.', param)
    value = document["json"]
    meta = document.get("meta")
    if meta is None:
        return value
    if not isinstance(meta, dict):
        raise _invalid(f"{param} has an invalid SuperJSON meta.", param)
    annotations = meta.get("values")
    if annotations is None:
        return value
    if isinstance(annotations, list):
        # A root-level annotation: the whole value is e.g. a bigint or undefined.
        result = _apply(value, annotations, param)
        return None if result is _REMOVE else result
    if not isinstance(annotations, dict):
        raise _invalid(f"{param} has an invalid SuperJSON meta.values.", param)
    # Deepest paths first, so removing a key never shifts a path still to be visited.
    for path in sorted(annotations, key=lambda p: len(_split_path(p)), reverse=True):
        value = _apply_at(value, _split_path(path), annotations[path], param)
    return value


def _split_path(path: str) -> list[str]:
    """SuperJSON paths join keys with ``.``; a literal dot in a key is written ``\\.``."""
    parts: list[str] = []
    current = ""
    escaped = False
    for char in path:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ".":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _apply_at(root: Any, path: list[str], annotation: Any, param: str) -> Any:
    if not path:
        result = _apply(root, annotation, param)
        return None if result is _REMOVE else result
    parent: Any = root
    for key in path[:-1]:
        parent = _child(parent, key)
        if parent is None:
            return root
    last = path[-1]
    current = _child(parent, last)
    result = _apply(current, annotation, param)
    if isinstance(parent, dict):
        if result is _REMOVE:
            parent.pop(last, None)
        else:
            parent[last] = result
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        # An undefined array element is null, as JSON.stringify writes it.
        parent[int(last)] = None if result is _REMOVE else result
    return root


def _child(container: Any, key: str) -> Any:
    if isinstance(container, dict):
        return container.get(key)
    if isinstance(container, list) and key.isdigit() and int(key) < len(container):
        return container[int(key)]
    return None


def _apply(value: Any, annotation: Any, param: str) -> Any:
    kind = annotation[0] if isinstance(annotation, list) and annotation else annotation
    if kind == "undefined":
        return _REMOVE
    if kind == "bigint" and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise _invalid(f"{param} has an invalid bigint {value!r}.", param) from None
    if kind == "number" and value == "-0":
        return -0.0
    if kind == "number" and not _is_finite_number(value):
        raise _invalid(
            f"{param} contains {value}, which JSON cannot represent; send a finite number or null.",
            param,
        )
    return value


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
