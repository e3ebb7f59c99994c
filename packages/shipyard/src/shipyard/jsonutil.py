"""Strict JSON encoding shared by payloads, outputs and metadata.

Everything Shipyard stores is JSON. :func:`dumps` is deliberately strict: besides the JSON
types it knows only ``datetime``/``date`` (written as ISO-8601 strings) and pydantic models
(written with ``model_dump(mode="json")``). Anything else raises :class:`SerializationError`
with the path of the offending value, so a bad payload is rejected where it is triggered rather
than half-written later.

Example::

    >>> dumps({"when": datetime.date(2024, 1, 2), "n": [1, 2]})
    '{"when":"2024-01-02","n":[1,2]}'
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from shipyard.errors import SerializationError

__all__ = ["byte_size", "dumps", "loads"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Unserialisable(Exception):
    """Raised from the encoder hook; carries the object so the path can be found afterwards."""

    def __init__(self, obj: Any, reason: str | None = None) -> None:
        super().__init__(reason)
        self.obj = obj
        self.reason = reason


def _default(obj: Any) -> Any:
    if isinstance(obj, datetime.date):
        return obj.isoformat()
    if isinstance(obj, BaseModel):
        try:
            return obj.model_dump(mode="json")
        except Exception as exc:  # pydantic raises its own serialization error types
            raise _Unserialisable(obj, f"pydantic could not dump it: {exc}") from exc
    raise _Unserialisable(obj)


def _key_path(parent: str, key: Any) -> str:
    if isinstance(key, str) and _IDENTIFIER.match(key):
        return f"{parent}.{key}"
    return f"{parent}[{json.dumps(key, ensure_ascii=False, default=repr)}]"


def _walk(value: Any, path: str, seen: set[int]) -> Iterator[tuple[str, Any]]:
    """Yield ``(path, value)`` for every node, depth first, skipping cycles."""
    yield path, value
    if isinstance(value, dict | list | tuple):
        if id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, dict):
            for key, item in value.items():
                yield from _walk(item, _key_path(path, key), seen)
        else:
            for index, item in enumerate(value):
                yield from _walk(item, f"{path}[{index}]", seen)
        seen.discard(id(value))


def _path_of(root: Any, target: Any) -> str | None:
    for path, node in _walk(root, "$", set()):
        if node is target:
            return path
    return None


def _first_bad_node(root: Any) -> tuple[str, str] | None:
    """Find the first value or key the strict encoder refuses; returns ``(path, problem)``."""
    seen: set[int] = set()
    for path, node in _walk(root, "$", seen):
        if isinstance(node, float) and not math.isfinite(node):
            return path, f"is {node!r}, which JSON cannot represent"
        if isinstance(node, dict):
            for key in node:
                if not isinstance(key, str | int | float | bool) and key is not None:
                    return path, f"has a key of type '{type(key).__name__}'"
        if isinstance(node, dict | list) and id(node) in seen:
            return path, "contains a circular reference"
    return None


def dumps(value: Any, *, what: str = "Value") -> str:
    """Encode ``value`` as compact JSON (UTF-8 characters kept as-is).

    ``what`` names the value in error messages ("Payload", "Output", "Metadata").

    Raises:
        SerializationError: a value is not JSON-serialisable, e.g.
            ``Payload is not JSON-serialisable: value at $.items[2] has type 'set'``.

    Example::

        >>> dumps({"a": 1, "b": "é"})
        '{"a":1,"b":"é"}'
    """
    try:
        return json.dumps(
            value,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
            default=_default,
        )
    except _Unserialisable as exc:
        path = _path_of(value, exc.obj)
        where = f"value at {path}" if path is not None else "a value"
        detail = f"has type '{type(exc.obj).__name__}'"
        if exc.reason:
            detail += f" ({exc.reason})"
        raise SerializationError(
            f"{what} is not JSON-serialisable: {where} {detail}", path=path
        ) from None
    except (TypeError, ValueError, RecursionError) as exc:
        # Non-str keys, NaN/Infinity and cycles are reported by json itself without a path.
        found = _first_bad_node(value)
        if found is None:
            raise SerializationError(f"{what} is not JSON-serialisable: {exc}") from exc
        path, problem = found
        raise SerializationError(
            f"{what} is not JSON-serialisable: value at {path} {problem}", path=path
        ) from exc


def loads(text: str | bytes | None) -> Any:
    """Decode JSON text; ``None`` (nothing stored) decodes to ``None``.

    Raises:
        SerializationError: the text is not valid JSON.

    Example::

        >>> loads('{"a":[1,2]}')
        {'a': [1, 2]}
    """
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SerializationError(f"Not valid JSON: {exc}") from exc


def byte_size(text: str) -> int:
    """Length of ``text`` in bytes once encoded as UTF-8 (the unit of every size limit).

    Example::

        >>> byte_size("é")
        2
    """
    return len(text.encode("utf-8"))
