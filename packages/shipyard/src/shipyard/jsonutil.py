"""Strict JSON encoding shared by payloads, outputs and metadata.

Everything Shipyard stores is JSON. :func:`dumps` is deliberately strict: besides the JSON
types it knows only ``datetime``/``date`` (written as ISO-8601 strings) and pydantic models
(written with ``model_dump(mode="json")``). Anything else raises :class:`SerializationError`
with the path of the offending value, so a bad payload is rejected where it is triggered rather
than half-written later. So are NaN/Infinity, strings with a lone surrogate (UTF-8 cannot
encode them) and values nested deeper than :data:`MAX_JSON_DEPTH` levels of arrays and objects
(:class:`JsonTooDeepError`). The depth is checked on the encoded text without recursion, and
:func:`loads` never raises ``RecursionError``: reading a stored value can never exhaust the
Python stack, whatever was written before the limit existed.

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
from typing import Any, Literal

from pydantic import BaseModel

from shipyard.errors import JsonTooDeepError, SerializationError

__all__ = [
    "DECODE_MAX_DEPTH",
    "MAX_JSON_DEPTH",
    "byte_size",
    "dumps",
    "loads",
    "text_depth",
    "too_deep_marker",
]

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects a stored value may have: ``[]`` is 1 level,
``{"a": [1]}`` 2. Payloads, outputs, metadata and wait token data deeper than this are
rejected with :class:`JsonTooDeepError` when they are written."""

DECODE_MAX_DEPTH = 2 * MAX_JSON_DEPTH
"""Deepest nesting :func:`loads` decodes by default. Above :data:`MAX_JSON_DEPTH` to leave room
for the envelopes Shipyard itself wraps around a value (a run as JSON, a metadata operation);
anything deeper was written before the limit existed."""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A JSON string (escapes included). Used only on valid JSON, where it matches in linear time.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_CURLY_AS_SQUARE = bytes.maketrans(b"{}", b"[]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_PATH_SHOWN = 80


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


# One encoder for every dumps: json.dumps with any non-default option builds a new one per
# call (a payload is dumped on every trigger). Encoding keeps no state on the instance.
_ENCODER = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default
)


def _key_path(parent: str, key: Any) -> str:
    if isinstance(key, str) and _IDENTIFIER.match(key):
        return f"{parent}.{key}"
    # Escaped only when it holds a lone surrogate, which no terminal can print.
    escape = isinstance(key, str) and _SURROGATE.search(key) is not None
    return f"{parent}[{json.dumps(key, ensure_ascii=escape, default=repr)}]"


def _walk(root: Any, max_depth: int | None = None) -> Iterator[tuple[str, Any, int, bool]]:
    """Yield ``(path, value, depth, cyclic)`` for every node in document order.

    ``depth`` counts the arrays and objects around the node (0 for the root); ``cyclic`` marks
    a container already open on the way down (its children are not visited again). Iterative,
    so any depth is safe; with ``max_depth`` nothing below that depth is visited.
    """
    # Entries are nodes to visit, or the id of a container whose children are all visited.
    stack: list[tuple[str, Any, int] | int] = [("$", root, 0)]
    open_ids: set[int] = set()
    while stack:
        entry = stack.pop()
        if isinstance(entry, int):
            open_ids.discard(entry)
            continue
        path, value, depth = entry
        if not isinstance(value, dict | list | tuple):
            yield path, value, depth, False
            continue
        cyclic = id(value) in open_ids
        yield path, value, depth, cyclic
        if cyclic or (max_depth is not None and depth >= max_depth):
            continue
        open_ids.add(id(value))
        stack.append(id(value))
        if isinstance(value, dict):
            children = [(_key_path(path, k), v) for k, v in value.items()]
        else:
            children = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
        stack.extend((p, v, depth + 1) for p, v in reversed(children))


def _path_of(root: Any, target: Any) -> str | None:
    for path, node, _, _ in _walk(root):
        if node is target:
            return path
    return None


def _first_bad_node(root: Any) -> tuple[str, str] | None:
    """Find the first value or key the strict encoder refuses; returns ``(path, problem)``."""
    for path, node, _, cyclic in _walk(root):
        if cyclic:
            return path, "contains a circular reference"
        if isinstance(node, float) and not math.isfinite(node):
            return path, f"is {node!r}, which JSON cannot represent"
        if isinstance(node, dict):
            for key in node:
                if not isinstance(key, str | int | float | bool) and key is not None:
                    return path, f"has a key of type '{type(key).__name__}'"
    return None


