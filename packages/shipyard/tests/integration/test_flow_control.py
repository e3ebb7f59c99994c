"""Queues, concurrency limits and keys, priority, delay, TTL, debounce and rate limits,
through the public API with a real worker."""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any

import pytest

from shipyard import (
    RateLimitedError,
    UnknownQueueError,
    ValidationError,
    queue,
    queues,
    runs,
    task,
)
from shipyard.clock import FakeClock
from shipyard.engine.engine import Engine
from shipyard.testing.eventually import eventually


class Overlap:
    """Records how many task bodies run at once (per key)."""

    def __init__(self) -> None:
        self.now: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.order: list[Any] = []

    async def hold(self, key: str, seconds: float) -> None:
        self.now[key] = self.now.get(key, 0) + 1
        self.peak[key] = max(self.peak.get(key, 0), self.now[key])
        try:
            await asyncio.sleep(seconds)
        finally:
            self.now[key] -= 1


async def test_queue_limit_holds_across_a_wide_worker(engine: Engine, start_worker: Any) -> None:
    seen = Overlap()
    limited = queue(name="limited", concurrency_limit=2)

    @task(id="fc-limited", queue=limited)
    async def limited_task(payload: int) -> int:
        await seen.hold("all", 0.05)
        return payload

    await start_worker(concurrency=10)
    batch = await limited_task.batch_trigger(list(range(12)))
    for run_id in batch.runs:
        assert (await engine.wait_for_final(run_id, timeout=20)).status == "COMPLETED"
    assert seen.peak["all"] == 2
    info = await queues.retrieve("limited")
    assert (info.concurrency_limit, info.running, info.queued) == (2, 0, 0)


async def test_concurrency_key_limits_each_key(engine: Engine, start_worker: Any) -> None:
    seen = Overlap()

    @task(id="fc-per-user", queue={"concurrency_limit": 1})
    async def per_user(payload: dict[str, Any]) -> None:
        await seen.hold(payload["user"], 0.05)

    await start_worker(concurrency=10)
    handles = [
        await per_user.trigger({"user": f"u{i % 3}"}, concurrency_key=f"u{i % 3}") for i in range(9)
    ]
    for handle in handles:
        assert (await engine.wait_for_final(handle.id, timeout=20)).status == "COMPLETED"
    assert seen.peak == {"u0": 1, "u1": 1, "u2": 1}
    retrieved = await runs.retrieve(handles[0].id)
    assert (retrieved.queue, retrieved.concurrency_key) == ("task/fc-per-user", "u0")


async def test_priority_runs_first_with_one_slot(engine: Engine, start_worker: Any) -> None:
    started: list[str] = []

    @task(id="fc-priority", queue={"concurrency_limit": 1})
    async def prioritised(payload: str) -> None:
        started.append(payload)

    await start_worker(concurrency=5)
    await queues.pause("task/fc-priority")
    handles = [await prioritised.trigger(name) for name in ("a", "b", "c")]
    handles.append(await prioritised.trigger("urgent", priority=10))
    await queues.resume("task/fc-priority")
    for handle in handles:
        await engine.wait_for_final(handle.id, timeout=10)
    assert started == ["urgent", "a", "b", "c"]


async def test_pause_stops_new_claims_but_not_running_runs(
    engine: Engine, start_worker: Any
) -> None:
    release = asyncio.Event()
    started = asyncio.Event()

    @task(id="fc-pause")
    async def pausable(payload: str) -> str:
        if payload == "long":
            started.set()
            await release.wait()
        return payload

    worker = await start_worker(concurrency=5)
    long_run = await pausable.trigger("long")
    await asyncio.wait_for(started.wait(), 5)
    paused = await queues.pause("task/fc-pause")
    assert paused.paused and paused.running == 1
    waiting = await pausable.trigger("short")
    claimer = worker.service("claimer")
    passes = claimer.passes
    await eventually(lambda: claimer.passes >= passes + 3)  # it looked, and left it alone
    assert (await runs.retrieve(waiting.id)).status == "QUEUED"
    release.set()
    assert (await engine.wait_for_final(long_run.id, timeout=5)).status == "COMPLETED"
    await queues.resume("task/fc-pause")
    assert (await engine.wait_for_final(waiting.id, timeout=5)).status == "COMPLETED"


