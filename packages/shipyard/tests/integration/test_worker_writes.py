"""A lone worker on PostgreSQL writes ended attempts in two batches at once: while one batch's
write waits, the other half of the slots keeps running and its results are written
(Worker.flush_finished). SQLite has one writer and writes one batch at a time (Store.writers).
"""

from __future__ import annotations

import asyncio

import pytest

from shipyard import RunStatus, task
from shipyard.engine.engine import Engine
from shipyard.testing.eventually import eventually


async def test_a_stuck_write_does_not_hold_up_the_other_half_of_the_slots(
    engine: Engine, start_worker
) -> None:
    if engine.writers < 2:
        pytest.skip("SQLite has one writer: a worker writes one batch at a time")
    started = asyncio.Event()
    proceed = asyncio.Event()

    @task(id="first-half")
    async def first_half(payload):
        started.set()
        await proceed.wait()
        return "first"

    @task(id="second-half")
    async def second_half(payload):
        return "second"

    worker = await start_worker(concurrency=2)
    first = await first_half.trigger({})
    await asyncio.wait_for(started.wait(), 10)
    # Two writes overlap only once the worker has counted itself alone (Share.peers).
    await eventually(lambda: worker.share.peers == 0)
    # The first run's write must wait for its metadata flush (final_metadata): held here,
    # its batch stays in flight once the run ends.
    flush_lock = worker.active[first.id].scope.flush_lock
    await flush_lock.acquire()
    try:
        proceed.set()
        await eventually(lambda: len(worker._writes) == 1)  # the first run's, waiting
        second = await second_half.trigger({})
        record = await engine.wait_for_final(second.id, timeout=10)
        assert record.status == RunStatus.COMPLETED
        assert (await engine.get_run(first.id)).status == RunStatus.EXECUTING
        assert len(worker.active) + worker.claiming <= worker.concurrency
    finally:
        flush_lock.release()
    record = await engine.wait_for_final(first.id, timeout=10)
    assert record.status == RunStatus.COMPLETED
