"""Procedures of schedules: create or update by key, read, page, (de)activate, delete, sync
the declarative ones, and fire a tick exactly once (``store/schedules.py``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from shipyard.records import RunRecord
from shipyard.store.procedures.runs import insert_resolved
from shipyard.store.rows import insert_row, inserted_record
from shipyard.store.schedules import (
    DECLARATIVE,
    IMPERATIVE,
    ScheduleDeleteParams,
    ScheduleDueParams,
    ScheduleFireParams,
    ScheduleFireResult,
    ScheduleGetParams,
    ScheduleListParams,
    SchedulePage,
    ScheduleRecord,
    ScheduleSetActiveParams,
    ScheduleSyncParams,
    ScheduleSyncResult,
    ScheduleUpdateParams,
    ScheduleUpsertParams,
)
from shipyard.store.steps import (
    Procedure,
    begin,
    count,
    insert_runs,
    lock,
    many,
    notify,
    row,
    rows,
    runs,
)


def _values(s: ScheduleRecord) -> dict[str, Any]:
    values = asdict(s)
    values["now"] = s.updated_at
    return values


def _upsert(s: ScheduleRecord) -> Procedure[tuple[ScheduleRecord, str]]:
    """Inside a transaction: insert, or update the row holding the key; (row, what happened:
    ``created``, ``updated`` or ``same``)."""
    values = _values(s)
    if (yield count("schedule_insert", values)):
        return s, "created"
    by_key = "imperative" if s.type == IMPERATIVE else "declarative"
    before = yield row(f"schedule_get_{by_key}", values)
    yield count(f"schedule_update_{by_key}", values)
    after = yield row(f"schedule_get_{by_key}", values)
    if after is None:  # deleted between the insert and the update: insert again
        yield count("schedule_insert", values)
        return s, "created"
    same = before is not None and tuple(before[1:10]) == tuple(after[1:10])
    return ScheduleRecord(*after), "same" if same else "updated"


def schedule_upsert(p: ScheduleUpsertParams) -> Procedure[tuple[ScheduleRecord, bool]]:
    """Create a schedule or update the one holding its key; (row, created)."""
    yield begin()
    record, what = yield from _upsert(p.schedule)
    return record, what == "created"


def schedule_get(p: ScheduleGetParams) -> Procedure[ScheduleRecord | None]:
    """One schedule by id, or None."""
    found = yield row("schedule_get", {"environment": p.environment, "id": p.schedule_id})
    return ScheduleRecord(*found) if found else None


def schedule_list(p: ScheduleListParams) -> Procedure[SchedulePage]:
    """One page of the environment's schedules, oldest first, and the total."""
    values = {
        "environment": p.environment,
        "type": p.type,
        "task_id": p.task_id,
        "limit": p.limit,
        "offset": p.offset,
    }
    yield begin()  # the page and the count see the same rows
    found = yield rows("schedule_list", values)
    total = yield row("schedule_count", values)
    return SchedulePage(items=[ScheduleRecord(*r) for r in found], total=int(total[0]))


def schedule_update(p: ScheduleUpdateParams) -> Procedure[ScheduleRecord | None]:
    """Replace an IMPERATIVE schedule's definition; None if there is none with that id."""
    values = asdict(p)
    values["id"] = values.pop("schedule_id")
    yield begin()
    if not (yield count("schedule_update", values)):
        return None
    found = yield row("schedule_get", values)
    return ScheduleRecord(*found) if found else None


def schedule_set_active(p: ScheduleSetActiveParams) -> Procedure[ScheduleRecord | None]:
    """Activate or deactivate; None if there is no such schedule."""
    values = {
        "environment": p.environment,
        "id": p.schedule_id,
        "active": int(p.active),
        "next_run": p.next_run,
        "next_run_at": p.next_run_at,
        "now": p.now,
    }
    yield begin()
    if not (yield count("schedule_set_active", values)):
        return None
    found = yield row("schedule_get", values)
    return ScheduleRecord(*found) if found else None


def schedule_delete(p: ScheduleDeleteParams) -> Procedure[bool]:
    """Delete a schedule; False if there was none (of the type allowed)."""
    deleted = yield count(
        "schedule_delete",
        {
            "environment": p.environment,
            "id": p.schedule_id,
            "imperative_only": int(p.imperative_only),
        },
    )
    return bool(deleted)


def schedule_sync(p: ScheduleSyncParams) -> Procedure[ScheduleSyncResult]:
    """Upsert the environment's DECLARATIVE schedules and delete the others, atomically."""
    result = ScheduleSyncResult()
    yield begin()
    for s in p.schedules:
        _, what = yield from _upsert(s)
        if what == "created":
            result.created.append(s.task_id)
        elif what == "updated":
            result.updated.append(s.task_id)
    keep = json.dumps(sorted(s.task_id for s in p.schedules))
    gone = yield rows(
        "schedule_delete_declarative_except",
        {"environment": p.environment, "task_ids": keep, "type": DECLARATIVE},
    )
    result.deleted = sorted(r[0] for r in gone)
    return result