async def test_override_and_reset_concurrency_limit(engine: Engine, start_worker: Any) -> None:
    @task(id="fc-override", queue={"concurrency_limit": 3})
    async def overridden(payload: None) -> None:
        return None

    await start_worker()
    info = await queues.override_concurrency_limit("task/fc-override", 1)
    assert (info.limit_override, info.effective_limit) == (1, 1)
    info = await queues.reset_concurrency_limit("task/fc-override")
    assert (info.limit_override, info.effective_limit) == (None, 3)
    with pytest.raises(UnknownQueueError):
        await queues.pause("no-such-queue")
    assert [q.name for q in await queues.list()] == ["task/fc-override"]


async def test_trigger_to_a_shared_queue_by_name(engine: Engine, start_worker: Any) -> None:
    queue(name="shared", concurrency_limit=1)

    @task(id="fc-routed")
    async def routed(payload: None) -> None:
        return None

    await start_worker()
    handle = await routed.trigger(None, queue="shared")
    assert (await runs.retrieve(handle.id)).queue == "shared"
    await engine.wait_for_final(handle.id, timeout=5)
    with pytest.raises(UnknownQueueError, match="Known queues: shared, task/fc-routed"):
        await routed.trigger(None, queue="nope")


@pytest.mark.fake_clock
async def test_delay_makes_a_delayed_run_that_starts_later(
    engine: Engine, start_worker: Any, clock: FakeClock
) -> None:
    @task(id="fc-delayed")
    async def delayed(payload: None) -> int:
        return clock.now_ms()

    await start_worker()
    before = clock.now_ms()
    handle = await delayed.trigger(None, delay="1s")
    run = await runs.retrieve(handle.id)
    assert run.status == "DELAYED" and run.delayed_until is not None
    # Time moves on the engine's clock: on the real one the run, due 1 s after its trigger,
    # had 4 s left of its deadline to be promoted, claimed and run, which a loaded host can miss.
    await clock.advance(0.9)
    await engine.promote_due()
    assert (await runs.retrieve(handle.id)).status == "DELAYED"
    await clock.advance(0.1)
    done = await engine.wait_for_final(handle.id, timeout=10)
    assert done.status == "COMPLETED"
    assert (await runs.retrieve(handle.id)).output - before >= 1000
    past = await delayed.trigger(None, delay=datetime.datetime(2000, 1, 1))
    assert (await runs.retrieve(past.id)).status in ("QUEUED", "EXECUTING", "COMPLETED")


async def test_reschedule_only_delayed_runs(engine: Engine) -> None:
    @task(id="fc-reschedule")
    async def later(payload: None) -> None:
        return None

    handle = await later.trigger(None, delay="1h")
    moved = await runs.reschedule(handle.id, delay="2h")
    assert moved.delayed_until is not None
    assert moved.delayed_until.timestamp() - time.time() > 7000
    now = await later.trigger(None)
    with pytest.raises(ValidationError, match="Only DELAYED runs"):
        await runs.reschedule(now.id, delay="1h")


@pytest.mark.fake_clock
async def test_ttl_expires_a_run_on_a_paused_queue(
    engine: Engine, start_worker: Any, clock: FakeClock
) -> None:
    @task(id="fc-ttl")
    async def stale(payload: None) -> None:
        return None

    await start_worker()
    await queues.pause("task/fc-ttl")
    handle = await stale.trigger(None, ttl="1s")
    # The TTL runs out on the engine's clock, not within a deadline a loaded host may miss.
    await clock.advance(1)
    expired = await engine.wait_for_final(handle.id, timeout=10)
    assert expired.status == "EXPIRED"
    run = await runs.retrieve(handle.id)
    assert run.expired_at is not None and run.error is not None
    assert run.attempt_count == 0


