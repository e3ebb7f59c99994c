"""Store conformance: workers share a concurrency limit.

A claim with a :class:`ClaimShare` takes at most ``ceil(limit × fraction)`` runs of each
(queue, concurrency key) group, minus the runs of that group the worker says it holds; without
one it takes the whole limit. ``worker_share`` records whether a worker wants more runs (a short
claim while runs it may start are ready) and counts the other live workers of its version, and
those of them whose want is recent; a want that starts or ends wakes the workers' listeners
(``wants``), so they recount at once.
"""

from __future__ import annotations

import asyncio

from shipyard.ids import new_id
from shipyard.records import TaskRecord, WorkerRecord
from shipyard.statuses import IDEMPOTENCY_RELEASE_STATUSES
from shipyard.store.claims import ClaimShare
from shipyard.store.protocol import (
    QueueDefinition,
    ReadyNotifyParams,
    RunClaimParams,
    RunInsertParams,
    Store,
    TaskRegisterParams,
    WorkerShareParams,
    WorkerStopParams,
)

ENV = "test"
RELEASE = frozenset(str(s) for s in IDEMPOTENCY_RELEASE_STATUSES)
QUEUE = "task/t"


async def queue_runs(store: Store, count: int, concurrency_key: str | None = None) -> None:
    for _ in range(count):
        await store.run_insert(
            RunInsertParams(
                id=new_id("run"),
                environment=ENV,
                task_id="t",
                status="QUEUED",
                payload="null",
                queue=QUEUE,
                queued_at=1_000,
                created_at=1_000,
                idempotency_release_statuses=RELEASE,
                concurrency_key=concurrency_key,
            )
        )


def claim(worker: str, share: ClaimShare | None, limit: int = 100) -> RunClaimParams:
    return RunClaimParams(
        ENV, worker, ["t"], limit, 2_000, 60_000, environment_limit=10, share=share
    )


async def test_a_share_caps_each_group_at_its_part_of_the_limit(store: Store) -> None:
    await queue_runs(store, 30)
    first = await store.run_claim(claim("a", ClaimShare(0.5)))
    assert len(first) == 5  # ceil(10 × 0.5)
    held = {(QUEUE, ""): 5}
    assert await store.run_claim(claim("a", ClaimShare(0.5, held))) == []
    # Another worker's share is its own.
    assert len(await store.run_claim(claim("b", ClaimShare(0.5)))) == 5
    # The group's limit still binds a worker claiming the whole of it.
    assert await store.run_claim(claim("c", None)) == []


async def test_a_share_rounds_up_and_counts_what_the_worker_holds(store: Store) -> None:
    await queue_runs(store, 30)
    third = 1 / 3
    assert len(await store.run_claim(claim("a", ClaimShare(third)))) == 4  # ceil(10 / 3)
    # Holding 1 of the group (say the rest finished), it may take 3 more.
    assert len(await store.run_claim(claim("b", ClaimShare(third, {(QUEUE, ""): 1})))) == 3
    # Alone again, a worker takes what the limit leaves.
    assert len(await store.run_claim(claim("b", None))) == 3


async def test_a_share_is_counted_per_concurrency_key(store: Store) -> None:
    await queue_runs(store, 10, concurrency_key="k1")
    await queue_runs(store, 10, concurrency_key="k2")
    held = {(QUEUE, "k1"): 5}
    claimed = await store.run_claim(claim("a", ClaimShare(0.5, held)))
    # Nothing more of k1 (5 held of its 5), its share of k2.
    assert [r.concurrency_key for r in claimed] == ["k2"] * 5


async def register(
    store: Store, worker: str, version: str | None, beat: int = 1_000, port: int | None = None
) -> None:
    await store.task_register(
        TaskRegisterParams(
            ENV,
            WorkerRecord(worker, ENV, "host", 1, port, beat, beat, None, version),
            beat,
            queues=[QueueDefinition(QUEUE, None)],
            tasks=[
                TaskRecord(ENV, "t", "/x.py", QUEUE, 3, None, None, None, None, None, worker, 0)
            ],
        )
    )


