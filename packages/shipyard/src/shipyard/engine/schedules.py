"""Schedules: create (upsert by deduplication key), update, retrieve, list, activate,
deactivate, delete; sync the declarative ones when a worker registers; fire due ticks.

The store holds numbers; every decision about time is made here with the pure functions of
:mod:`shipyard.cron` (fire times, DST) and :mod:`shipyard.schedule_ticks` (the downtime rule,
window offsets), on the engine's clock. A tick is fired by :meth:`ScheduleOps.fire_due_schedules`,
which every worker's scheduler service calls: the store compare-and-sets the schedule's next
tick in the transaction that creates the tick's run, so however many workers and processes
call it, each tick creates one run. The run also carries the idempotency key
``schedule:<id>:<nominal time>``.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import json
import logging
import math
import random
from collections.abc import Sequence

from shipyard.cron import next_fire, parse, timezones, upcoming, validate_timezone
from shipyard.engine.claims import ClaimOps, WorkerRegistration
from shipyard.engine.definitions import TaskDefinition
from shipyard.engine.idempotency import IdempotencyKey
from shipyard.engine.options import check_text, parse_options
from shipyard.engine.schedule_specs import cron_schedule, environment_type
from shipyard.errors import ScheduleNotFoundError, UnknownTaskError, ValidationError
from shipyard.ids import new_id
from shipyard.models.schedules import (
    Schedule,
    ScheduleGenerator,
    ScheduleList,
    SchedulePagination,
    ScheduleType,
    iso,
)
from shipyard.schedule_ticks import DueTicks, due_ticks, parse_window, window_offset_ms
from shipyard.store.params import RunInsertParams, TaskListParams
from shipyard.store.schedules import (
    DECLARATIVE,
    IMPERATIVE,
    ScheduleDeleteParams,
    ScheduleDueParams,
    ScheduleFireParams,
    ScheduleGetParams,
    ScheduleListParams,
    ScheduleRecord,
    ScheduleSetActiveParams,
    ScheduleSyncParams,
    ScheduleSyncResult,
    ScheduleUpdateParams,
    ScheduleUpsertParams,
)

__all__ = ["MAX_PER_PAGE", "ScheduleOps", "cron_schedule", "environment_type"]

log = logging.getLogger("shipyard.schedules")

MAX_PER_PAGE = 100
# Due schedules read per pass; fired per transaction (one commit and one wake-up of the
# workers for the lot), a few transactions at once (PostgreSQL: each on its own connection;
# the chunks of one pass are disjoint, and rows are locked in id order, so no deadlock).
# Fewer due ticks than that make smaller chunks.
_DUE_BATCH = 500
_FIRE_CHUNK = 25
_FIRE_CONCURRENCY = 6
_UPCOMING = 5


class ScheduleOps(ClaimOps):
    """Schedules, and the worker's side of them (sync on registration, firing ticks)."""

    # -- reading ------------------------------------------------------------------------------

    def schedule_info(self, record: ScheduleRecord) -> Schedule:
        """A stored row as the public schedule object."""
        return Schedule(
            id=record.id,
            type=_type(record),
            task=record.task_id,
            active=bool(record.active),
            deduplication_key=record.deduplication_key,
            external_id=record.external_id,
            generator=ScheduleGenerator(
                expression=record.cron, description=parse(record.cron).describe()
            ),
            timezone=record.timezone,
            window=record.fire_window,
            next_run=to_datetime(record.next_run) if record.active else None,
            next_run_effective_at=to_datetime(record.next_run_at) if record.active else None,
            last_run=to_datetime(record.last_run),
            environments=tuple(json.loads(record.environments or "[]")),
            environment=record.environment,
            created_at=to_datetime(record.created_at),  # type: ignore[arg-type]
            updated_at=to_datetime(record.updated_at),  # type: ignore[arg-type]
        )

    async def _record(self, schedule_id: str) -> ScheduleRecord:
        check_text(schedule_id, "schedule id", max_length=128)
        await self.start()
        record = await self.store.schedule_get(ScheduleGetParams(self.environment, schedule_id))
        if record is None:
            raise ScheduleNotFoundError(
                f"Schedule '{schedule_id}' not found in this environment.",
                schedule_id=schedule_id,
            )
        return record

    async def retrieve_schedule(self, schedule_id: str) -> Schedule:
        """One schedule by id, or :class:`ScheduleNotFoundError`."""
        return self.schedule_info(await self._record(schedule_id))

    async def list_schedules(
        self,
        *,
        page: int = 1,
        per_page: int = 20,
        task: str | None = None,
        type: str | None = None,
    ) -> ScheduleList:
        """One page (from 1) of the environment's schedules, oldest first."""
        if isinstance(page, bool) or not isinstance(page, int) or page < 1:
            raise ValidationError(f"page must be a whole number from 1; got {page!r}.")
        if (
            isinstance(per_page, bool)
            or not isinstance(per_page, int)
            or not 1 <= per_page <= MAX_PER_PAGE
        ):
            raise ValidationError(
                f"per_page must be a whole number from 1 to {MAX_PER_PAGE}; got {per_page!r}."
            )
        if type is not None and type.upper() not in (DECLARATIVE, IMPERATIVE):
            raise ValidationError(f"type must be DECLARATIVE or IMPERATIVE; got {type!r}.")
        if task is not None:
            check_text(task, "task id", max_length=128)
        await self.start()
        found = await self.store.schedule_list(
            ScheduleListParams(
                environment=self.environment,
                limit=per_page,
                offset=(page - 1) * per_page,
                type=type.upper() if type else None,
                task_id=task,
            )
        )
        return ScheduleList(
            data=[self.schedule_info(r) for r in found.items],
            pagination=SchedulePagination(
                current_page=page,
                total_pages=math.ceil(found.total / per_page),
                count=found.total,
            ),
        )

    def timezones(self, *, exclude_utc: bool = False) -> list[str]:
        """Every IANA time zone a schedule accepts, sorted (``UTC`` first unless excluded)."""
        zones = [z for z in timezones() if z != "UTC"]
        return zones if exclude_utc else ["UTC", *zones]

    async def list_timezones(self, *, exclude_utc: bool = False) -> list[str]:
        """:meth:`timezones`, as the SDK's ``schedules.timezones`` awaits it (a remote client
        asks the engine server for them)."""
        return self.timezones(exclude_utc=exclude_utc)

    # -- writing ------------------------------------------------------------------------------

    def _ticks(
        self, schedule_id: str, cron: str, timezone: str, window: str | None, after: int
    ) -> tuple[int, int]:
        """The first nominal tick after ``after`` and the moment it fires (window offset)."""
        nominal = next_fire(cron, timezone, to_datetime(after))  # type: ignore[arg-type]
        fires_at = nominal
        if window is not None:
            following = next_fire(cron, timezone, nominal)
            offset = window_offset_ms(schedule_id, nominal, following, window)
            fires_at = nominal + datetime.timedelta(milliseconds=offset)
        return _ms(nominal), _ms(fires_at)

    async def _check_task(self, task: object) -> str:
        task_id = check_text(task, "task id", max_length=128)
        if self.definitions.task(task_id) is not None:
            return task_id
        known = {r.id for r in await self.store.task_list(TaskListParams(self.environment))}
        if task_id not in known:
            raise UnknownTaskError(
                f"Unknown task '{task_id}': no task with this id is defined here or registered "
                "by a worker of this environment.",
                task_id=task_id,
            )
        return task_id

    async def create_schedule(
        self,
        *,
        task: str,
        cron: str,
        deduplication_key: str,
        timezone: str = "UTC",
        external_id: str | None = None,
        window: str | None = None,
    ) -> Schedule:
        """Create an IMPERATIVE schedule; one with the same ``deduplication_key`` (in any
        environment of the database) is updated instead and moves to this environment."""
        expression = parse(cron).text
        validate_timezone(timezone)
        if window is not None:
            window = parse_window(window).text
        key = check_text(deduplication_key, "deduplication key", max_length=256)
        if external_id is not None:
            check_text(external_id, "external id", max_length=256)
        await self.start()
        task_id = await self._check_task(task)
        now = self.now()
        schedule_id = new_id("sched")
        next_run, next_run_at = self._ticks(schedule_id, expression, timezone, window, now)
        record, _ = await self.store.schedule_upsert(
            ScheduleUpsertParams(
                ScheduleRecord(
                    id=schedule_id,
                    environment=self.environment,
                    type=IMPERATIVE,
                    task_id=task_id,
                    cron=expression,
                    timezone=timezone,
                    fire_window=window,
                    deduplication_key=key,
                    external_id=external_id,
                    environments=None,
                    active=1,
                    next_run=next_run,
                    next_run_at=next_run_at,
                    last_run=None,
                    created_at=now,
                    updated_at=now,
                )
            )
        )
        if record.id != schedule_id and record.fire_window is not None:
            # Updated: the window offset is the existing id's, not the unused new one's.
            record = await self._reoffset(record)
        return self.schedule_info(record)

    async def _reoffset(self, record: ScheduleRecord) -> ScheduleRecord:
        if record.next_run is None:
            return record
        _, fires_at = self._ticks(
            record.id, record.cron, record.timezone, record.fire_window, record.next_run - 1
        )
        if fires_at == record.next_run_at:
            return record
        updated = await self.store.schedule_set_active(
            ScheduleSetActiveParams(
                self.environment,
                record.id,
                bool(record.active),
                self.now(),
                next_run=record.next_run,
                next_run_at=fires_at,
            )
        )
        return updated or record

    async def update_schedule(
        self,
        schedule_id: str,
        *,
        task: str | None = None,
        cron: str | None = None,
        timezone: str | None = None,
        external_id: str | None = None,
        deduplication_key: str | None = None,
        window: str | None = None,
    ) -> Schedule:
        """Change an IMPERATIVE schedule (what is not given stays). A new cron, time zone or
        window moves the next tick to the first one from now."""
        record = await self._record(schedule_id)
        if record.type == DECLARATIVE:
            raise ValidationError(
                f"Schedule '{schedule_id}' is declarative: change the cron option of task "
                f"'{record.task_id}' in code instead.",
                schedule_id=schedule_id,
            )
        expression = parse(cron).text if cron is not None else record.cron
        zone = validate_timezone(timezone) if timezone is not None else record.timezone
        spread = parse_window(window).text if window is not None else record.fire_window
        key = record.deduplication_key
        if deduplication_key is not None:
            key = check_text(deduplication_key, "deduplication key", max_length=256)
        if external_id is not None:
            check_text(external_id, "external id", max_length=256)
        task_id = await self._check_task(task) if task is not None else record.task_id
        now = self.now()
        next_run, next_run_at = self._ticks(record.id, expression, zone, spread, now)
        updated = await self.store.schedule_update(
            ScheduleUpdateParams(
                environment=self.environment,
                schedule_id=record.id,
                task_id=task_id,
                cron=expression,
                timezone=zone,
                fire_window=spread,
                external_id=external_id if external_id is not None else record.external_id,
                deduplication_key=key,
                next_run=next_run,
                next_run_at=next_run_at,
                now=now,
            )
        )
        if updated is None:
            raise ScheduleNotFoundError(
                f"Schedule '{schedule_id}' not found in this environment.",
                schedule_id=schedule_id,
            )
        return self.schedule_info(updated)

    async def activate_schedule(self, schedule_id: str) -> Schedule:
        """Fire again from the next tick after now (ticks missed while inactive never fire)."""
        record = await self._record(schedule_id)
        if record.active:
            return self.schedule_info(record)
        next_run, next_run_at = self._ticks(
            record.id, record.cron, record.timezone, record.fire_window, self.now()
        )
        updated = await self.store.schedule_set_active(
            ScheduleSetActiveParams(
                self.environment, record.id, True, self.now(), next_run, next_run_at
            )
        )
        return self.schedule_info(updated or record)

    async def deactivate_schedule(self, schedule_id: str) -> Schedule:
        """Stop firing until activated again."""
        record = await self._record(schedule_id)
        updated = await self.store.schedule_set_active(
            ScheduleSetActiveParams(self.environment, record.id, False, self.now())
        )
        return self.schedule_info(updated or record)

    async def delete_schedule(self, schedule_id: str) -> Schedule:
        """Delete an IMPERATIVE schedule; returns it as it was."""
        record = await self._record(schedule_id)
        if record.type == DECLARATIVE:
            raise ValidationError(
                f"Schedule '{schedule_id}' is declarative: remove the cron option of task "
                f"'{record.task_id}' in code to remove it.",
                schedule_id=schedule_id,
            )
        await self.store.schedule_delete(ScheduleDeleteParams(self.environment, record.id))
        return self.schedule_info(record)

    # -- declarative schedules ----------------------------------------------------------------

    def _declared(self, tasks: Sequence[TaskDefinition], now: int) -> list[ScheduleRecord]:
        here = environment_type(self.environment)
        records = []
        for task in tasks:
            spec = task.cron
            if spec is None or (spec.environments and here not in spec.environments):
                continue
            # The id is only used if the schedule is new; its window offset then follows it.
            schedule_id = new_id("sched")
            next_run, next_run_at = self._ticks(
                schedule_id, spec.pattern, spec.timezone, spec.window, now
            )
            records.append(
                ScheduleRecord(
                    id=schedule_id,
                    environment=self.environment,
                    type=DECLARATIVE,
                    task_id=task.id,
                    cron=parse(spec.pattern).text,
                    timezone=spec.timezone,
                    fire_window=spec.window,
                    deduplication_key=None,
                    external_id=None,
                    environments=json.dumps(list(spec.environments)) if spec.environments else None,
                    active=1,
                    next_run=next_run,
                    next_run_at=next_run_at,
                    last_run=None,
                    created_at=now,
                    updated_at=now,
                )
            )
        return records

    async def sync_declarative_schedules(self) -> ScheduleSyncResult:
        """Make this environment's DECLARATIVE schedules match the tasks defined here: a task
        with ``cron`` has one (created, or updated when its cron changed), and every other
        declarative schedule is deleted. Workers call this when they register, so the last
        worker to start decides, as a deploy does."""
        await self.start()
        now = self.now()
        result = await self.store.schedule_sync(
            ScheduleSyncParams(self.environment, self._declared(self.definitions.tasks(), now), now)
        )
        for what, ids in (("added", result.created), ("updated", result.updated)):
            if ids:
                log.info("declarative schedules %s: %s", what, ", ".join(sorted(ids)))
        if result.deleted:
            log.info("declarative schedules removed: %s", ", ".join(result.deleted))
        return result

    async def register_worker(
        self, worker_id: str, *, doorbell_port: int | None, version: str | None = None
    ) -> WorkerRegistration:
        """Register the worker (see :meth:`ClaimOps.register_worker`), then sync the
        declarative schedules of its tasks."""
        registration = await super().register_worker(
            worker_id, doorbell_port=doorbell_port, version=version
        )
        await self.sync_declarative_schedules()
        return registration

    # -- firing -------------------------------------------------------------------------------

    async def fire_due_schedules(self) -> int | None:
        """Fire every due tick of the environment (each once, whichever worker gets there
        first); returns when the next tick is due (epoch ms), or None if none is."""
        await self.start()
        while True:
            due = await self.store.schedule_due(
                ScheduleDueParams(self.environment, self.now(), _DUE_BATCH)
            )
            # Each worker takes them in its own order: several workers share the work instead
            # of all racing for the same schedules.
            random.shuffle(due)
            # A few ticks: one small transaction each way, so the first run starts sooner.
            size = max(1, min(_FIRE_CHUNK, math.ceil(len(due) / _FIRE_CONCURRENCY)))
            gate = asyncio.Semaphore(_FIRE_CONCURRENCY)
            await asyncio.gather(
                *(
                    self._fire_gated(gate, due[start : start + size])
                    for start in range(0, len(due), size)
                )
            )
            if len(due) < _DUE_BATCH:
                return await self.store.schedule_next_at(self.environment)

    async def _fire_gated(self, gate: asyncio.Semaphore, records: Sequence[ScheduleRecord]) -> int:
        async with gate:
            return await self._fire_chunk(records)

    async def _fire_chunk(self, records: Sequence[ScheduleRecord]) -> int:
        """Fire the due tick of each record (the latest one, after downtime) in one
        transaction; how many runs this call created."""
        now = self.now()
        params = [await self._fire_params(record, now) for record in records]
        results = await self.store.schedule_fire_many(params)
        created = 0
        for p, result in zip(params, results, strict=True):
            if result.claimed and result.run is not None and not result.cached:
                created += 1
                log.debug(
                    "schedule %s fired its %d tick → %s, %d ms after it",
                    p.schedule_id,
                    p.last_run,
                    result.run.id,
                    now - (p.last_run or now),
                )
        return created

    async def _fire_params(self, record: ScheduleRecord, now: int) -> ScheduleFireParams:
        """What firing ``record`` at ``now`` writes: the tick to fire (the latest due one),
        the next tick, and the tick's run."""
        assert record.next_run is not None
        # The usual case, in one cached lookup shared by every schedule on the same
        # expression and tick: next_run is due and the tick after it is not.
        ahead = _upcoming(record.cron, record.timezone, record.next_run)
        if _ms(ahead[0]) > now:
            ticks = DueTicks(to_datetime(record.next_run), ahead[0])
        else:  # after downtime: the latest missed tick fires, the others never
            ticks = due_ticks(
                record.cron,
                record.timezone,
                to_datetime(record.next_run - 1),  # type: ignore[arg-type]
                to_datetime(now),  # type: ignore[arg-type]
            )
        following = ticks.next_nominal
        fires_at = following
        if record.fire_window is not None:
            after = next_fire(record.cron, record.timezone, following)
            offset = window_offset_ms(record.id, following, after, record.fire_window)
            fires_at = following + datetime.timedelta(milliseconds=offset)
        params = ScheduleFireParams(
            environment=self.environment,
            schedule_id=record.id,
            expected=record.next_run,
            next_run=_ms(following),
            next_run_at=_ms(fires_at),
            now=now,
        )
        if ticks.fire_now is not None:
            params.last_run = _ms(ticks.fire_now)
            params.run = await self._tick_run(record, ticks.fire_now, now)
        return params

    async def _tick_run(
        self, record: ScheduleRecord, nominal: datetime.datetime, now: int
    ) -> RunInsertParams:
        # The JSON of a ScheduledPayload (what the task function is given, parsed back).
        nominal_ms = _ms(nominal)
        stamp = _iso_ms(nominal_ms)
        text = json.dumps(
            {
                "type": _type(record),
                "timestamp": stamp,
                "lastTimestamp": _iso_ms(record.last_run) if record.last_run is not None else None,
                "timezone": record.timezone,
                "scheduleId": record.id,
                "externalId": record.external_id,
                "upcoming": _upcoming_iso(record.cron, record.timezone, nominal_ms),
            }
        )
        opts = parse_options({}, now)
        opts.idempotency_key = IdempotencyKey(f"schedule:{record.id}:{stamp}")
        # A task this process defines and one of its workers runs is served: skip the lookup
        # (it may query the store, on the tick's critical path).
        served = self.definitions.task(record.task_id) is not None and any(
            record.task_id in tasks for tasks in self._local_workers.values()
        )
        pending = not served and bool(await self._pending_tasks({record.task_id}))
        return self._insert_params(
            record.task_id, text, opts, now, trigger_function="trigger", pending=pending
        )


