"""Writing run metadata and buffered events: what ``metadata.*`` and ``logger.*`` queue in the
run scope reaches the store here.

Events go first so the change feed keeps the order the task emitted them in; then the run's own
metadata operations (collapsed), then those aimed at its parent and root, each applied
atomically by the store. At the end of an attempt the run's own last operations are not written
on their own: :func:`final_metadata` hands them to the finish, which applies them in its
transaction (a run that sets metadata costs the store no more writes than a no-op).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from shipyard.engine.base import EngineBase
from shipyard.engine.scope import RunScope
from shipyard.jsonutil import MAX_JSON_DEPTH, dumps, loads
from shipyard.metadata_ops import (
    MetadataOp,
    apply_ops,
    check_metadata_size,
    collapse_ops,
    op_to_dict,
)
from shipyard.records import NewEvent
from shipyard.store.params import RunEventsAppendParams, RunFinishMetadata, RunMetadataParams

__all__ = [
    "FinalMetadata",
    "apply_metadata_ops",
    "drain_events",
    "final_metadata",
    "flush_scope",
    "write_final_metadata",
]

# The final metadata an attempt's finish carries (the store's parameter, named here for the
# worker, which does not import the store).
FinalMetadata = RunFinishMetadata

log = logging.getLogger("shipyard.worker")


def drain_events(scope: RunScope) -> list[NewEvent]:
    """Take the scope's buffered events (they travel with the next write)."""
    with scope.lock:
        events, scope.pending_events = scope.pending_events, []
    return events


async def flush_scope(scope: RunScope) -> None:
    """Write a run scope's buffered events, then its queued metadata operations."""
    engine = scope.engine
    async with scope.flush_lock:
        events = drain_events(scope)
        if events:
            await engine.store.run_events_append(
                RunEventsAppendParams(environment=engine.environment, events=events)
            )
        with scope.lock:
            own, scope.pending_metadata = scope.pending_metadata, []
        if own:
            text = await apply_metadata_ops(engine, scope.ctx.run.id, collapse_ops(own))
            with scope.lock:
                # Keep operations queued while the write was in flight on top of what is stored.
                scope.metadata, _ = apply_ops(loads(text), scope.pending_metadata)
                scope.metadata_text = text
        await _flush_family(scope)


async def _flush_family(scope: RunScope) -> None:
    """Apply the operations aimed at the run's parent and root (each its own write)."""
    engine = scope.engine
    with scope.lock:
        parent, scope.pending_parent_metadata = scope.pending_parent_metadata, []
        root, scope.pending_root_metadata = scope.pending_root_metadata, []
    run = scope.ctx.run
    if parent and run.parent_id:
        await apply_metadata_ops(engine, run.parent_id, collapse_ops(parent))
    if root:
        root_id = run.root_id or run.id
        await apply_metadata_ops(engine, root_id, collapse_ops(root))


async def final_metadata(scope: RunScope) -> RunFinishMetadata | None:
    """At the end of an attempt: apply its pending parent and root operations (their own
    writes, so a parent resumed by this run's finish sees them), and take its own pending
    operations as a :class:`RunFinishMetadata` that travels with the finish instead of a
    write of its own. Waits for a periodic flush in flight, which keeps the order.

    A failure of the parent/root write is logged, as the finish must still be written.
    """
    async with scope.flush_lock:
        try:
            await _flush_family(scope)
        except Exception as exc:
            log.error("metadata of %s's parent/root: write failed: %s", scope.ctx.run.id, exc)
        with scope.lock:
            own, scope.pending_metadata = scope.pending_metadata, []
            base, result = scope.metadata_text, scope.metadata
    if not own:
        return None
    ops = collapse_ops(own)
    run_id = scope.ctx.run.id
    mutate = _mutator(ops)
    # The scope's metadata is its operations applied to ``base`` already (and size-checked as
    # each was made): while the stored text is still ``base`` (nobody else wrote it), that is
    # the result, with no re-parse, copy and re-check inside the store's transaction.
    known = None
    if base is not None:
        try:
            known = dumps(result, what="Metadata")
        except Exception:
            known = None

    def safe(current: str) -> str | None:
        if known is not None and current == base:
            return known
        try:
            return mutate(current)
        except Exception as exc:  # too large: reported, the finish is written regardless
            log.error("final metadata of %s not written: %s", run_id, exc)
            return None

    return RunFinishMetadata(
        mutate=safe,
        event=_metadata_event(scope.engine, run_id, ops),
        expected=base if known is not None else None,
        text=known,
    )


def _mutator(ops: list[MetadataOp]) -> Callable[[str], str]:
    def mutate(current: str) -> str:
        updated, _ = apply_ops(loads(current) or {}, ops)
        check_metadata_size(updated)
        return dumps(updated, what="Metadata")

    return mutate


def _metadata_event(engine: EngineBase, run_id: str, ops: list[MetadataOp]) -> NewEvent:
    return NewEvent(
        run_id=run_id,
        ts=engine.now(),
        kind="metadata",
        message=f"{len(ops)} operation{'s' if len(ops) != 1 else ''}",
        # Each value is checked already; the list and the op wrap it 2 deeper.
        attributes=dumps([op_to_dict(op) for op in ops], max_depth=MAX_JSON_DEPTH + 2),
    )


async def write_final_metadata(engine: EngineBase, run_id: str, final: FinalMetadata) -> None:
    """Write final metadata on its own: for a finish the store rejected (the run was canceled
    or taken over meanwhile), whose operations still apply, as a flush of their own would."""

    def mutate(current: str) -> str:
        new = final.mutate(current)
        return current if new is None else new

    await engine.store.run_metadata_update(
        RunMetadataParams(
            environment=engine.environment,
            run_id=run_id,
            mutate=mutate,
            now=engine.now(),
            event=final.event,
        )
    )


async def apply_metadata_ops(engine: EngineBase, run_id: str, ops: list[MetadataOp]) -> str:
    """Apply ``ops`` to a run's stored metadata atomically (size-checked); the new JSON text."""

    event = _metadata_event(engine, run_id, ops)
    return await engine.store.run_metadata_update(
        RunMetadataParams(
            environment=engine.environment,
            run_id=run_id,
            mutate=_mutator(ops),
            now=event.ts,
            event=event,
        )
    )