def share(
    worker: str,
    *,
    short: bool = False,
    wanting: bool = False,
    now: int = 2_000,
    task_ids: tuple[str, ...] = ("t",),
    version: str | None = "v1",
) -> WorkerShareParams:
    return WorkerShareParams(
        ENV,
        worker,
        task_ids,
        version,
        short,
        wanting,
        now,
        live_since=500,
        wanting_since=now - 1_000,
    )


async def test_a_short_claim_with_runs_ready_is_a_want_the_others_count(store: Store) -> None:
    for worker, version in (("a", "v1"), ("b", "v1"), ("c", "v2")):
        await register(store, worker, version)
    await register(store, "dead", "v1", beat=100)  # last heartbeat before live_since
    await queue_runs(store, 1)
    # Nothing ready for a task it does not run: no want.
    assert await store.worker_share(share("b", short=True, task_ids=("other",))) == (False, 1, 0)
    assert await store.worker_share(share("b", short=True)) == (True, 1, 0)
    # "a" sees one peer of its version ("c" runs another version), which wants more.
    assert await store.worker_share(share("a")) == (False, 1, 1)
    # A want is counted for a second, unless said again.
    assert await store.worker_share(share("a", now=3_000)) == (False, 1, 1)
    assert await store.worker_share(share("a", now=3_001)) == (False, 1, 0)
    assert await store.worker_share(share("b", short=True, wanting=True, now=3_001)) == (
        True,
        1,
        0,
    )
    assert await store.worker_share(share("a", now=3_500)) == (False, 1, 1)


async def test_a_want_ends_when_nothing_is_ready_or_the_worker_stops(store: Store) -> None:
    await register(store, "a", "v1")
    await register(store, "b", "v1")
    await queue_runs(store, 1)
    assert await store.worker_share(share("b", short=True)) == (True, 1, 0)
    assert await store.worker_share(share("a")) == (False, 1, 1)
    # Not short any more (its claims fill its slots): its want is cleared at once.
    assert await store.worker_share(share("b", wanting=True)) == (False, 1, 0)
    assert await store.worker_share(share("a")) == (False, 1, 0)
    # Short again, but the ready run is taken: no want.
    assert len(await store.run_claim(claim("a", None))) == 1
    assert await store.worker_share(share("b", short=True)) == (False, 1, 0)
    assert await store.worker_share(share("a")) == (False, 1, 0)
    # A stopped worker is nobody's peer.
    await queue_runs(store, 1)
    assert await store.worker_share(share("b", short=True)) == (True, 1, 0)
    await store.worker_stop(WorkerStopParams(ENV, "b", 2_000))
    assert await store.worker_share(share("a")) == (False, 0, 0)


async def test_a_want_that_starts_or_ends_wakes_the_workers(store: Store) -> None:
    listener = await store.ready_listen()
    try:
        await register(store, "a", "v1", port=listener.port)
        await register(store, "b", "v1")
        await queue_runs(store, 1)
        # Heard once it listens (a LISTEN connection says "anything may have happened" when
        # it connects: that is consumed here too).
        await store.ready_notify(ReadyNotifyParams(ENV, 2_000))
        assert await listener.wait(5.0)
        listener.wants.clear()
        assert await store.worker_share(share("b", short=True)) == (True, 1, 0)
        await asyncio.wait_for(listener.wants.wait(), 5.0)
        listener.wants.clear()
        assert await store.worker_share(share("b", wanting=True)) == (False, 1, 0)
        await asyncio.wait_for(listener.wants.wait(), 5.0)
        listener.wants.clear()
        # No change, no wake-up: a "runs are ready" sent after it arrives alone.
        assert await store.worker_share(share("b")) == (False, 1, 0)
        assert await store.worker_share(share("a")) == (False, 1, 0)
        await store.ready_notify(ReadyNotifyParams(ENV, 2_000))
        assert await listener.wait(5.0)
        assert not listener.wants.is_set()
    finally:
        listener.close()
