"""The PostgreSQL store's statement values: the parameters its hand-written statements bind
(claim, finish, waitpoint blocks and creates) and the reading of their results.

Pure functions of the store's params, kept apart from the connection handling in ``store.py``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from shipyard.records import RunRecord
from shipyard.store.params import (
    RunClaimParams,
    RunFinishManyParams,
    RunFinishMetadata,
    RunFinishParams,
    WaitpointBlockParams,
    WaitpointCreateParams,
)
from shipyard.store.rows import event_row, run_builder


def records(cursor: Any, found: Sequence[Sequence[Any]]) -> list[RunRecord]:
    """``found``, the rows ``cursor`` fetched from ``runs``, as records. The column names are
    read from the result itself: psycopg's ``description`` makes a ``Column`` per column on
    every call, ~30 µs for a row of ``runs``."""
    if not found:
        return []
    result = cursor.pgresult
    names = tuple([result.fname(i).decode() for i in range(result.nfields)])
    build = run_builder(names)
    return [build(r) for r in found]


def claim_values(params: RunClaimParams) -> dict[str, Any]:
    """The parameters of ``run_claim_limited``."""
    return {
        "environment": params.environment,
        "env": params.environment,
        # Short names (wid, lease, burst): see run_claim_limited's note on psycopg's cache.
        "wid": params.worker_id,
        "task_ids": list(params.task_ids),
        "limit": params.limit,
        "now": params.now,
        "lease": params.lease_expires_at,
        "env_limit": params.environment_limit,
        "burst": params.burst_factor,
        # The version lock (0006): the run locks to this version; runs locked to another
        # version whose worker heartbeated since live_since are skipped.
        "version": params.version,
        "live_since": params.live_since,
        # The worker's share of each group's limit (store/claims.py): the whole of it alone.
        "share": 1.0 if params.share is None else params.share.fraction,
        "held": "[]" if params.share is None else json.dumps(params.share.held_rows()),
    }


def finish_values(
    params: RunFinishManyParams, stored: dict[str, str] | None = None
) -> dict[str, Any]:
    """The parameters of ``run_finish_many``: inputs and events as one JSON array each.

    ``stored``: the metadata (locked) of the runs whose finish carries metadata operations;
    each gets its new metadata (NULL: unchanged) and, when changed, its metadata event last.
    """
    inputs: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for i, p in enumerate(params.finishes, 1):
        metadata = base = None
        if p.metadata is not None:
            if stored is None:  # compare-and-set: written only while the row holds the base
                metadata, base = p.metadata.text, p.metadata.expected
            elif p.run_id in stored:
                metadata = p.metadata.mutate(stored[p.run_id])
        inputs.append(
            {
                "ord": i,
                "run_id": p.run_id,
                "attempt_number": p.attempt_number,
                "worker_id": p.worker_id,
                "status": p.status,
                "attempt_status": p.attempt_status,
                "output": p.output,
                "error": p.error,
                "retry_at": p.retry_at,
                "now": p.now,
                "metadata": metadata,
                "metadata_base": base,
            }
        )
        own = p.events
        if metadata is not None and p.metadata is not None:
            own = [*p.events, p.metadata.event]  # the metadata change after the logs
        for e in own:
            events.append({**event_row(params.environment, e), "seq": len(events), "owner": i})
    return {
        "environment": params.environment,
        "input": json.dumps(inputs),
        "events": json.dumps(events),
    }


def block_values(block: WaitpointBlockParams) -> dict[str, Any]:
    """The bound values of one block's statements (waitpoint_block_many)."""
    if block.create is not None:
        waitpoint_id = block.create.id
    elif block.waitpoint_id is not None:
        waitpoint_id = block.waitpoint_id
    else:
        raise ValueError("waitpoint_block needs create or waitpoint_id")
    return {
        "environment": block.environment,
        "run_id": block.run_id,
        "attempt_number": block.attempt_number,
        "worker_id": block.worker_id,
        "seq": block.seq,
        "call": block.call,
        "now": block.now,
        "waitpoint_id": waitpoint_id,
        "id": waitpoint_id,
    }


def create_row(create: WaitpointCreateParams) -> dict[str, Any]:
    """One row of ``waitpoint_insert_many`` (a waitpoint without an idempotency key)."""
    return {
        "id": create.id,
        "environment": create.environment,
        "kind": create.kind,
        "completes_at": create.completes_at,
        "timeout_at": create.timeout_at,
        "tags": json.dumps(list(create.tags)),
        "target_id": create.target_id,
        "now": create.now,
    }


def ends_runs(params: RunFinishManyParams) -> bool:
    """Whether a finish batch ends a run a parent may be waiting for."""
    return any(f.settles for f in params.finishes)


def needs_read(params: RunFinishManyParams) -> bool:
    """Whether a finish carries metadata operations whose result is not known beforehand (the
    batch then reads and locks those rows first)."""
    return any(
        f.metadata is not None and (f.metadata.expected is None or f.metadata.text is None)
        for f in params.finishes
    )


def locked_metadata(finish: RunFinishParams) -> RunFinishMetadata | None:
    """The finish's metadata without its compare-and-set values: applied to the row as read."""
    if finish.metadata is None:
        return None
    return replace(finish.metadata, expected=None, text=None)


def accepted_finishes(count: int, found: Sequence[Sequence[Any]]) -> list[bool]:
    """Which of ``count`` finishes were accepted, from the ``ord`` (1-based) of each; a row
    updated twice in one batch matches one input only."""
    accepted = {row[0] - 1 for row in found}
    return [i in accepted for i in range(count)]
