"""Schedules end to end on a FakeClock: declarative and imperative schedules, the typed
payload, the downtime rule, DST days, windows, several workers firing each tick once, and
the errors bad input gets. Real SQLite file or PostgreSQL, real in-process workers."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from shipyard import schedules
from shipyard.clock import FakeClock
from shipyard.config import Settings
from shipyard.engine.definitions import Definitions, use_definitions
from shipyard.engine.engine import Engine
from shipyard.engine.registry import set_engine
from shipyard.errors import (
    InvalidCronExpressionError,
    InvalidScheduleWindowError,
    ScheduleNotFoundError,
    UnknownTaskError,
    UnknownTimezoneError,
    ValidationError,
)
from shipyard.models.schedules import ScheduledPayload
from shipyard.testing.eventually import eventually
from shipyard.worker.worker import Worker

UTC = datetime.UTC


def ms(text: str) -> int:
    """Epoch ms of an ISO time in UTC (``2026-03-07T12:00``)."""
    return int(datetime.datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


class Rig:
    """An engine on a FakeClock starting at a chosen instant, and its workers."""

    def __init__(self, settings: Settings, clock: FakeClock, definitions: Definitions) -> None:
        self.settings = settings
        self.clock = clock
        self.definitions = definitions
        self.engine = Engine(settings, clock=clock, definitions=definitions)
        self.engines = [self.engine]
        self.workers: list[Worker] = []
        self.seen: list[ScheduledPayload] = []

    async def worker(self, engine: Engine | None = None) -> Worker:
        worker = Worker(engine or self.engine, concurrency=5, scheduler_interval=0.02)
        await worker.start()
        self.workers.append(worker)
        return worker

    async def another_engine(self) -> Engine:
        engine = Engine(self.settings, clock=self.clock, definitions=self.definitions)
        await engine.start()
        self.engines.append(engine)
        return engine

    async def runs_of(self, schedule_id: str, n: int) -> list[Any]:
        """Wait until the schedule created ``n`` runs; oldest first."""

        async def probe() -> list[Any]:
            page = await self.engine.list_runs(schedule_id=schedule_id, limit=100)
            return list(reversed(page.items))

        return await eventually(probe, until=lambda runs: len(runs) >= n, timeout=15)  # type: ignore[no-any-return]

    async def advance_to(self, text: str, step_s: float = 3600) -> None:
        """Move the clock to ``text`` in steps, letting the schedulers see each one."""
        target = ms(text)
        while self.clock.now_ms() < target:
            await self.clock.advance(ms=min(int(step_s * 1000), target - self.clock.now_ms()))
            for worker in self.workers:
                passes = worker.service("scheduler").passes
                await eventually(lambda w=worker, p=passes: w.service("scheduler").passes > p + 1)


@pytest.fixture
async def rig_at(
    settings: Settings, definitions: Definitions
) -> AsyncIterator[Callable[[str], Any]]:
    rigs: list[Rig] = []

    async def make(start: str) -> Rig:
        rig = Rig(settings, FakeClock(start_ms=ms(start)), definitions)
        await rig.engine.start()
        set_engine(rig.engine)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        for worker in rig.workers:
            await worker.stop(grace=0)
        for engine in rig.engines:
            await engine.close()
    set_engine(None)


def define_hourly(rig: Rig, cron: Any = "0 * * * *", **options: Any) -> None:
    @schedules.task(id="hourly", cron=cron, **options)
    async def hourly(payload: ScheduledPayload) -> str:
        rig.seen.append(payload)
        return payload.timestamp.isoformat()


async def test_declarative_schedule_fires_each_tick_with_a_typed_payload(rig_at: Any) -> None:
    rig: Rig = await rig_at("2026-01-01T00:30")
    define_hourly(rig, ttl="10m")
    await rig.worker()
    listed = await schedules.list()
    assert listed.pagination.count == 1
    schedule = listed.data[0]
    assert (schedule.type, schedule.task, schedule.generator.expression) == (
        "DECLARATIVE",
        "hourly",
        "0 * * * *",
    )
    assert schedule.generator.description == "At the start of every hour"
    assert schedule.next_run == at("2026-01-01T01:00")

    await rig.advance_to("2026-01-01T03:10", step_s=600)
    runs = await rig.runs_of(schedule.id, 3)
    assert len(runs) == 3
    assert all(r.schedule_id == schedule.id for r in runs)
    assert [r.payload["timestamp"] for r in runs] == [
        "2026-01-01T01:00:00.000Z",
        "2026-01-01T02:00:00.000Z",
        "2026-01-01T03:00:00.000Z",
    ]
    assert runs[0].idempotency_key == f"schedule:{schedule.id}:2026-01-01T01:00:00.000Z"
    assert runs[1].payload["lastTimestamp"] == "2026-01-01T01:00:00.000Z"
    assert runs[0].payload["lastTimestamp"] is None
    await eventually(lambda: len(rig.seen) == 3)
    first = min(rig.seen, key=lambda p: p.timestamp)
    assert isinstance(first, ScheduledPayload)
    assert first.timestamp == at("2026-01-01T01:00") and first.last_timestamp is None
    assert (first.type, first.schedule_id, first.timezone) == ("DECLARATIVE", schedule.id, "UTC")
    assert first.upcoming == [at(f"2026-01-01T0{h}:00") for h in range(2, 7)]
    after = await schedules.retrieve(schedule.id)
    assert after.last_run == at("2026-01-01T03:00") and after.next_run == at("2026-01-01T04:00")


async def test_several_workers_fire_each_tick_exactly_once(rig_at: Any) -> None:
    rig: Rig = await rig_at("2026-01-01T00:00:30")
    define_hourly(rig, cron="* * * * *")
    await rig.worker()
    for _ in range(3):
        await rig.worker(await rig.another_engine())
    schedule = (await schedules.list()).data[0]
    await rig.advance_to("2026-01-01T00:40:30", step_s=60)
    runs = await rig.runs_of(schedule.id, 40)
    stamps = [r.payload["timestamp"] for r in runs]
    assert len(stamps) == 40 and len(set(stamps)) == 40
    assert stamps[0] == "2026-01-01T00:01:00.000Z" and stamps[-1] == "2026-01-01T00:40:00.000Z"


async def test_after_downtime_one_catch_up_run_for_the_latest_tick(rig_at: Any) -> None:
    rig: Rig = await rig_at("2026-01-01T00:30")
    define_hourly(rig, cron=None)
    await rig.worker()
    created = await schedules.create(
        task="hourly", cron="0 * * * *", deduplication_key="customer-1", external_id="c1"
    )
    await rig.advance_to("2026-01-01T01:05")
    await rig.runs_of(created.id, 1)
    for worker in rig.workers:
        await worker.stop(grace=0)
    rig.workers.clear()
    await rig.clock.advance(ms=ms("2026-01-01T05:30") - rig.clock.now_ms())  # nobody runs
    await rig.worker()
    runs = await rig.runs_of(created.id, 2)
    await rig.advance_to("2026-01-01T05:50", step_s=600)
    runs = await rig.runs_of(created.id, 2)
    assert len(runs) == 2
    catch_up = runs[1].payload
    assert catch_up["timestamp"] == "2026-01-01T05:00:00.000Z"  # 02:00-04:00 never fire
    assert catch_up["lastTimestamp"] == "2026-01-01T01:00:00.000Z"
    assert (catch_up["externalId"], catch_up["type"]) == ("c1", "IMPERATIVE")
    assert (await schedules.retrieve(created.id)).next_run == at("2026-01-01T06:00")
    await rig.advance_to("2026-01-01T06:01", step_s=600)
    runs = await rig.runs_of(created.id, 3)
    assert runs[2].payload["lastTimestamp"] == "2026-01-01T05:00:00.000Z"


@pytest.mark.parametrize(
    ("cron", "zone", "start", "end", "expected"),
    [
        # Spring forward: 02:30 does not exist on 2026-03-08; it fires at 03:00 EDT.
        (
            "30 2 * * *",
            "America/New_York",
            "2026-03-07T12:00",
            "2026-03-09T12:00",
            ["2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z"],
        ),
        # Fall back: 01:30 happens twice on 2026-11-01; it fires once, at 01:30 EDT.
        (
            "30 1 * * *",
            "America/New_York",
            "2026-10-31T12:00",
            "2026-11-02T12:00",
            ["2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"],
        ),
        (
            "30 1 * * *",
            "Europe/London",
            "2026-03-28T12:00",
            "2026-03-30T12:00",
            ["2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"],
        ),
        (
            "30 1 * * *",
            "Europe/London",
            "2026-10-24T12:00",
            "2026-10-26T12:00",
            ["2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"],
        ),
    ],
)
async def test_dst_days_on_a_fake_clock(
    rig_at: Any, cron: str, zone: str, start: str, end: str, expected: list[str]
) -> None:
    rig: Rig = await rig_at(start)
    define_hourly(rig, cron={"pattern": cron, "timezone": zone})
    await rig.worker()
    schedule = (await schedules.list()).data[0]
    assert schedule.timezone == zone
    await rig.advance_to(end, step_s=10800)
    runs = await rig.runs_of(schedule.id, len(expected))
    assert [r.payload["timestamp"] for r in runs] == expected
    assert all(r.payload["timezone"] == zone for r in runs)


async def test_a_window_delays_the_run_but_not_its_timestamp(rig_at: Any) -> None:
    rig: Rig = await rig_at("2026-01-01T00:30")
    define_hourly(rig, cron={"pattern": "0 * * * *", "window": "30m"})
    await rig.worker()
    schedule = (await schedules.list()).data[0]
    assert schedule.window == "30m"
    assert schedule.next_run == at("2026-01-01T01:00")
    assert schedule.next_run_effective_at is not None
    offset = schedule.next_run_effective_at - schedule.next_run
    assert datetime.timedelta(0) <= offset < datetime.timedelta(minutes=30)
    await rig.advance_to("2026-01-01T01:31", step_s=60)
    runs = await rig.runs_of(schedule.id, 1)
    assert runs[0].payload["timestamp"] == "2026-01-01T01:00:00.000Z"
    assert runs[0].created_at >= schedule.next_run_effective_at


async def test_declarative_sync_adds_changes_and_removes(rig_at: Any) -> None:
    rig: Rig = await rig_at("2026-01-01T00:30")
    define_hourly(rig)

    @schedules.task(id="prod-only", cron={"pattern": "0 0 * * *", "environments": ["PRODUCTION"]})
    async def prod_only(payload: ScheduledPayload) -> None:
        return None

    await rig.worker()
    listed = (await schedules.list()).data
    assert [s.task for s in listed] == ["hourly"]  # prod-only is not in development
    first = listed[0]

    # The next worker has another cron for the task: the schedule is updated in place.
    changed = Definitions()
    with use_definitions(changed):

        @schedules.task(id="hourly", cron="15 * * * *")
        async def hourly_v2(payload: ScheduledPayload) -> None:
            return None

        @schedules.task(id="other", cron="0 12 * * *")
        async def other(payload: ScheduledPayload) -> None:
            return None

    second = Engine(rig.settings, clock=rig.clock, definitions=changed)
    rig.engines.append(second)
    result = await second.sync_declarative_schedules()
    assert (result.created, result.updated, result.deleted) == (["other"], ["hourly"], [])
    again = await schedules.retrieve(first.id)
    assert again.generator.expression == "15 * * * *"
    assert again.next_run == at("2026-01-01T01:15")

    # Without cron the schedule goes; imperative schedules of the task stay.
    bare = Definitions()
    with use_definitions(bare):

        @schedules.task(id="hourly")
        async def hourly_v3(payload: ScheduledPayload) -> None:
            return None

    imperative = await schedules.create(task="hourly", cron="0 0 * * *", deduplication_key="k")
    third = Engine(rig.settings, clock=rig.clock, definitions=bare)
    rig.engines.append(third)
    result = await third.sync_declarative_schedules()
    assert sorted(result.deleted) == ["hourly", "other"]
    assert [s.id for s in (await schedules.list()).data] == [imperative.id]


async def test_imperative_api_dedup_key_paging_and_state(rig_at: Any) -> None:
    rig: Rig = await rig_at("2026-01-01T00:30")
    define_hourly(rig, cron=None)
    first = await schedules.create(
        task="hourly", cron="0 9 * * *", deduplication_key="user-1", timezone="Europe/London"
    )
    again = await schedules.create(
        task="hourly", cron="0 10 * * *", deduplication_key="user-1", external_id="u1"
    )
    assert again.id == first.id
    assert (again.generator.expression, again.timezone, again.external_id) == (
        "0 10 * * *",
        "UTC",
        "u1",
    )
    assert again.next_run == at("2026-01-01T10:00")
    for i in range(4):
        await schedules.create(task="hourly", cron="0 0 * * *", deduplication_key=f"k{i}")
    page = await schedules.list(page=2, per_page=2)
    assert page.pagination.count == 5 and page.pagination.total_pages == 3
    assert page.pagination.current_page == 2 and len(page.data) == 2
    assert page.to_dict()["pagination"] == {"currentPage": 2, "totalPages": 3, "count": 5}

    updated = await schedules.update(first.id, cron="30 10 * * 1-5")
    assert updated.generator.description == "At 10:30 on Monday through Friday"
    assert updated.deduplication_key == "user-1" and updated.external_id == "u1"
    off = await schedules.deactivate(first.id)
    assert not off.active and off.next_run is None
    await rig.clock.advance(ms=ms("2026-01-03T00:00") - rig.clock.now_ms())
    on = await schedules.activate(first.id)
    assert on.active and on.next_run == at("2026-01-05T10:30")  # Monday after "now"
    gone = await schedules.delete(first.id)
    assert gone.id == first.id
    with pytest.raises(ScheduleNotFoundError, match=first.id):
        await schedules.retrieve(first.id)
    assert "Europe/London" in await schedules.timezones()
    assert (await schedules.timezones())[0] == "UTC"
    assert "UTC" not in await schedules.timezones(exclude_utc=True)
    data = again.to_dict()
    assert data["generator"]["type"] == "CRON" and data["deduplicationKey"] == "user-1"


async def test_bad_input_is_a_clear_validation_error(rig_at: Any) -> None:
    rig: Rig = await rig_at("2026-01-01T00:30")
    define_hourly(rig)
    await rig.worker()
    with pytest.raises(InvalidCronExpressionError, match="seconds are not allowed"):
        await schedules.create(task="hourly", cron="0 0 9 * * *", deduplication_key="k")
    with pytest.raises(InvalidCronExpressionError, match="minute 60 is out of range"):
        await schedules.create(task="hourly", cron="60 * * * *", deduplication_key="k")
    with pytest.raises(UnknownTimezoneError, match="did you mean 'America/New_York'"):
        await schedules.create(
            task="hourly", cron="0 0 * * *", deduplication_key="k", timezone="America/NewYork"
        )
    with pytest.raises(InvalidScheduleWindowError):
        await schedules.create(task="hourly", cron="0 0 * * *", deduplication_key="k", window="90s")
    with pytest.raises(UnknownTaskError, match="nope"):
        await schedules.create(task="nope", cron="0 0 * * *", deduplication_key="k")
    with pytest.raises(ValidationError, match="deduplication key"):
        await schedules.create(task="hourly", cron="0 0 * * *", deduplication_key="")
    with pytest.raises(ValidationError, match="per_page"):
        await schedules.list(per_page=0)
    declarative = (await schedules.list()).data[0]
    with pytest.raises(ValidationError, match="declarative"):
        await schedules.delete(declarative.id)
    with pytest.raises(ValidationError, match="declarative"):
        await schedules.update(declarative.id, cron="0 0 * * *")
    assert (await schedules.list()).pagination.count == 1  # nothing was written
    with pytest.raises(InvalidCronExpressionError, match="seconds are not allowed"):
        schedules.task(id="six", cron="*/5 * * * * *")
    with pytest.raises(ValidationError, match="Unknown environment"):
        schedules.task(id="env", cron={"pattern": "0 0 * * *", "environments": ["prod"]})
