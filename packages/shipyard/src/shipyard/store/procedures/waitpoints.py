"""Procedures of waitpoints: durable waits created, blocked on, resolved and completed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from shipyard.errors import ShipyardError
from shipyard.records import (
    WaitpointPage,
    WaitpointRecord,
)
from shipyard.store.params import (
    RecordedCall,
    RunClaimParams,
    WaitpointBlockManyParams,
    WaitpointBlockParams,
    WaitpointBlockResult,
    WaitpointCompleteParams,
    WaitpointCreateManyParams,
    WaitpointCreateParams,
    WaitpointGetParams,
    WaitpointListParams,
    WaitpointReads,
    WaitpointReadsParams,
    WaitpointRecordedParams,
    WaitpointResolveParams,
)
from shipyard.store.procedures.runs import insert_resolved
from shipyard.store.rows import (
    json_list,
    waitpoint_values,
)
from shipyard.store.steps import (
    Procedure,
    begin,
    count,
    lock,
    notify,
    row,
    rows,
)

# -- waitpoints ---------------------------------------------------------------------------------


def waitpoint_create(p: WaitpointCreateParams) -> Procedure[tuple[WaitpointRecord, bool]]:
    """Create a waitpoint, or return the live one holding its idempotency key (True); an
    expired key is cleared first. Runs inside the caller's transaction."""
    values = waitpoint_values(p)
    for _ in range(3):
        if p.idempotency_key is not None:
            found = yield row("waitpoint_get_by_key", values)
            if found is not None:
                existing = WaitpointRecord(*found)
                expires = existing.idempotency_key_expires_at
                if expires is None or expires > p.now:
                    return existing, True
                yield count(
                    "waitpoint_clear_key", {"environment": p.environment, "id": existing.id}
                )
        inserted = yield row("waitpoint_insert", values)
        if inserted is not None:
            return WaitpointRecord(*inserted), False
    raise ShipyardError(f"Could not create waitpoint {p.id}: its key kept conflicting.")


def waitpoint_create_alone(p: WaitpointCreateParams) -> Procedure[tuple[WaitpointRecord, bool]]:
    """:func:`waitpoint_create` in a transaction of its own (without an idempotency key it is
    one INSERT: no BEGIN/COMMIT round trips around it)."""
    if p.idempotency_key is not None:
        yield begin()
    return (yield from waitpoint_create(p))


def waitpoint_create_many(p: WaitpointCreateManyParams) -> Procedure[list[WaitpointRecord]]:
    """New waitpoints without idempotency keys, in one transaction (one INSERT each)."""
    if any(c.environment != p.environment or c.idempotency_key is not None for c in p.creates):
        raise ValueError("waitpoint_create_many: the params' environment, no idempotency keys")
    yield begin()
    created: list[WaitpointRecord] = []
    for create in p.creates:
        created.append((yield from waitpoint_create(create))[0])
    return created


def waitpoint_get(p: WaitpointGetParams) -> Procedure[WaitpointRecord | None]:
    """One waitpoint by id."""
    found = yield row("waitpoint_get", {"environment": p.environment, "id": p.waitpoint_id})
    return WaitpointRecord(*found) if found else None


def waitpoint_list(p: WaitpointListParams) -> Procedure[WaitpointPage]:
    """Tokens newest first, filtered and paged by the database; ``output`` is not loaded."""
    found = yield rows(
        "waitpoint_list",
        {
            "environment": p.environment,
            "statuses": json_list(p.statuses),
            "tags": json_list(p.tags),
            "idempotency_key": p.idempotency_key,
            "created_from": p.created_from,
            "created_to": p.created_to,
            "cursor": p.cursor,
            "limit": p.limit + 1,
        },
    )
    items = [WaitpointRecord(*r) for r in found[: p.limit]]
    more = len(found) > p.limit
    return WaitpointPage(items=items, next_cursor=items[-1].id if more and items else None)


def waitpoint_recorded(p: WaitpointRecordedParams) -> Procedure[RecordedCall | None]:
    """The durable call an attempt recorded at ``seq``."""
    found = yield row(
        "waitpoint_recorded",
        {
            "environment": p.environment,
            "run_id": p.run_id,
            "attempt_number": p.attempt_number,
            "seq": p.seq,
        },
    )
    return RecordedCall(found[0], WaitpointRecord(*found[1:])) if found else None


def waitpoint_reads(p: WaitpointReadsParams) -> Procedure[WaitpointReads]:
    """Waitpoints by id and recorded calls, many at once."""
    gets: list[WaitpointRecord | None] = []
    for get in p.gets:
        gets.append((yield from waitpoint_get(get)))
    recorded: list[RecordedCall | None] = []
    for call in p.recorded:
        recorded.append((yield from waitpoint_recorded(call)))
    return WaitpointReads(gets=gets, recorded=recorded)


