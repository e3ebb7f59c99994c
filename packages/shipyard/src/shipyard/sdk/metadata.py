"""Run metadata: a JSON object per run that task code updates and anyone can read.

Inside a run every mutator applies at once to the local copy (so ``metadata.current()``
reflects it) and is queued; queued operations are collapsed and flushed every second, before
the run suspends at a durable wait, on :meth:`flush`, and when the attempt ends.
``metadata.parent`` and ``metadata.root`` ship the same operations to the parent or root run,
applied there atomically. Mutators return the namespace, so calls chain.
Outside a run, reads return None and mutators do nothing.

Example::

    metadata.set("status", "downloading").increment("files", 1)
    metadata.parent.append("children_done", ctx.run.id)
    await metadata.flush()
"""

from __future__ import annotations

from typing import Any

from shipyard.engine.metadata import flush_scope
from shipyard.engine.scope import current_scope
from shipyard.jsonutil import dumps, loads
from shipyard.metadata_ops import MetadataOp, apply_ops, check_metadata_size

__all__ = ["metadata"]


class _Mutators:
    """The mutating operations, shared by the run's own metadata, parent and root."""

    _target = "self"

    def _queue(self, op: MetadataOp) -> Any:
        scope = current_scope()
        if scope is None:
            return self
        if self._target == "self":
            with scope.lock:
                updated, _ = apply_ops(scope.metadata, [op])
                check_metadata_size(updated)
                scope.metadata = updated
                scope.pending_metadata.append(op)
        elif self._target == "parent":
            if scope.ctx.run.parent_id is not None:
                _check_alone(op)
                with scope.lock:
                    scope.pending_parent_metadata.append(op)
        else:
            if scope.ctx.run.root_id is not None or scope.ctx.run.parent_id is None:
                _check_alone(op)
                with scope.lock:
                    scope.pending_root_metadata.append(op)
        return self

    def set(self, key: str, value: Any) -> Any:
        """Set ``key`` (a ``$.a.b`` key sets a nested path)."""
        return self._queue(MetadataOp("set", key, value))

    def delete(self, key: str) -> Any:
        """Delete a top-level key."""
        return self._queue(MetadataOp("del", key))

    def replace(self, value: dict[str, Any]) -> Any:
        """Replace the whole object."""
        return self._queue(MetadataOp("replace", None, value))

    def append(self, key: str, value: Any) -> Any:
        """Append to a list (a missing key becomes ``[value]``, a scalar ``[old, value]``)."""
        return self._queue(MetadataOp("append", key, value))

    def remove(self, key: str, value: Any) -> Any:
        """Remove every element equal to ``value`` from the list at ``key``."""
        return self._queue(MetadataOp("remove", key, value))

    def increment(self, key: str, amount: float = 1) -> Any:
        """Add ``amount`` (a missing or non-number value counts as 0)."""
        return self._queue(MetadataOp("increment", key, amount))

    def decrement(self, key: str, amount: float = 1) -> Any:
        """Subtract ``amount``."""
        return self._queue(MetadataOp("increment", key, -amount))


def _check_alone(op: MetadataOp) -> None:
    """Reject at the call an operation on another run's metadata that could never be stored
    (too large or too deep on its own), rather than when it is flushed."""
    updated, _ = apply_ops({}, [op])
    check_metadata_size(updated)


class _Relative(_Mutators):
    def __init__(self, target: str) -> None:
        self._target = target


class _Metadata(_Mutators):
    """``metadata``: read and update the current run's metadata."""

    _target = "self"

    def __init__(self) -> None:
        self.parent = _Relative("parent")
        self.root = _Relative("root")

    def current(self) -> dict[str, Any] | None:
        """The whole object (a copy), or None outside a run."""
        scope = current_scope()
        if scope is None:
            return None
        return loads(dumps(scope.metadata))  # type: ignore[no-any-return]

    def get(self, key: str) -> Any:
        """One top-level value, or None."""
        scope = current_scope()
        if scope is None:
            return None
        return scope.metadata.get(key)

    # ``del`` is a keyword in Python; both spellings work.
    def del_(self, key: str) -> Any:
        """Delete a top-level key (same as :meth:`delete`)."""
        return self.delete(key)

    async def flush(self) -> None:
        """Write queued operations now."""
        scope = current_scope()
        if scope is not None:
            await flush_scope(scope)


metadata = _Metadata()
