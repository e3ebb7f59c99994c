"""Subscriptions through the SDK (in-process engine), on both backends: a run's changes in
order and ending with it, tag subscriptions seeing new runs, batch subscriptions seeing every
item finish, resuming from any position, and a slow subscriber told to resume."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from shipyard import metadata, runs, tags, task
from shipyard.engine.engine import Engine
from shipyard.engine.feed import Subscriber
from shipyard.models.realtime import RealtimeRun, RunChange
from shipyard.statuses import RunStatus
from shipyard.testing.eventually import eventually


def statuses(seen: list[RealtimeRun]) -> list[str]:
    """The distinct statuses in the order seen (a status repeats only for other changes)."""
    out: list[str] = []
    for run in seen:
        if not out or out[-1] != run.status:
            out.append(str(run.status))
    return out


def progress_task(steps: dict[float, asyncio.Event]) -> Any:
    @task(id="progress")
    async def progress(payload: None) -> str:
        for value in (0.25, 0.5, 0.75):
            metadata.set("progress", value)
            await metadata.flush()
            # The subscriber saw this value: the next one cannot be coalesced with it.
            await asyncio.wait_for(steps[value].wait(), 10)
        return "done"

    return progress


async def test_a_subscriber_sees_each_status_in_order_the_progress_and_stops_with_the_run(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    steps = {v: asyncio.Event() for v in (0.25, 0.5, 0.75)}
    handle = await progress_task(steps).trigger(None)
    seen: list[RealtimeRun] = []

    async def follow() -> None:
        async for run in runs.subscribe_to_run(handle):
            seen.append(run)
            value = run.metadata.get("progress")
            if value in steps:
                steps[value].set()

    follower = asyncio.create_task(follow())
    await eventually(lambda: seen)  # the snapshot: QUEUED, before any worker runs
    await start_worker()
    await asyncio.wait_for(follower, 20)  # ends by itself with the run
    # No worker had the task when it was triggered: PENDING_VERSION until one registers.
    assert statuses(seen) == ["PENDING_VERSION", "QUEUED", "EXECUTING", "COMPLETED"]
    values = [r.metadata.get("progress") for r in seen if r.metadata.get("progress")]
    assert sorted(set(values)) == [0.25, 0.5, 0.75] and values == sorted(values)
    last = seen[-1]
    assert last.status == RunStatus.COMPLETED and last.output == "done"
    assert last.is_completed and last.is_success and not last.is_executing
    assert all(r.output is None for r in seen[:-1])


async def test_status_changes_are_never_coalesced(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    @task(id="quick")
    async def quick(payload: None) -> int:
        return 1

    handle = await quick.trigger(None)
    changes: list[RunChange] = []

    async def follow() -> None:
        async for change in engine.subscribe_run(handle.id):
            changes.append(change)

    follower = asyncio.create_task(follow())
    await eventually(lambda: changes)
    await start_worker()
    await asyncio.wait_for(follower, 20)
    assert [(c.change, str(c.run.status)) for c in changes] == [
        ("snapshot", "PENDING_VERSION"),
        ("status", "QUEUED"),
        ("status", "EXECUTING"),
        ("status", "COMPLETED"),
    ]
    # Resuming from any change's position gives exactly the changes after it.
    for i, change in enumerate(changes):
        rest = [c async for c in engine.subscribe_run(handle.id, after=change.position)]
        assert [(c.change, str(c.run.status)) for c in rest] == [
            (c.change, str(c.run.status)) for c in changes[i + 1 :]
        ]


async def test_canceled_runs_end_the_subscription_but_are_not_completed_in_realtime(
    engine: Engine,
) -> None:
    @task(id="never-runs")
    async def never_runs(payload: None) -> None:
        return None

    handle = await never_runs.trigger(None)
    seen: list[RealtimeRun] = []

    async def follow() -> None:
        async for run in runs.subscribe_to_run(handle.id):
            seen.append(run)

    follower = asyncio.create_task(follow())
    await eventually(lambda: seen)
    await runs.cancel(handle.id)
    await asyncio.wait_for(follower, 10)
    assert statuses(seen) == ["PENDING_VERSION", "CANCELED"]
    assert seen[-1].is_cancelled and not seen[-1].is_completed
    assert (await runs.retrieve(handle.id)).is_completed  # retrieve's meaning differs


async def test_a_tag_subscription_receives_runs_triggered_after_it_started(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    @task(id="tagged")
    async def tagged(payload: int) -> int:
        await tags.add(f"n-{payload}")
        return payload

    before = await tagged.trigger(0, tags=["watch"])
    seen: list[RealtimeRun] = []

    async def follow() -> None:
        async for run in runs.subscribe_to_runs_with_tag(["watch", "other"]):
            seen.append(run)

    follower = asyncio.create_task(follow())
    await eventually(lambda: seen)
    assert [r.id for r in seen] == [before.id]  # the snapshot
    after = [await tagged.trigger(i, tags=["watch"]) for i in (1, 2)]
    await tagged.trigger(3, tags=["unrelated"])
    await start_worker()

    def done(run_id: str) -> bool:
        return any(r.id == run_id and r.status == RunStatus.COMPLETED for r in seen)

    await eventually(lambda: all(done(h.id) for h in [before, *after]), timeout=20)
    follower.cancel()
    assert {r.id for r in seen} == {before.id, *(h.id for h in after)}
    for handle in after:
        mine = [r for r in seen if r.id == handle.id]
        assert statuses(mine)[-3:] == ["QUEUED", "EXECUTING", "COMPLETED"]
        assert any(f"n-{mine[-1].output}" in r.tags for r in mine)


async def test_a_batch_subscription_sees_every_item_finish(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    @task(id="item")
    async def item(payload: int) -> int:
        return payload * 2

    batch = await item.batch_trigger([{"payload": i} for i in range(5)])
    latest: dict[str, RealtimeRun] = {}

    async def follow() -> None:
        async for run in runs.subscribe_to_batch(batch):
            latest[run.id] = run
            if len(latest) == 5 and all(r.is_completed for r in latest.values()):
                return  # never ends by itself: the caller breaks

    follower = asyncio.create_task(follow())
    await eventually(lambda: len(latest) == 5)
    await start_worker()
    await asyncio.wait_for(follower, 20)
    assert sorted(r.output for r in latest.values()) == [0, 2, 4, 6, 8]
    assert set(latest) == set(batch.runs)


async def test_a_slow_subscriber_is_told_to_resume_and_loses_nothing(engine: Engine) -> None:
    @task(id="chatty")
    async def chatty(payload: None) -> None:
        return None

    handle = await chatty.trigger(None)
    slow = engine.subscribe_run(handle.id, stop_on_completion=False)
    first = await anext(slow)
    assert first.change == "snapshot"
    hub = engine.feed_hub
    subscriber = next(iter(hub._by_run[handle.id]))  # the slow one's buffer
    subscriber.capacity = 3
    for i in range(10):
        await tags_add(engine, handle.id, f"t{i}")
    await eventually(lambda: subscriber.overflowed)
    rest = [await anext(slow) for _ in range(10)]
    assert [c.change for c in rest] == ["tag"] * 10
    assert [c.run.tags[-1] for c in rest] == [f"t{i}" for i in range(10)]
    assert isinstance(subscriber, Subscriber) and subscriber not in hub._by_run.get(handle.id, ())
    await slow.aclose()


async def tags_add(engine: Engine, run_id: str, tag: str) -> None:
    await engine.add_tags(run_id, tag)


async def test_resuming_inside_a_batch_snapshot_reads_the_rest_afresh_and_misses_nothing(
    engine: Engine,
) -> None:
    @task(id="trio")
    async def trio(payload: int) -> int:
        return payload

    batch = await trio.batch_trigger([1, 2, 3])
    ids = sorted(batch.runs)
    opened = engine.subscribe_batch(batch.batch_id)
    first = await anext(opened)
    await opened.aclose()  # the client goes away after one update
    assert first is not None and first.change == "snapshot" and first.run.id == ids[0]
    # While the client is away: the run it has seen and one it has not both change.
    await runs.cancel(ids[0])
    await runs.cancel(ids[2])
    resumed: list[RunChange] = []
    async for change in engine.subscribe_batch(batch.batch_id, after=first.position):
        assert change is not None
        resumed.append(change)
        if len(resumed) == 3:
            break
    assert [(c.run.id, c.change, str(c.run.status)) for c in resumed] == [
        (ids[0], "status", "CANCELED"),  # what it missed of the run it knew
        (ids[1], "snapshot", "PENDING_VERSION"),  # the rest of the snapshot, as it is now
        (ids[2], "snapshot", "CANCELED"),
    ]
    # Nothing more is pending: the next change is a new one.
    later = engine.subscribe_batch(batch.batch_id, after=resumed[-1].position)
    waiting = asyncio.create_task(anext(later))
    await runs.cancel(ids[1])
    change = await asyncio.wait_for(waiting, 10)
    assert change is not None and (change.run.id, str(change.run.status)) == (ids[1], "CANCELED")
    await later.aclose()