def waitpoint_block(p: WaitpointBlockParams) -> Procedure[WaitpointBlockResult]:
    """Link the call to its waitpoint, settle it if already due, and suspend the run
    (EXECUTING → WAITING, fenced like a finish) while it is pending.

    Suspending gives the run's slot back, so PostgreSQL locks the environment's slot row
    first (the lock order every slot change takes).
    """
    yield begin()
    yield lock("environment_slot_lock", {"environment": p.environment})
    result = yield from _block(p)
    if children([p]):
        yield notify(p.environment, p.now)
    return result


def waitpoint_block_many(
    p: WaitpointBlockManyParams, *, wake: bool = True
) -> Procedure[list[WaitpointBlockResult]]:
    """:func:`waitpoint_block` for each block, in one transaction (one slot-row lock).
    ``wake=False``: the caller wakes workers for the children it created, if it leaves any
    unclaimed (:meth:`Store.waitpoint_block_and_claim`)."""
    if any(b.environment != p.environment for b in p.blocks):
        raise ValueError("waitpoint_block_many: every block must be in the params' environment")
    yield begin()
    yield lock("environment_slot_lock", {"environment": p.environment})
    results: list[WaitpointBlockResult] = []
    for block in p.blocks:
        results.append((yield from _block(block)))
    if wake and children(p.blocks):
        yield notify(p.environment, max(b.now for b in p.blocks))
    return results


def children(blocks: Sequence[WaitpointBlockParams]) -> list[str]:
    """The ids of the runs the blocks create (``trigger_and_wait``'s children)."""
    return [b.create.run.id for b in blocks if b.create is not None and b.create.run is not None]


def with_freed_slots(claim: RunClaimParams, results: list[WaitpointBlockResult]) -> RunClaimParams:
    """The claim of :meth:`Store.waitpoint_block_and_claim`: ``claim.limit`` plus one slot per
    run the blocks suspended (a block whose waitpoint was already resolved keeps its slot),
    taken in the block's transaction (no peek: the slot-row lock is held already)."""
    freed = sum(1 for r in results if r.suspended)
    return replace(claim, limit=claim.limit + freed, peek=False)


def _block(p: WaitpointBlockParams) -> Procedure[WaitpointBlockResult]:
    if p.create is not None and p.create.run is not None:
        yield from insert_resolved(p.create.run)
    if p.create is not None:
        waitpoint_id = (yield from waitpoint_create(p.create))[0].id
    elif p.waitpoint_id is not None:
        waitpoint_id = p.waitpoint_id
    else:
        raise ValueError("waitpoint_block needs create or waitpoint_id")
    values = {
        "environment": p.environment,
        "run_id": p.run_id,
        "attempt_number": p.attempt_number,
        "worker_id": p.worker_id,
        "seq": p.seq,
        "call": p.call,
        "now": p.now,
        "waitpoint_id": waitpoint_id,
        "id": waitpoint_id,
    }
    yield count("waitpoint_link", values)
    yield count("waitpoint_settle_one", values)
    found = yield row("waitpoint_block_get", values)
    if found is None:
        raise ShipyardError(f"Waitpoint {waitpoint_id} not found.")
    waitpoint = WaitpointRecord(*found)
    if waitpoint.status != "PENDING":
        return WaitpointBlockResult(waitpoint, suspended=False, owned=True)
    owned = (yield count("run_suspend", values)) == 1
    return WaitpointBlockResult(waitpoint, suspended=owned, owned=owned)


def waitpoint_resolve_due(p: WaitpointResolveParams) -> Procedure[list[str]]:
    """Time out due tokens, complete due dates and waitpoints of final runs and batches, and
    re-queue the WAITING runs none of whose current waitpoints is still pending. Peeks first:
    with nothing waiting, no write lock is taken."""
    values = {"environment": p.environment, "now": p.now, "timeout_error": p.timeout_error}
    if p.peek and (yield row("waitpoint_due_exists", values)) is None:
        return []
    yield begin()
    yield count("waitpoint_timeout_due", values)
    yield count("waitpoint_settle_due", values)
    woken = [r[0] for r in (yield rows("runs_wake", values))]
    if woken:
        yield notify(p.environment, p.now)
    return woken


def waitpoint_complete(p: WaitpointCompleteParams) -> Procedure[WaitpointRecord | None]:
    """Complete a pending token (first output wins) and re-queue the runs it released."""
    values = {
        "environment": p.environment,
        "id": p.waitpoint_id,
        "output": p.output,
        "now": p.now,
    }
    yield begin()
    if (yield count("waitpoint_complete", values)) == 1:
        woken = yield rows("runs_wake_waitpoint", values)
        if woken:
            yield notify(p.environment, p.now)
    found = yield row("waitpoint_get", values)
    return WaitpointRecord(*found) if found else None
