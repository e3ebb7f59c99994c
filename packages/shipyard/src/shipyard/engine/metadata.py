"""Writing run metadata and buffered events: what ``metadata.*`` and ``logger.*`` queue in the
run scope reaches the store here.

Events go first so the change feed keeps the order the task emitted them in; then the run's own
metadata operations (collapsed), then those aimed at its parent and root, each applied
atomically by the store.
"""

from __future__ import annotations

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
from shipyard.store.params import RunEventsAppendParams, RunMetadataParams

__all__ = ["apply_metadata_ops", "drain_events", "flush_scope"]


def drain_events(scope: RunScope) -> list[NewEvent]:
    """Take the scope's buffered events (they travel with the next write)."""
    with scope.lock:
        events, scope.pending_events = scope.pending_events, []
    return events


async def flush_scope(scope: RunScope) -> None:
    """Write a run scope's buffered events, then its queued metadata operations."""
    engine = scope.engine
    events = drain_events(scope)
    if events:
        await engine.store.run_events_append(
            RunEventsAppendParams(environment=engine.environment, events=events)
        )
    with scope.lock:
        own, scope.pending_metadata = scope.pending_metadata, []
        parent, scope.pending_parent_metadata = scope.pending_parent_metadata, []
        root, scope.pending_root_metadata = scope.pending_root_metadata, []
    run = scope.ctx.run
    if own:
        text = await apply_metadata_ops(engine, run.id, collapse_ops(own))
        with scope.lock:
            # Keep operations queued while the write was in flight on top of what is stored.
            scope.metadata, _ = apply_ops(loads(text), scope.pending_metadata)
    if parent and run.parent_id:
        await apply_metadata_ops(engine, run.parent_id, collapse_ops(parent))
    if root:
        root_id = run.root_id or run.id
        await apply_metadata_ops(engine, root_id, collapse_ops(root))


async def apply_metadata_ops(engine: EngineBase, run_id: str, ops: list[MetadataOp]) -> str:
    """Apply ``ops`` to a run's stored metadata atomically (size-checked); the new JSON text."""

    def mutate(current: str) -> str:
        updated, _ = apply_ops(loads(current) or {}, ops)
        check_metadata_size(updated)
        return dumps(updated, what="Metadata")

    now = engine.now()
    return await engine.store.run_metadata_update(
        RunMetadataParams(
            environment=engine.environment,
            run_id=run_id,
            mutate=mutate,
            now=now,
            event=NewEvent(
                run_id=run_id,
                ts=now,
                kind="metadata",
                message=f"{len(ops)} operation{'s' if len(ops) != 1 else ''}",
                # Each value is checked already; the list and the op wrap it 2 deeper.
                attributes=dumps([op_to_dict(op) for op in ops], max_depth=MAX_JSON_DEPTH + 2),
            ),
        )
    )
