"""Procedures of waitpoints: durable waits created, blocked on, resolved and completed."""

from __future__ import annotations

from shipyard.errors import ShipyardError
from shipyard.records import (
    WaitpointPage,
    WaitpointRecord,
)
from shipyard.store.params import (
    RecordedCall,
    WaitpointBlockParams,
    WaitpointBlockResult,
    WaitpointCompleteParams,
    WaitpointCreateParams,
    WaitpointGetParams,
    WaitpointListParams,
    WaitpointRecordedParams,
    WaitpointResolveParams,
)
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


def waitpoint_block(p: WaitpointBlockParams) -> Procedure[WaitpointBlockResult]:
    """Link the call to its waitpoint, settle it if already due, and suspend the run
    (EXECUTING → WAITING, fenced like a finish) while it is pending.

    Suspending gives the run's slot back, so PostgreSQL locks the environment's slot row
    first (the lock order every slot change takes).
    """
    yield begin()
    yield lock("environment_slot_lock", {"environment": p.environment})
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
    if (yield row("waitpoint_due_exists", values)) is None:
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
        woken = yield rows("runs_wake", values)
        if woken:
            yield notify(p.environment, p.now)
    found = yield row("waitpoint_get", values)
    return WaitpointRecord(*found) if found else None