async def test_ttl_zero_and_task_ttl(engine: Engine) -> None:
    @task(id="fc-task-ttl", ttl="5m")
    async def with_ttl(payload: None) -> None:
        return None

    handle = await with_ttl.trigger(None)
    record = await engine.get_run(handle.id)
    assert record.ttl_ms == 300_000
    none = await with_ttl.trigger(None, ttl=0)
    assert (await engine.get_run(none.id)).ttl_ms is None


async def test_development_default_ttl_is_ten_minutes(engine: Engine) -> None:
    @task(id="fc-default-ttl")
    async def plain(payload: None) -> None:
        return None

    handle = await plain.trigger(None)
    assert (await engine.get_run(handle.id)).ttl_ms == 600_000


@pytest.mark.fake_clock
@pytest.mark.parametrize(("mode", "expected"), [("leading", 0), ("trailing", 4)])
async def test_debounce_runs_once_with_first_or_last_payload(
    engine: Engine, start_worker: Any, clock: FakeClock, mode: str, expected: int
) -> None:
    executed: list[int] = []

    @task(id=f"fc-debounce-{mode}")
    async def debounced(payload: int) -> None:
        executed.append(payload)

    await start_worker()
    handles = []
    # The triggers are 100 ms apart on the engine's clock, however slow the machine is: on
    # the real clock a loaded CI host once spread them past the 1 s window.
    for i in range(5):
        handles.append(
            await debounced.trigger(i, debounce={"key": "k", "delay": "1s", "mode": mode})
        )
        await clock.advance(0.1)
    assert len({h.id for h in handles}) == 1
    await clock.advance(2)
    assert (await engine.wait_for_final(handles[0].id, timeout=10)).status == "COMPLETED"
    assert executed == [expected]


async def test_debounce_rejects_bad_options(engine: Engine) -> None:
    @task(id="fc-debounce-bad")
    async def debounced(payload: None) -> None:
        return None

    with pytest.raises(ValidationError, match="max_delay"):
        await debounced.trigger(None, debounce={"key": "k", "delay": "2s", "max_delay": "2s"})
    with pytest.raises(ValidationError, match="at least 1s"):
        await debounced.trigger(None, debounce={"key": "k", "delay": 0.5})
    with pytest.raises(ValidationError, match="512"):
        await debounced.trigger(None, debounce={"key": "k" * 513, "delay": "1s"})


@pytest.mark.fake_clock
async def test_trigger_rate_limit(settings: Any, clock: FakeClock) -> None:
    from shipyard.config import load_settings
    from shipyard.engine.registry import set_engine

    # On the real clock the bucket refills while the triggers run: a host that took over
    # 1 s for the four of them would see retry_after_ms under 9 s.
    limited = Engine(
        load_settings(
            project_root=settings.project_root,
            database_url=settings.database_url,
            trigger_rate_limit=True,
            trigger_rate_bucket=3,
            trigger_rate_refill=1,
            trigger_rate_interval="10s",
        ),
        clock=clock,
    )
    await limited.start()
    set_engine(limited)

    @task(id="fc-rate")
    async def rated(payload: None) -> None:
        return None

    try:
        for _ in range(3):
            await rated.trigger(None)
        with pytest.raises(RateLimitedError) as info:
            await rated.trigger(None)
        assert info.value.retry_after_ms == 10_000  # one token refills in the whole interval
        with pytest.raises(RateLimitedError):
            await rated.batch_trigger([None, None])
        assert len([r async for r in runs.list()]) == 3
    finally:
        set_engine(None)
        await limited.close()


async def test_waited_children_inherit_the_parent_queue_time(
    engine: Engine, start_worker: Any
) -> None:
    @task(id="fc-child")
    async def child(payload: None) -> None:
        return None

    @task(id="fc-parent")
    async def parent(payload: None) -> str:
        result = await child.trigger_and_wait(None)
        return result.id

    await start_worker(concurrency=4)
    handle = await parent.trigger(None)
    await engine.wait_for_final(handle.id, timeout=10)
    child_id = (await runs.retrieve(handle.id)).output
    parent_record = await engine.get_run(handle.id)
    child_record = await engine.get_run(child_id)
    assert child_record.queued_at == parent_record.queued_at
