"""Procedures of schedules: create or update by key, read, page, (de)activate, delete, sync
the declarative ones, and fire a tick exactly once (``store/schedules.py``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from shipyard.store.procedures.runs import insert_resolved
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
from shipyard.store.steps import Procedure, begin, count, notify, row, rows


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
    """:func:`schedule_fire` for many ticks in one transaction (results in the given order).
    Rows are locked in id order, so two schedulers firing overlapping sets cannot deadlock;
    workers are woken once."""
    if not ps:
        return []
    yield begin()
    results: dict[int, ScheduleFireResult] = {}
    made_any = False
    for index in sorted(range(len(ps)), key=lambda i: ps[i].schedule_id):
        results[index], made = yield from _fire(ps[index])
        made_any = made_any or made
    if made_any:
        yield notify(ps[0].environment, max(p.now for p in ps))
    return [results[i] for i in range(len(ps))]
