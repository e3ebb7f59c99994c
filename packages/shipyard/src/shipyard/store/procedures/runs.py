"""Procedures of runs: insert (keys and debounce resolved), read, finish, release, reap,
cancel, metadata, tags, events, attempts, schedules, batches and idempotency keys.
"""

from __future__ import annotations

import json
from typing import Any

from shipyard.errors import RunNotFoundError, ShipyardError
from shipyard.records import (
    AttemptRecord,
    BatchRecord,
    NewEvent,
    Page,
    RunEventRecord,
    RunRecord,
)
from shipyard.store.params import (
    AttemptListParams,
    BatchGetParams,
    BatchInsertParams,
    BatchListParams,
    BatchRunsParams,
    IdempotencyKeyResetParams,
    PurgedRows,
    ReapedRun,
    RunCancelParams,
    RunEventsAppendParams,
    RunEventsListParams,
    RunFinishManyParams,
    RunGetParams,
    RunInsertBulkParams,
    RunInsertManyParams,
    RunInsertParams,
    RunInsertResult,
    RunLeasedParams,
    RunListParams,
    RunMetadataParams,
    RunOwnership,
    RunOwnershipParams,
    RunPurgeParams,
    RunReapParams,
    RunReleaseParams,
    RunRescheduleParams,
    RunScheduleParams,
    RunStatsParams,
    RunTagsAddParams,
    ScheduledRuns,
)
from shipyard.store.rows import (
    event_row,
    insert_row,
    inserted_record,
    json_list,
)
from shipyard.store.steps import (
    Procedure,
    begin,
    count,
    feed,
    insert_bulk,
    insert_runs,
    lock,
    many,
    notify,
    row,
    rows,
    runs,
)

# A conflict is an idempotency key or a debounce key already held; each round settles one,
# and a racing trigger can take a key between rounds, so a few rounds settle any interleaving.
_INSERT_ROUNDS = 4

# -- runs ---------------------------------------------------------------------------------------


def run_insert(p: RunInsertParams) -> Procedure[RunInsertResult]:
    """Create a run (or resolve its keys) in one transaction; wake workers if one was made."""
    yield begin()
    result = yield from insert_resolved(p)
    if not result.cached:
        yield notify(p.environment, p.created_at)
    return result


def insert_resolved(p: RunInsertParams) -> Procedure[RunInsertResult]:
    """Insert a run, or settle the key it conflicts with (inside the caller's transaction).

    An idempotency key held by a live run returns that run (cached); one held by a run whose
    status the engine lists as releasing, or past its expiry, is cleared and the insert
    retried. A debounce key held by a DELAYED run pushes that run (trailing: takes this
    trigger's data) unless the push would pass ``max_delay``, which releases the key.
    """
    values = insert_row(p)
    env = p.environment
    for _ in range(_INSERT_ROUNDS):
        if (yield insert_runs([values])) == 1:
            if p.tags:
                yield many("run_tag_insert", [{"run_id": p.id, "tag": t} for t in p.tags])
            return RunInsertResult(inserted_record(values), cached=False)
        if p.idempotency_key is not None:
            found = yield runs(
                "run_get_by_idempotency_key",
                {"environment": env, "task_id": p.task_id, "idempotency_key": p.idempotency_key},
            )
            if found:
                existing: RunRecord = found[0]
                if not _key_released(existing, p):
                    return RunInsertResult(existing, cached=True)
                yield count(
                    "run_clear_idempotency_key",
                    {"environment": env, "id": existing.id, "now": p.created_at},
                )
                continue
        if p.debounce_key is not None:
            found = yield runs(
                "run_get_debounced",
                {"environment": env, "task_id": p.task_id, "debounce_key": p.debounce_key},
            )
            if found:
                debounced: RunRecord = found[0]
                if _debounce_overflows(debounced, p):
                    yield count(
                        "run_debounce_release",
                        {"environment": env, "id": debounced.id, "now": p.created_at},
                    )
                    continue
                pushed = yield runs("run_debounce_push", _debounce_push_values(debounced, p))
                if not pushed:
                    continue  # it started meanwhile: a new run is due
                if p.debounce_trailing:
                    yield count("run_tags_delete", {"run_id": debounced.id})
                    if p.tags:
                        yield many(
                            "run_tag_insert", [{"run_id": debounced.id, "tag": t} for t in p.tags]
                        )
                return RunInsertResult(pushed[0], cached=False)
    raise ShipyardError(f"Could not insert run {p.id}: its id or keys kept conflicting.")