def _shown(path: str) -> str:
    """A path short enough for a one-line message."""
    if len(path) <= _PATH_SHOWN:
        return path
    return path[: _PATH_SHOWN // 2] + "…" + path[-(_PATH_SHOWN // 2) :]


def _skeleton(data: bytes) -> bytes:
    """The brackets of valid JSON ``data`` that are outside strings, ``{}`` written ``[]``.

    Only bulk bytes operations (implemented in C), so it is cheap even for 10 MiB: escaped
    backslashes and quotes go first (backslashes occur only inside strings), then every byte
    but quotes and brackets; each remaining ``""`` is an empty string or two strings with no
    bracket between them, and what is left between quote pairs is inside a string.
    """
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    data = data.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in data:
        data = b"".join(data.split(b'"')[0::2])
    return data.translate(_CURLY_AS_SQUARE)


def _peel(skeleton: bytes, levels: int) -> bytes:
    """Remove up to ``levels`` innermost levels of brackets; what remains nests deeper."""
    for _ in range(levels):
        peeled = skeleton.replace(b"[]", b"")
        if peeled == skeleton:  # empty, or not valid JSON
            break
        skeleton = peeled
    return skeleton


def text_depth(text: str | bytes) -> int:
    """How deeply arrays and objects nest in valid JSON ``text`` (0 for a scalar).

    Computed without recursion and without decoding.

    Example::

        >>> text_depth('{"a":[1,"]]"],"b":{}}')
        2
    """
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    skeleton = _skeleton(data)
    depth = 0
    while skeleton:
        peeled = _peel(skeleton, 1)
        if peeled == skeleton:
            break
        skeleton, depth = peeled, depth + 1
    return depth


def _deeper_than(text: str, limit: int, data: bytes | None = None) -> bool:
    """Whether valid JSON ``text`` (UTF-8 ``data`` when already encoded) nests past ``limit``."""
    # Fast path: nesting can be no deeper than the number of opening brackets.
    if text.count("[") + text.count("{") <= limit:
        return False
    if data is None:
        data = text.encode("utf-8", "surrogatepass")
    return bool(_peel(_skeleton(data), limit))


def _too_deep(what: str, value: Any, limit: int) -> JsonTooDeepError:
    path = next(
        (
            p
            for p, node, depth, _ in _walk(value, max_depth=limit)
            if depth >= limit and isinstance(node, dict | list | tuple)
        ),
        None,
    )
    where = f" (at {_shown(path)})" if path is not None else ""
    return JsonTooDeepError(
        f"{what} is nested too deeply{where}: JSON values may nest at most {limit} levels "
        "of arrays and objects.",
        limit=limit,
        path=path,
    )


def _surrogate_error(what: str, value: Any) -> SerializationError:
    for path, node, _, _ in _walk(value):
        if isinstance(node, str) and (found := _SURROGATE.search(node)):
            problem = f"contains a lone surrogate ({found.group()!r})"
        elif isinstance(node, dict) and any(
            isinstance(k, str) and _SURROGATE.search(k) for k in node
        ):
            problem = "has a key with a lone surrogate"
        else:
            continue
        return SerializationError(
            f"{what} is not JSON-serialisable: value at {_shown(path)} {problem}, "
            "which UTF-8 cannot encode",
            path=path,
        )
    return SerializationError(
        f"{what} is not JSON-serialisable: it contains a lone surrogate, which UTF-8 cannot encode"
    )


def dumps(value: Any, *, what: str = "Value", max_depth: int | None = MAX_JSON_DEPTH) -> str:
    """Encode ``value`` as compact JSON (UTF-8 characters kept as-is).

    ``what`` names the value in error messages ("Payload", "Output", "Metadata").
    ``max_depth`` is the deepest nesting allowed (:data:`MAX_JSON_DEPTH`); Shipyard passes a
    larger one only for envelopes it wraps around an already checked value.

    Raises:
        JsonTooDeepError: arrays and objects nest deeper than ``max_depth`` levels.
        SerializationError: a value is not JSON-serialisable, e.g.
            ``Payload is not JSON-serialisable: value at $.items[2] has type 'set'``.

    Example::

        >>> dumps({"a": 1, "b": "é"})
        '{"a":1,"b":"é"}'
    """
    try:
        text = _ENCODER.encode(value)
    except _Unserialisable as exc:
        path = _path_of(value, exc.obj)
        where = f"value at {_shown(path)}" if path is not None else "a value"
        detail = f"has type '{type(exc.obj).__name__}'"
        if exc.reason:
            detail += f" ({exc.reason})"
        raise SerializationError(
            f"{what} is not JSON-serialisable: {where} {detail}", path=path
        ) from None
    except RecursionError:
        # The C encoder ran out of stack: far deeper than any limit.
        raise _too_deep(what, value, max_depth or MAX_JSON_DEPTH) from None
    except (TypeError, ValueError) as exc:
        # Non-str keys, NaN/Infinity and cycles are reported by json itself without a path.
        found = _first_bad_node(value)
        if found is None:
            raise SerializationError(f"{what} is not JSON-serialisable: {exc}") from exc
        path, problem = found
        raise SerializationError(
            f"{what} is not JSON-serialisable: value at {_shown(path)} {problem}", path=path
        ) from exc
    data = None
    if not text.isascii():
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            raise _surrogate_error(what, value) from None
    if max_depth is not None and _deeper_than(text, max_depth, data):
        raise _too_deep(what, value, max_depth)
    return text


def too_deep_marker(limit: int = DECODE_MAX_DEPTH) -> dict[str, str]:
    """What ``loads(..., too_deep="marker")`` returns in place of a value nested too deeply.

    Example::

        >>> too_deep_marker(128)["$shipyard_error"]
        'JSON_TOO_DEEP'
    """
    return {
        "$shipyard_error": JsonTooDeepError.code,
        "message": f"This stored value nests deeper than {limit} levels of arrays and objects "
        f"and was not decoded (values are limited to {MAX_JSON_DEPTH} levels).",
    }


def loads(
    text: str | bytes | None,
    *,
    max_depth: int | None = DECODE_MAX_DEPTH,
    too_deep: Literal["raise", "marker"] = "raise",
    what: str | None = None,
) -> Any:
    """Decode JSON text; ``None`` (nothing stored) decodes to ``None``.

    Text nested deeper than ``max_depth`` levels (:data:`DECODE_MAX_DEPTH`; ``None``: only as
    deep as the stack allows) is not returned: it raises :class:`JsonTooDeepError`, or with
    ``too_deep="marker"`` decodes to :func:`too_deep_marker`, so a listing of runs still shows
    the others. Never raises ``RecursionError``. ``what`` names the text in error messages
    (e.g. "The request body").

    Raises:
        JsonTooDeepError: the text nests deeper than ``max_depth`` levels.
        SerializationError: the text is not valid JSON.

    Example::

        >>> loads('{"a":[1,2]}')
        {'a': [1, 2]}
    """
    if text is None:
        return None
    # The texts most columns hold (no metadata, no tags): no parse.
    if text == "{}":
        return {}
    if text == "[]":
        return []
    try:
        if isinstance(text, (bytes, bytearray)):
            # As json.loads does for bytes.
            text = bytes(text).decode(json.detect_encoding(text), "surrogatepass")
        value = json.loads(text)
    except RecursionError:
        deep = True
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        prefix = f"{what} is not valid JSON" if what else "Not valid JSON"
        raise SerializationError(f"{prefix}: {exc}") from exc
    else:
        deep = max_depth is not None and _deeper_than(text, max_depth)
    if not deep:
        return value
    limit = max_depth if max_depth is not None else DECODE_MAX_DEPTH
    if too_deep == "marker":
        return too_deep_marker(limit)
    rule = "" if limit == MAX_JSON_DEPTH else f" (values are limited to {MAX_JSON_DEPTH} levels)"
    raise JsonTooDeepError(
        f"{what or 'Stored JSON'} nests deeper than {limit} levels of arrays and objects and "
        f"was not decoded{rule}.",
        limit=limit,
    )


def byte_size(text: str) -> int:
    """Length of ``text`` in bytes once encoded as UTF-8 (the unit of every size limit).

    Example::

        >>> byte_size("é")
        2
    """
    return len(text.encode("utf-8"))
