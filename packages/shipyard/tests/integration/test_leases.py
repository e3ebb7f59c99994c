"""Leases on a fake clock: a worker that stops heartbeating loses its runs once the lease runs
out, another worker takes them, and the first worker's late result is fenced out; a live
worker's leases follow the clock however far it moves."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from shipyard import task
from shipyard.clock import FakeClock
from shipyard.engine.engine import Engine
from shipyard.testing.eventually import eventually

pytestmark = pytest.mark.fake_clock


async def test_a_silent_worker_loses_its_run_to_another_after_the_lease(
    engine: Engine, start_worker: Callable[..., Any], clock: FakeClock
) -> None:
    first_started = asyncio.Event()
    release_first = asyncio.Event()
    executions: list[int] = []

    @task(id="lease-victim", retry={"max_attempts": 3, "min_timeout_ms": 10})
    async def victim(payload: None, ctx: Any) -> int:
        executions.append(ctx.attempt.number)
        if ctx.attempt.number == 1:
            first_started.set()
            await release_first.wait()  # "hangs" while its worker is presumed dead
        return int(ctx.attempt.number)

    silent = await start_worker(heartbeat_interval=0.2)
    handle = await victim.trigger(None)
    await asyncio.wait_for(first_started.wait(), 10)
    silent.heartbeat.stop()  # the process "froze": no more heartbeats, no more claims
    await silent.service("claimer").stop()
    await silent.service("reaper").stop()

    await start_worker(heartbeat_interval=0.2)
    lease_ms = silent.lease_ms
    await clock.advance(ms=lease_ms - 50)
    await asyncio.sleep(0)
    assert (await engine.get_run(handle.id)).status == "EXECUTING"  # the lease still holds
    await clock.advance(ms=100)
    done = await engine.wait_for_final(handle.id, timeout=10)
    assert done.status == "COMPLETED" and done.output == "2"
    attempts = (await engine.retrieve_run(handle.id)).attempts
    assert [a.status for a in attempts] == ["CRASHED", "COMPLETED"]

    # The frozen worker wakes up and finishes attempt 1: its result is rejected.
    release_first.set()
    await eventually(lambda: not silent.active)
    after = await engine.get_run(handle.id)
    assert (after.status, after.output, after.attempt_number) == ("COMPLETED", "2", 2)
    assert executions == [1, 2]


async def test_a_live_worker_keeps_its_lease_when_the_clock_jumps(
    engine: Engine, start_worker: Callable[..., Any], clock: FakeClock
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    @task(id="lease-keeper")
    async def keeper(payload: None) -> str:
        started.set()
        await release.wait()
        return "kept"

    await start_worker(heartbeat_interval=0.2)
    handle = await keeper.trigger(None)
    await asyncio.wait_for(started.wait(), 10)
    for _ in range(5):
        await clock.advance(30)  # far past any lease; a live worker beats on every move
    assert (await engine.get_run(handle.id)).status == "EXECUTING"
    release.set()
    done = await engine.wait_for_final(handle.id, timeout=10)
    assert (done.status, done.attempt_number) == ("COMPLETED", 1)