def _key_released(existing: RunRecord, p: RunInsertParams) -> bool:
    expired = (
        existing.idempotency_key_expires_at is not None
        and existing.idempotency_key_expires_at <= p.created_at
    )
    return expired or existing.status in p.idempotency_release_statuses


def _debounce_overflows(existing: RunRecord, p: RunInsertParams) -> bool:
    return (
        p.debounce_max_delay_ms is not None
        and p.debounce_delay_until is not None
        and p.debounce_delay_until > existing.created_at + p.debounce_max_delay_ms
    )


def _debounce_push_values(existing: RunRecord, p: RunInsertParams) -> dict[str, Any]:
    return {
        "environment": p.environment,
        "id": existing.id,
        "delay_until": p.debounce_delay_until,
        "trailing": int(p.debounce_trailing),
        "payload": p.payload,
        "metadata": p.metadata,
        "tags": json.dumps(list(p.tags)),
        "max_attempts": p.max_attempts,
        "max_duration_s": p.max_duration_s,
        "machine": p.machine,
        "now": p.created_at,
    }


def _batch_values(environment: str, batch: BatchInsertParams, run_count: int) -> dict[str, Any]:
    """The values of ``batch_insert`` for a batch of ``run_count`` runs."""
    return {
        "id": batch.id,
        "environment": environment,
        "run_count": run_count,
        "idempotency_key": batch.idempotency_key,
        "created_at": batch.created_at,
    }


def run_insert_many(p: RunInsertManyParams) -> Procedure[list[RunInsertResult]]:
    """Create many runs (and their batch) in one transaction, in input order; wake once."""
    if any(r.environment != p.environment for r in p.runs):
        raise ValueError("run_insert_many: every run must be in the params' environment")
    yield begin()
    if p.batch is not None:
        yield count("batch_insert", _batch_values(p.environment, p.batch, len(p.runs)))
    results: list[RunInsertResult] = []
    if all(r.idempotency_key is None and r.debounce_key is None and not r.tags for r in p.runs):
        # The common bulk case: no keys to resolve, so one bulk insert suffices, and each new
        # row is exactly its insert values plus the column defaults.
        values = [insert_row(r) for r in p.runs]
        if (yield insert_runs(values)) != len(values):
            raise ShipyardError("Run id collision on batch insert.")
        results = [RunInsertResult(inserted_record(v), cached=False) for v in values]
    else:
        for item in p.runs:
            results.append((yield from insert_resolved(item)))
    if p.batch is not None:
        yield count(
            "batch_set_run_ids",
            {
                "environment": p.environment,
                "id": p.batch.id,
                "run_ids": json.dumps([r.run.id for r in results]),
            },
        )
    if p.runs:
        yield notify(p.environment, p.runs[0].created_at)
    return results


def run_insert_bulk(p: RunInsertBulkParams) -> Procedure[int]:
    """Create runs made from one template (and their batch) in one transaction, in order;
    wake once. The template holds no key and no tag: every row is inserted as is."""
    t = p.template
    if t.environment != p.environment:
        raise ValueError("run_insert_bulk: the template must be in the params' environment")
    if t.idempotency_key is not None or t.debounce_key is not None or t.tags:
        raise ValueError("run_insert_bulk: a template has no idempotency key, debounce or tags")
    if len(p.ids) != len(p.payloads):
        raise ValueError("run_insert_bulk: one payload per id")
    yield begin()
    if p.batch is not None:
        yield count("batch_insert", _batch_values(p.environment, p.batch, len(p.ids)))
    if p.ids:
        # A batch index of None stays None; else each run's is its position.
        template = {**insert_row(t), "batch_index": None if t.batch_id is None else 0}
        if (yield insert_bulk(template, p.ids, p.payloads)) != len(p.ids):
            raise ShipyardError("Run id collision on batch insert.")
    if p.batch is not None:
        yield count(
            "batch_set_run_ids",
            {"environment": p.environment, "id": p.batch.id, "run_ids": json.dumps(list(p.ids))},
        )
    if p.ids:
        yield notify(p.environment, t.created_at)
    return len(p.ids)