@functools.lru_cache(maxsize=4096)
def _upcoming(cron: str, timezone: str, after_ms: int) -> tuple[datetime.datetime, ...]:
    """The next ticks after ``after_ms`` (cached: every schedule on one expression and zone
    asks the same question at each tick)."""
    return tuple(upcoming(cron, timezone, to_datetime(after_ms), _UPCOMING))  # type: ignore[arg-type]


@functools.lru_cache(maxsize=4096)
def _upcoming_iso(cron: str, timezone: str, after_ms: int) -> list[str]:
    """:func:`_upcoming` as ISO strings (the payload's ``upcoming``); do not mutate."""
    return [iso(t) or "" for t in _upcoming(cron, timezone, after_ms)]


@functools.lru_cache(maxsize=4096)
def _iso_ms(ms: int) -> str:
    return iso(to_datetime(ms)) or ""


def _type(record: ScheduleRecord) -> ScheduleType:
    return "DECLARATIVE" if record.type == DECLARATIVE else "IMPERATIVE"


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def to_datetime(ms: int | None) -> datetime.datetime | None:
    """Epoch ms as an aware UTC datetime, exactly (no float rounding); None stays None."""
    return None if ms is None else _EPOCH + datetime.timedelta(milliseconds=ms)


def _ms(moment: datetime.datetime) -> int:
    delta = moment.astimezone(datetime.UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
