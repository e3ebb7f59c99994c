"""Delayed runs and retries start at their time, not at the next poll.

The worker's scheduler sleeps until the earliest due time the store reports, and a worker that
writes a retry wakes its claimer when the retry falls due. Each test makes the backup poll far
longer than its own timeout, so only the timers can start the run in time.
"""

from __future__ import annotations

import datetime

import pytest

from shipyard import RunStatus, task
from shipyard.clock import FakeClock
from shipyard.engine.engine import Engine
from shipyard.testing.eventually import eventually


async def test_a_retry_starts_when_due_not_at_the_next_poll(engine: Engine, start_worker) -> None:
    @task(id="fails-once", retry={"max_attempts": 2, "min_timeout_ms": 300, "max_timeout_ms": 300})
    async def fails_once(payload, ctx):
        if ctx.attempt.number == 1:
            raise RuntimeError("first attempt fails")
        return "ok"

    # A 60 s backup poll: without the retry timer the second attempt waits for it.
    await start_worker(poll_interval=60.0)
    handle = await fails_once.trigger({})
    record = await engine.wait_for_final(handle.id, timeout=20)
    assert record.status == RunStatus.COMPLETED
    assert record.attempt_number == 2


async def test_a_delayed_run_starts_from_a_quiet_worker(engine: Engine, start_worker) -> None:
    @task(id="later")
    async def later(payload):
        return "done"

    worker = await start_worker(poll_interval=60.0)
    # Wait until the worker is idle (its claimer waits on its 60 s poll), then trigger.
    claimer = worker.service("claimer")
    await eventually(lambda: claimer.passes >= 1)
    handle = await later.trigger({}, delay="1s")
    record = await engine.wait_for_final(handle.id, timeout=20)
    assert record.status == RunStatus.COMPLETED


@pytest.mark.fake_clock
async def test_the_scheduler_sleeps_until_the_next_due_time(
    engine: Engine, clock: FakeClock, start_worker
) -> None:
    @task(id="soon")
    async def soon(payload):
        return "done"

    worker = await start_worker()
    scheduler = worker.service("promoter")
    # Durations are whole seconds; an instant can be 100 ms away.
    at = datetime.datetime.fromtimestamp((engine.now() + 100) / 1000, tz=datetime.UTC)
    await soon.trigger({}, delay=at)
    # The fake clock stands still: the pass after the trigger plans to sleep exactly 0.1 s
    # (less than its 0.25 s tick), the time until the run is due.
    await eventually(lambda: getattr(scheduler, "next_wait", None) == pytest.approx(0.1))
    await clock.advance(0.1)
    await eventually(lambda: worker.completed == 1)
