"""Two workers share a queue's concurrency limit (``worker/share.py``).

A worker's finishes claim the slots they free in the same transaction, so without shares the
worker that filled the limit first keeps every slot and a second worker never runs anything.
"""

from __future__ import annotations

import asyncio

from shipyard import RunStatus, queue, task
from shipyard.engine.engine import Engine
from shipyard.worker.share import STEADY
from shipyard.worker.worker import Worker

RUNS = 200
LIMIT = 10


async def test_two_workers_split_a_busy_queue(engine, start_worker, wait_until):
    shared = queue(name="shares", concurrency_limit=LIMIT)
    peak = {"both": 0}

    @task(id="share-sleep", queue=shared)
    async def sleep(payload):
        await asyncio.sleep(0.04)  # 200 runs, 10 at a time: 0.8 s of work
        return payload

    handles = [await sleep.trigger(i) for i in range(RUNS)]
    first = await start_worker(concurrency=LIMIT)
    # The first worker holds the whole limit before the second one starts.
    await wait_until(lambda: first.active_count == LIMIT, timeout=10)
    second = await start_worker(concurrency=LIMIT)
    for worker in (first, second):
        worker.share.tick = 0.01

    async def watch() -> None:
        while True:
            if first.active_count and second.active_count:
                peak["both"] += 1
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    try:
        for handle in handles:
            record = await engine.wait_for_final(handle.id, timeout=30)
            assert record.status == RunStatus.COMPLETED
    finally:
        watcher.cancel()
    # Each did a fair part of the work (without shares the second did none of it). A run is
    # final for everyone once its finish commits; its worker counts it a moment later.
    await wait_until(lambda: first.completed + second.completed == RUNS, timeout=10)
    assert second.completed >= RUNS // 4, (first.completed, second.completed)
    assert first.completed >= RUNS // 4, (first.completed, second.completed)
    assert peak["both"] > 0


async def test_a_worker_alone_takes_the_whole_limit(engine, start_worker, wait_until):
    shared = queue(name="alone", concurrency_limit=LIMIT)
    release = asyncio.Event()

    @task(id="share-block", queue=shared)
    async def block(payload):
        await release.wait()
        return payload

    handles = [await block.trigger(i) for i in range(2 * LIMIT)]
    worker = await start_worker(concurrency=2 * LIMIT)
    worker.share.tick = 0.01
    await wait_until(lambda: worker.active_count == LIMIT, timeout=10)
    # Runs are ready and the limit is full, but no other worker wants any: no share.
    passes = worker.share.passes
    await wait_until(lambda: worker.share.passes >= passes + 3, timeout=10)
    assert (worker.share.peers, worker.share.others) == (0, 0)
    assert worker.share.claim_share() is None
    # Nothing changes: the checks back off to one every STEADY ticks.
    await wait_until(lambda: worker.share.interval == 0.01 * STEADY, timeout=10)
    release.set()
    for handle in handles:
        assert (await engine.wait_for_final(handle.id, timeout=30)).status == RunStatus.COMPLETED


async def test_a_worker_joining_a_busy_limit_gets_its_share_at_once(engine, wait_until):
    """Neither worker checks its share on its own during the test (an hour between checks):
    only a want that starts (the joining worker's short claims, then the first worker's once
    the share cut it back) brings the checks forward. Without that the second worker would
    run nothing for an hour."""
    shared = queue(name="joining", concurrency_limit=LIMIT)

    @task(id="share-join", queue=shared)
    async def sleep(payload):
        await asyncio.sleep(0.02)
        return payload

    async def start(engine: Engine) -> Worker:
        worker = Worker(engine, concurrency=LIMIT)
        worker.share.tick = 3600.0
        await worker.start()
        return worker

    handles = [await sleep.trigger(i) for i in range(RUNS)]
    first = await start(engine)
    second: Worker | None = None
    try:
        await wait_until(lambda: first.active_count == LIMIT, timeout=10)
        second = await start(engine)
        joined = second
        await wait_until(lambda: joined.active_count > 0, timeout=10)
        for handle in handles:
            record = await engine.wait_for_final(handle.id, timeout=30)
            assert record.status == RunStatus.COMPLETED
        await wait_until(lambda: first.completed + joined.completed == RUNS, timeout=10)
        assert joined.completed >= RUNS // 4, (first.completed, joined.completed)
        assert (first.share.others, joined.share.others) != (0, 0)
    finally:
        for worker in (first, second):
            if worker is not None:
                await worker.stop(grace=0)