def run_get(p: RunGetParams) -> Procedure[RunRecord | None]:
    """One run by id."""
    found = yield runs("run_get", {"environment": p.environment, "id": p.run_id})
    return found[0] if found else None


def run_list(p: RunListParams) -> Procedure[Page]:
    """Runs newest first, filtered, one page (one extra row tells whether more follow)."""
    items: list[RunRecord] = yield runs(
        "run_list" if p.parent_run_id is None else "run_list_children",
        {
            "environment": p.environment,
            "cursor": p.cursor,
            "statuses": json_list(p.statuses),
            "task_ids": json_list(p.task_ids),
            "tag": p.tag,
            "batch_id": p.batch_id,
            "schedule_id": p.schedule_id,
            "created_from": p.created_from,
            "created_to": p.created_to,
            "parent_run_id": p.parent_run_id,
            "limit": p.limit + 1,
        },
    )
    more = len(items) > p.limit
    items = items[: p.limit]
    return Page(items=items, next_cursor=items[-1].id if more and items else None)


def run_stats(p: RunStatsParams) -> Procedure[list[tuple[int, str, int]]]:
    """``(bucket, status, runs)`` for the runs created at or after ``created_from``."""
    found = yield rows(
        "run_stats",
        {
            "environment": p.environment,
            "created_from": p.created_from,
            "bucket_ms": p.bucket_ms,
        },
    )
    return [(int(b), str(s), int(n)) for b, s, n in found]


def run_finish_many(p: RunFinishManyParams) -> Procedure[list[bool]]:
    """Record the end of attempts, each fenced by attempt number and lease owner.

    An accepted finish writes its attempt's events first, so they get lower ids than the
    status event the database appends for the status change; its last metadata operations
    (``metadata``) are applied in the same transaction, their event after the others.
    """
    yield begin()
    accepted = yield from _finish_each(p)
    yield from settle_finished(p, accepted)
    return accepted


def settle_finished(p: RunFinishManyParams, accepted: list[bool]) -> Procedure[None]:
    """Settle the waitpoints of the runs the accepted finishes ended and wake their parents:
    they resume with this commit (no resolver pass)."""
    ended = [f.run_id for f, ok in zip(p.finishes, accepted, strict=True) if ok and f.settles]
    if ended:
        now = max(f.now for f in p.finishes)
        wake = {"environment": p.environment, "ids": json.dumps(ended), "now": now}
        yield count("waitpoint_settle_finished", wake)
        if (yield rows("runs_wake_parents", wake)):
            yield notify(p.environment, now)


def _finish_each(p: RunFinishManyParams) -> Procedure[list[bool]]:
    """The finishes one by one, each run's events before its status change."""
    accepted: list[bool] = []
    for f in p.finishes:
        values = {
            "environment": p.environment,
            "run_id": f.run_id,
            "attempt_number": f.attempt_number,
            "worker_id": f.worker_id,
            "status": f.status,
            "attempt_status": f.attempt_status,
            "now": f.now,
            "output": f.output,
            "error": f.error,
            "retry_at": f.retry_at,
        }
        if f.events or f.metadata is not None:
            if (yield row("run_finish_fence", values)) is None:
                accepted.append(False)
                continue
            events = list(f.events)
            if f.metadata is not None:
                # The attempt's last metadata operations ride on its finish: applied to the
                # metadata as stored now (under the write lock), their event after the logs.
                key = {"environment": p.environment, "run_id": f.run_id}
                stored = yield row("run_metadata_get", key)
                new = f.metadata.mutate(stored[0])
                if new is not None:
                    yield count("run_metadata_set", {**key, "metadata": new, "now": f.now})
                    events.append(f.metadata.event)
            if events:
                yield many("run_event_insert", [event_row(p.environment, e) for e in events])
        ok = (yield count("run_finish", values)) == 1
        accepted.append(ok)
        if ok:
            yield count("attempt_finish", values)
    return accepted


def run_release(p: RunReleaseParams) -> Procedure[bool]:
    """Give a claimed run back without counting its attempt."""
    values = {
        "environment": p.environment,
        "run_id": p.run_id,
        "attempt_number": p.attempt_number,
        "worker_id": p.worker_id,
        "now": p.now,
    }
    yield begin()
    yield lock("environment_slot_lock", {"environment": p.environment})
    if (yield count("run_release", values)) != 1:
        return False
    yield count("attempt_release", values)
    return True


