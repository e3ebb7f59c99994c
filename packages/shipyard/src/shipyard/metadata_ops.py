"""Run metadata operations (Trigger.dev v4's, ``docs/runs.md``). Pure: no I/O.

Task code records operations (``set``, ``del``, ``replace``, ``append``, ``remove``,
``increment``); they are collapsed, shipped and applied on the server with :func:`apply_ops`.
A key starting with ``"$."`` is a path into nested objects and arrays (``"$.progress.percent"``,
``"$.items[0].done"``) for every operation except ``del``, which works on top-level keys only.

Example::

    >>> new, unapplied = apply_ops(
    ...     {"count": 1},
    ...     [MetadataOp("increment", "count", 2), MetadataOp("set", "$.progress.pct", 50)],
    ... )
    >>> new
    {'count': 3, 'progress': {'pct': 50}}
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from shipyard.errors import MetadataTooLargeError, ValidationError
from shipyard.jsonutil import byte_size, dumps

__all__ = [
    "METADATA_MAX_BYTES",
    "MetadataOp",
    "MetadataOpKind",
    "apply_ops",
    "check_metadata_size",
    "collapse_ops",
    "op_from_dict",
    "op_to_dict",
]

METADATA_MAX_BYTES = 262_144
"""Largest serialised metadata object: 256 KiB (``TASK_RUN_METADATA_MAXIMUM_SIZE``)."""

MetadataOpKind = Literal["set", "del", "replace", "append", "remove", "increment"]
_KINDS: frozenset[str] = frozenset(get_args(MetadataOpKind))
_UNSAFE_KEYS = frozenset({"__proto__", "constructor", "prototype"})
_PATH_PREFIX = "$."
_PATH_TOKEN = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")

Segment = str | int


class _Missing:
    """Marks an absent value (``None`` is a real JSON null)."""


_MISSING = _Missing()


def _parse_key(key: str) -> list[Segment]:
    """Split a key into path segments: a plain key is one segment, ``$.a.b[0]`` is three."""
    if not key.startswith(_PATH_PREFIX):
        return [key]
    segments: list[Segment] = []
    position = 1  # just after "$"
    while position < len(key):
        match = _PATH_TOKEN.match(key, position)
        if match is None:
            raise ValidationError(
                f"Invalid metadata path {key!r}: use dotted names and [n] indexes, "
                'e.g. "$.progress.percent" or "$.items[0].done"',
                key=key,
            )
        name, index = match.group(1), match.group(2)
        segments.append(name if name is not None else int(index))
        position = match.end()
    return segments


def _check_unsafe_keys(value: Any, where: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in _UNSAFE_KEYS:
                raise ValidationError(f"Unsafe metadata key {key!r} in {where}", key=key)
            _check_unsafe_keys(item, where)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_unsafe_keys(item, where)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class MetadataOp:
    """One metadata operation. Validated when created, so bad calls fail in task code.

    ``key`` is required for every kind but ``replace``; ``value`` is the new value (``set``),
    the object (``replace``, must be a dict), the element (``append``/``remove``) or the
    amount (``increment``; a decrement is a negative amount).

    Raises:
        ValidationError: unknown kind, missing key, unsafe key (``__proto__``,
            ``constructor``, ``prototype``), a non-dict ``replace``, a non-number
            ``increment``, or a ``"$."`` path given to ``del``.

    Example::

        >>> MetadataOp("increment", "retries", -1)
        MetadataOp(kind='increment', key='retries', value=-1)
    """

    kind: MetadataOpKind
    key: str | None = None
    value: Any = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValidationError(
                f"Unknown metadata operation {self.kind!r}; expected one of "
                + ", ".join(sorted(_KINDS)),
                kind=self.kind,
            )
        if self.kind != "replace":
            if not isinstance(self.key, str) or not self.key:
                raise ValidationError(
                    f"Metadata operation {self.kind!r} needs a non-empty string key",
                    kind=self.kind,
                )
            segments = _parse_key(self.key)
            for segment in segments:
                if segment in _UNSAFE_KEYS:
                    raise ValidationError(
                        f"Unsafe metadata key {segment!r} in {self.key!r}", key=self.key
                    )
            if self.kind == "del" and self.key.startswith(_PATH_PREFIX):
                raise ValidationError(
                    f"del works on top-level keys only, got path {self.key!r}; "
                    f"use set({self.key!r}, None) to clear a nested value",
                    key=self.key,
                )
        if self.kind == "replace" and not isinstance(self.value, Mapping):
            raise ValidationError(
                "Metadata replace needs an object (dict) at the top level, got "
                f"{type(self.value).__name__}",
                kind=self.kind,
            )
        if self.kind == "increment" and (
            not _is_number(self.value) or not math.isfinite(self.value)
        ):
            raise ValidationError(
                f"Metadata increment needs a finite number, got {self.value!r}", key=self.key
            )
        if self.kind in ("set", "replace", "append"):
            where = f"the value of {self.kind} {self.key or ''}".rstrip()
            # JSON-ready and at most MAX_JSON_DEPTH deep before anything walks it recursively.
            dumps(self.value, what=f"Metadata ({where})")
            _check_unsafe_keys(self.value, where)


def _child(container: Any, segment: Segment) -> Any:
    if isinstance(segment, int):
        if isinstance(container, list) and segment < len(container):
            return container[segment]
        return _MISSING
    if isinstance(container, dict):
        return container.get(segment, _MISSING)
    return _MISSING


def _get(root: dict[str, Any], segments: list[Segment]) -> Any:
    node: Any = root
    for segment in segments:
        node = _child(node, segment)
        if node is _MISSING:
            return _MISSING
    return node


def _can_place(container: Any, segment: Segment) -> bool:
    """Whether ``segment`` can be written into an existing ``container``."""
    if isinstance(segment, int):
        return isinstance(container, list) and segment <= len(container)
    return isinstance(container, dict)


def _fresh(segment: Segment) -> Any:
    return [] if isinstance(segment, int) else {}


def _put(container: Any, segment: Segment, value: Any) -> None:
    if isinstance(segment, int):
        if segment == len(container):
            container.append(value)
        else:
            container[segment] = value
    else:
        container[segment] = value


def _set(root: dict[str, Any], segments: list[Segment], value: Any) -> bool:
    """Write ``value`` at the path, creating missing containers; ``False`` if impossible.

    Checks the whole path before writing so a failed set leaves no half-built containers.
    """
    node: Any = root
    for depth, segment in enumerate(segments):
        if not _can_place(node, segment):
            return False
        child = _child(node, segment)
        if child is _MISSING:
            # The rest is created fresh: an index into a new list can only be 0.
            if any(isinstance(s, int) and s != 0 for s in segments[depth + 1 :]):
                return False
            break
        if depth == len(segments) - 1:
            break
        node = child
    node = root
    for depth, segment in enumerate(segments):
        if depth == len(segments) - 1:
            _put(node, segment, value)
            return True
        child = _child(node, segment)
        if child is _MISSING:
            child = _fresh(segments[depth + 1])
            _put(node, segment, child)
        node = child
    return True


def _json_equal(left: Any, right: Any) -> bool:
    """Deep equality with JSON's notion of types (``True`` is not ``1``, ``1`` is ``1.0``)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if _is_number(left) and _is_number(right):
        return bool(left == right)
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(_json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(
            _json_equal(a, b) for a, b in zip(left, right, strict=True)
        )
    if type(left) is not type(right):
        return False
    return bool(left == right)


def _apply_one(data: dict[str, Any], op: MetadataOp) -> tuple[dict[str, Any], bool]:
    """Apply ``op`` to ``data`` in place (except replace); returns the object and success."""
    if op.kind == "replace":
        return copy.deepcopy(dict(cast(Mapping[str, Any], op.value))), True
    key = cast(str, op.key)
    if op.kind == "del":
        data.pop(key, None)
        return data, True
    segments = _parse_key(key)
    if op.kind == "set":
        return data, _set(data, segments, copy.deepcopy(op.value))
    current = _get(data, segments)
    if op.kind == "append":
        item = copy.deepcopy(op.value)
        if isinstance(current, list):
            current.append(item)
            return data, True
        new_list = [item] if current is _MISSING else [current, item]
        return data, _set(data, segments, new_list)
    if op.kind == "remove":
        if not isinstance(current, list):
            return data, False
        current[:] = [item for item in current if not _json_equal(item, op.value)]
        return data, True
    # increment
    base = current if _is_number(current) else 0
    return data, _set(data, segments, base + op.value)


def apply_ops(
    current: Mapping[str, Any], ops: Iterable[MetadataOp]
) -> tuple[dict[str, Any], list[MetadataOp]]:
    """Apply ``ops`` in order to a deep copy of ``current``.

    Returns the new object and the operations that could not be applied (``remove`` on a
    non-array, a path through a non-container or past the end of an array). ``current`` and
    the operations' values are never mutated or aliased by the result.

    Example::

        >>> apply_ops({"tags": ["a", "b", "a"]}, [MetadataOp("remove", "tags", "a")])
        ({'tags': ['b']}, [])
    """
    data: dict[str, Any] = copy.deepcopy(dict(current))
    unapplied: list[MetadataOp] = []
    for op in ops:
        data, applied = _apply_one(data, op)
        if not applied:
            unapplied.append(op)
    return data, unapplied


def collapse_ops(ops: list[MetadataOp]) -> list[MetadataOp]:
    """Shrink a pending list before flushing without changing its result.

    Consecutive increments of a key are summed, consecutive sets of a key keep the last, and
    repeated consecutive deletes of a key are dropped.

    Example::

        >>> collapse_ops([MetadataOp("increment", "n", 1), MetadataOp("increment", "n", 2)])
        [MetadataOp(kind='increment', key='n', value=3)]
    """
    collapsed: list[MetadataOp] = []
    for op in ops:
        previous = collapsed[-1] if collapsed else None
        if previous is not None and previous.kind == op.kind and previous.key == op.key:
            if op.kind == "increment":
                collapsed[-1] = MetadataOp("increment", op.key, previous.value + op.value)
                continue
            if op.kind == "set":
                collapsed[-1] = op
                continue
            if op.kind == "del":
                continue
        collapsed.append(op)
    return collapsed


def check_metadata_size(obj: Mapping[str, Any]) -> int:
    """Serialise ``obj`` as stored and return its size in bytes.

    Raises:
        MetadataTooLargeError: over 256 KiB (262,144 bytes); ``limit`` and ``size`` are set.
        SerializationError: ``obj`` is not JSON-serialisable.

    Example::

        >>> check_metadata_size({"a": 1})
        7
    """
    size = byte_size(dumps(obj, what="Metadata"))
    if size > METADATA_MAX_BYTES:
        raise MetadataTooLargeError(
            f"Metadata is {size:,} bytes, over the 256 KiB limit "
            f"({METADATA_MAX_BYTES:,} bytes); store large data elsewhere and keep a reference",
            limit=METADATA_MAX_BYTES,
            size=size,
        )
    return size


def op_to_dict(op: MetadataOp) -> dict[str, Any]:
    """A JSON-ready dict for storing an operation (``{"kind", "key"?, "value"?}``).

    Example::

        >>> op_to_dict(MetadataOp("del", "draft"))
        {'kind': 'del', 'key': 'draft'}
    """
    result: dict[str, Any] = {"kind": op.kind}
    if op.key is not None:
        result["key"] = op.key
    if op.kind != "del":
        result["value"] = op.value
    return result


def op_from_dict(d: Mapping[str, Any]) -> MetadataOp:
    """Rebuild an operation stored with :func:`op_to_dict`.

    Raises:
        ValidationError: not a mapping, unknown fields, or an invalid operation.

    Example::

        >>> op_from_dict({"kind": "set", "key": "a", "value": 1})
        MetadataOp(kind='set', key='a', value=1)
    """
    if not isinstance(d, Mapping):
        raise ValidationError(f"A metadata operation must be an object, got {type(d).__name__}")
    unknown = set(d) - {"kind", "key", "value"}
    if unknown:
        raise ValidationError(
            f"Unknown field(s) in metadata operation: {', '.join(sorted(map(str, unknown)))}"
        )
    if "kind" not in d:
        raise ValidationError("A metadata operation needs a 'kind'")
    return MetadataOp(kind=d["kind"], key=d.get("key"), value=d.get("value"))