def schedule_due(p: ScheduleDueParams) -> Procedure[list[ScheduleRecord]]:
    """Active schedules due at ``now``, soonest first."""
    found = yield rows(
        "schedule_due", {"environment": p.environment, "now": p.now, "limit": p.limit}
    )
    return [ScheduleRecord(*r) for r in found]


def schedule_next_at(environment: str) -> Procedure[int | None]:
    """The soonest ``next_run_at`` of the environment's active schedules, or None."""
    found = yield row("schedule_next_at", {"environment": environment})
    return int(found[0]) if found and found[0] is not None else None


def _fire(p: ScheduleFireParams) -> Procedure[tuple[ScheduleFireResult, bool]]:
    """Inside a transaction: the compare-and-set, then the run; (result, a run was made)."""
    claimed = yield count(
        "schedule_advance",
        {
            "environment": p.environment,
            "id": p.schedule_id,
            "expected": p.expected,
            "next_run": p.next_run,
            "next_run_at": p.next_run_at,
            "last_run": p.last_run if p.run is not None else None,
            "now": p.now,
        },
    )
    if not claimed:
        return ScheduleFireResult(claimed=False), False
    if p.run is None:
        return ScheduleFireResult(claimed=True), False
    inserted = yield from insert_resolved(p.run)
    run = inserted.run
    if not inserted.cached:
        yield count("run_set_schedule", {"id": run.id, "schedule_id": p.schedule_id})
        run.schedule_id = p.schedule_id
    return ScheduleFireResult(claimed=True, run=run, cached=inserted.cached), not inserted.cached


def schedule_fire(p: ScheduleFireParams) -> Procedure[ScheduleFireResult]:
    """Compare-and-set the schedule's next tick and create the tick's run, in one transaction:
    of any number of schedulers firing the same tick, exactly one moves it on and creates the
    run; the run also carries an idempotency key naming the tick, so a tick fired again (a
    crashed scheduler's) resolves to the same run while its key is held."""
    yield begin()
    result, made = yield from _fire(p)
    if made:
        yield notify(p.environment, p.now)
    return result


def schedule_fire_many(ps: Sequence[ScheduleFireParams]) -> Procedure[list[ScheduleFireResult]]:
    """:func:`schedule_fire` for many ticks of one environment in one transaction, in a few
    statements whatever their number: the rows locked in id order (PostgreSQL; two schedulers
    firing overlapping sets cannot deadlock), one compare-and-set for all, the claimed ticks'
    runs inserted together (a run whose key is held is settled one by one), their schedule
    ids set together, workers woken once. Results in the given order."""
    if not ps:
        return []
    env = ps[0].environment
    now = max(p.now for p in ps)
    yield begin()
    ordered = sorted(ps, key=lambda p: p.schedule_id)
    yield lock(
        "schedule_lock_many",
        {"environment": env, "ids": json.dumps([p.schedule_id for p in ordered])},
    )
    moved = yield rows(
        "schedule_advance_many",
        {
            "environment": env,
            "now": now,
            "rows": json.dumps(
                [
                    {
                        "id": p.schedule_id,
                        "expected": p.expected,
                        "next_run": p.next_run,
                        "next_run_at": p.next_run_at,
                        "last_run": p.last_run if p.run is not None else None,
                    }
                    for p in ordered
                ]
            ),
        },
    )
    claimed = {r[0] for r in moved}
    results = {p.schedule_id: ScheduleFireResult(claimed=p.schedule_id in claimed) for p in ps}
    firing = [p for p in ordered if p.schedule_id in claimed and p.run is not None]
    values = [insert_row(p.run) for p in firing if p.run is not None]
    made: list[tuple[str, RunRecord]] = []
    if values and (yield insert_runs(values)) == len(values):
        made = [(p.schedule_id, inserted_record(v)) for p, v in zip(firing, values, strict=True)]
    elif values:  # some key was held: find which, and settle those one by one
        for p, v in zip(firing, values, strict=True):
            assert p.run is not None
            if (yield runs("run_get", {"environment": env, "id": p.run.id})):
                made.append((p.schedule_id, inserted_record(v)))
                continue
            inserted = yield from insert_resolved(p.run)
            if inserted.cached:
                results[p.schedule_id] = ScheduleFireResult(True, inserted.run, cached=True)
            else:
                made.append((p.schedule_id, inserted.run))
    tags = [
        {"run_id": p.run.id, "tag": t}
        for p in firing
        if p.run is not None and p.run.tags
        for t in p.run.tags
    ]
    if tags:
        yield many("run_tag_insert", tags)
    if made:
        yield many("run_set_schedule", [{"id": run.id, "schedule_id": sid} for sid, run in made])
        for sid, run in made:
            run.schedule_id = sid
            results[sid] = ScheduleFireResult(claimed=True, run=run)
        yield notify(env, now)
    return [results[p.schedule_id] for p in ps]