def run_reap_expired(p: RunReapParams) -> Procedure[list[ReapedRun]]:
    """Re-queue or crash the runs whose lease expired; their attempts count as crashed."""
    values = {"environment": p.environment, "now": p.now, "crash_error": p.crash_error}
    yield begin()
    yield lock("environment_slot_lock", {"environment": p.environment})
    found = yield rows("run_reap_expired", values)
    reaped = [ReapedRun(run_id=r[0], attempt_number=r[1], status=r[2]) for r in found]
    if reaped:
        yield many(
            "attempt_crash",
            [{**values, "run_id": r.run_id, "attempt_number": r.attempt_number} for r in reaped],
        )
    return reaped


def run_cancel(p: RunCancelParams) -> Procedure[list[str]]:
    """Cancel a run and its non-final descendants (their executing attempts too)."""
    yield begin()
    yield lock("environment_slot_lock", {"environment": p.environment})
    found = yield rows(
        "run_cancel",
        {
            "environment": p.environment,
            "run_id": p.run_id,
            "now": p.now,
            "error": p.error,
            "final_statuses": json.dumps(sorted(p.final_statuses)),
        },
    )
    ids = [r[0] for r in found]
    if ids:
        yield many("attempt_cancel", [{"run_id": i, "now": p.now} for i in ids])
    return ids


def run_purge(p: RunPurgeParams) -> Procedure[PurgedRows]:
    """Delete the oldest runs (by id, which sorts by creation) that finished before
    ``p.before``, and what belongs to them; then completed waitpoints no run waits on. Streams
    go with their run (a delete trigger). Peeks first: with nothing old enough, no write
    lock is taken (every worker runs this every few seconds)."""
    values = {"environment": p.environment, "before": p.before, "limit": p.limit}
    if (yield row("retention_due", values)) is None:
        return PurgedRows(runs=0, waitpoints=0)
    yield begin()
    ids = [{"run_id": r[0]} for r in (yield rows("retention_runs", values))]
    if ids:
        for name in (
            "run_tags_delete",
            "attempts_delete",
            "run_events_delete",
            "run_waitpoints_delete",
            "run_delete",
        ):
            yield many(name, ids)
    waitpoints: int = yield count("retention_waitpoints", values)
    return PurgedRows(runs=len(ids), waitpoints=waitpoints)


def run_leased(p: RunLeasedParams) -> Procedure[list[RunRecord]]:
    """The runs leased to a worker now."""
    found: list[RunRecord] = yield runs(
        "run_leased", {"environment": p.environment, "worker_id": p.worker_id}
    )
    return found


def run_ownership(p: RunOwnershipParams) -> Procedure[list[RunOwnership]]:
    """Status, attempt and owner of the given runs."""
    found = yield rows(
        "run_ownership", {"environment": p.environment, "ids": json.dumps(list(p.run_ids))}
    )
    return [RunOwnership(r[0], r[1], r[2], r[3]) for r in found]


def run_metadata_update(p: RunMetadataParams) -> Procedure[str]:
    """Read (locked), mutate and write a run's metadata, with the engine's event."""
    key = {"environment": p.environment, "run_id": p.run_id}
    yield begin()
    found = yield row("run_metadata_get", key)
    if found is None:
        raise RunNotFoundError(f"Run {p.run_id} not found.", run_id=p.run_id)
    new = p.mutate(found[0])
    yield count("run_metadata_set", {**key, "metadata": new, "now": p.now})
    if p.event is not None:
        yield count("run_event_insert", event_row(p.environment, p.event))
        yield feed()  # realtime readers of the change feed
    return new


def run_tags_add(p: RunTagsAddParams) -> Procedure[list[str]]:
    """Add the tags the run lacks while it has fewer than ``max_tags``; a ``tag`` event names
    the ones added."""
    key = {"environment": p.environment, "run_id": p.run_id}
    yield begin()
    found = yield row("run_tags_get", key)
    if found is None:
        return []
    tags: list[str] = json.loads(found[0])
    added: list[str] = []
    for tag in p.tags:
        if tag not in tags and len(tags) < p.max_tags:
            tags.append(tag)
            added.append(tag)
    if added:
        yield count("run_tags_set", {**key, "tags": json.dumps(tags), "now": p.now})
        yield many("run_tag_insert", [{"run_id": p.run_id, "tag": t} for t in added])
        event = NewEvent(run_id=p.run_id, ts=p.now, kind="tag", message=",".join(added))
        yield count("run_event_insert", event_row(p.environment, event))
        yield feed()  # realtime readers of the change feed
    return tags


def run_events_append(p: RunEventsAppendParams) -> Procedure[None]:
    """Append events in order (one transaction)."""
    yield begin()
    yield many("run_event_insert", [event_row(p.environment, e) for e in p.events])


def run_events_list(p: RunEventsListParams) -> Procedure[list[RunEventRecord]]:
    """A run's events after ``after_id``, oldest first."""
    found = yield rows(
        "run_events_list",
        {
            "environment": p.environment,
            "run_id": p.run_id,
            "after_id": p.after_id,
            "limit": p.limit,
        },
    )
    return [RunEventRecord(*r) for r in found]


def attempt_list(p: AttemptListParams) -> Procedure[list[AttemptRecord]]:
    """A run's attempts, in order."""
    found = yield rows("attempt_list", {"environment": p.environment, "run_id": p.run_id})
    return [AttemptRecord(*r) for r in found]


def run_schedule_due(p: RunScheduleParams) -> Procedure[ScheduledRuns]:
    """Expire runs whose TTL passed unstarted, then promote due DELAYED runs (a run due and
    expired at once expires). Peeks first: an idle tick takes no write lock. Returns when the
    next such change is due, so a worker can sleep until exactly then."""
    values = {"environment": p.environment, "now": p.now, "expired_error": p.expired_error}
    next_due = _next_due((yield row("run_next_due", values)))
    if next_due is None or next_due > p.now:
        return ScheduledRuns(promoted=[], expired=[], next_due=next_due)
    yield begin()
    expired = [r[0] for r in (yield rows("run_expire_due", values))]
    promoted = [r[0] for r in (yield rows("run_promote_due", values))]
    if promoted:
        yield notify(p.environment, p.now)
    after = _next_due((yield row("run_next_due", values)))
    return ScheduledRuns(promoted=promoted, expired=expired, next_due=after)


def _next_due(found: Any) -> int | None:
    """The earlier of a ``run_next_due`` row's two times (either may be NULL)."""
    if found is None:
        return None
    times = [int(t) for t in found if t is not None]
    return min(times) if times else None


def run_reschedule(p: RunRescheduleParams) -> Procedure[RunRecord | None]:
    """Move a DELAYED run."""
    found = yield runs(
        "run_reschedule",
        {
            "environment": p.environment,
            "run_id": p.run_id,
            "delay_until": p.delay_until,
            "now": p.now,
        },
    )
    return found[0] if found else None


# -- batches and keys --------------------------------------------------------------------------


def batch_get(p: BatchGetParams) -> Procedure[BatchRecord | None]:
    """One batch by id."""
    found = yield row("batch_get", {"environment": p.environment, "id": p.batch_id})
    return BatchRecord(*found) if found else None


def batch_list(p: BatchListParams) -> Procedure[tuple[list[BatchRecord], str | None]]:
    """Batches newest first (without their run ids), one page, and the next page's cursor."""
    found = yield rows(
        "batch_list", {"environment": p.environment, "cursor": p.cursor, "limit": p.limit + 1}
    )
    items = [BatchRecord(*r) for r in found[: p.limit]]
    return items, items[-1].id if len(found) > p.limit and items else None


def batch_runs(p: BatchRunsParams) -> Procedure[list[RunRecord]]:
    """A batch's runs in input order."""
    found: list[RunRecord] = yield runs(
        "batch_runs", {"environment": p.environment, "batch_id": p.batch_id}
    )
    return found


def idempotency_key_reset(p: IdempotencyKeyResetParams) -> Procedure[int]:
    """Clear a key on every run of a task that holds it."""
    changed: int = yield count(
        "idempotency_key_reset",
        {"environment": p.environment, "task_id": p.task_id, "key": p.key, "now": p.now},
    )
    return changed
