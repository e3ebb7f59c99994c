"""Versions of the task code, as Trigger.dev users expect them.

Real workers on both backends prove: a run of a task no live worker has waits as
PENDING_VERSION and completes once a worker with the task starts (moved to the queue the task
registers); a run records the version of the worker that claimed it; children a parent waits
for run on the parent's version while another version's worker is live and idle; a run
triggered by a process that had not seen the worker yet is started by the worker's periodic
pass; versions and their live workers are listed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shipyard import queue, runs, task
from shipyard.clock import FakeClock
from shipyard.config import Settings
from shipyard.engine import triggers
from shipyard.engine.definitions import Definitions
from shipyard.engine.engine import Engine
from shipyard.jsonutil import loads
from shipyard.statuses import RunStatus
from shipyard.testing.eventually import eventually


async def statuses(engine: Engine, run_id: str) -> list[str]:
    """The status changes the database recorded for the run, in order (an insert records none)."""
    return [e.message for e in await engine.run_event_records(run_id) if e.kind == "status"]


async def other_process(settings: Settings) -> Engine:
    """An engine like another process's (an API server): its own store, no task defined."""
    engine = Engine(settings, definitions=Definitions())
    await engine.start()
    return engine


async def test_a_task_no_worker_has_waits_then_completes_when_one_starts(
    engine: Engine, start_worker: Any
) -> None:
    @task(id="v-later")
    async def later(payload: int) -> int:
        return payload + 1

    handle = await later.trigger(41)
    run = await runs.retrieve(handle.id)
    assert (run.status, run.is_queued, run.version) == (RunStatus.PENDING_VERSION, True, None)

    worker = await start_worker()
    done = await engine.wait_for_final(handle.id, timeout=20)
    assert (done.status, loads(done.output)) == ("COMPLETED", 42)
    assert done.version == worker.version  # locked to the version that claimed it
    assert (await runs.retrieve(handle.id)).version == worker.version
    # Promoted by the worker's registration: PENDING_VERSION → QUEUED → EXECUTING → …
    assert await statuses(engine, handle.id) == ["QUEUED", "EXECUTING", "COMPLETED"]


async def test_a_task_triggered_by_id_elsewhere_moves_to_the_queue_its_worker_registers(
    engine: Engine, settings: Settings, start_worker: Any
) -> None:
    api = await other_process(settings)
    try:
        handle = await api.trigger("v-report", {"rows": 3}, {})
        run = await api.get_run(handle.id)
        # Nothing knows the task yet: its default queue, waiting for a worker.
        assert (run.status, run.queue) == ("PENDING_VERSION", "task/v-report")

        reports = queue(name="v-reports", concurrency_limit=1)

        @task(id="v-report", queue=reports)
        async def report(payload: dict[str, int]) -> int:
            return payload["rows"]

        worker = await start_worker()
        done = await engine.wait_for_final(handle.id, timeout=20)
        assert (done.status, done.queue, done.version) == ("COMPLETED", "v-reports", worker.version)

        # Another process that has seen the live worker queues the next run straight away.
        later = await other_process(settings)
        try:
            again = await later.trigger("v-report", {"rows": 1}, {})
            finished = await engine.wait_for_final(again.id, timeout=20)
            assert await statuses(engine, again.id) == ["EXECUTING", "COMPLETED"]
            assert finished.queue == "v-reports"  # the queue the worker registered
        finally:
            await later.close()
    finally:
        await api.close()


async def test_a_run_triggered_by_a_process_that_missed_the_worker_is_started_anyway(
    engine: Engine, settings: Settings, start_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The API process read "no worker has the task" and keeps believing it (its cache never
    # expires here): what a trigger racing a worker's registration sees.
    monkeypatch.setattr(triggers, "LIVE_TASKS_TTL_S", 3600.0)
    monkeypatch.setattr(triggers, "LIVE_TASKS_RECHECK_S", 3600.0)

    @task(id="v-raced")
    async def raced(payload: int) -> int:
        return payload

    api = await other_process(settings)
    try:
        first = await api.trigger("v-raced", 1, {})
        await start_worker()
        second = await api.trigger("v-raced", 2, {})
        # Inserted PENDING_VERSION, promoted by the worker's periodic pass.
        done = await engine.wait_for_final(second.id, timeout=20)
        assert done.status == "COMPLETED"
        assert await statuses(engine, second.id) == ["QUEUED", "EXECUTING", "COMPLETED"]
        assert (await engine.wait_for_final(first.id, timeout=20)).status == "COMPLETED"
    finally:
        await api.close()


async def test_a_trigger_right_after_a_worker_starts_queues_the_run_at_once(
    engine: Engine, settings: Settings, start_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The API process read "no worker has the task" a moment ago and its cache has long to
    # live; a trigger of that task reads again (the cache is older than the recheck), so the
    # run is inserted QUEUED, not left for the worker's periodic pass.
    monkeypatch.setattr(triggers, "LIVE_TASKS_TTL_S", 3600.0)
    monkeypatch.setattr(triggers, "LIVE_TASKS_RECHECK_S", 0.0)

    @task(id="v-fresh")
    async def fresh(payload: int) -> int:
        return payload

    api = await other_process(settings)
    try:
        first = await api.trigger("v-fresh", 1, {})
        assert (await api.retrieve_run(first.id)).status == RunStatus.PENDING_VERSION
        await start_worker()
        second = await api.trigger("v-fresh", 2, {})
        done = await engine.wait_for_final(second.id, timeout=20)
        assert done.status == "COMPLETED"
        assert await statuses(engine, second.id) == ["EXECUTING", "COMPLETED"]
    finally:
        await api.close()


async def test_a_stopped_workers_tasks_wait_for_a_worker_again(
    engine: Engine, settings: Settings, start_worker: Any
) -> None:
    @task(id="v-stopped")
    async def stopped(payload: None) -> None:
        return None

    worker = await start_worker()
    await worker.stop(grace=0)
    api = await other_process(settings)
    try:
        handle = await api.trigger("v-stopped", None, {})
        assert (await api.get_run(handle.id)).status == "PENDING_VERSION"
    finally:
        await api.close()


async def test_children_waited_for_run_on_their_parents_version(
    engine: Engine, start_worker: Any
) -> None:
    release = asyncio.Event()

    @task(id="v-child")
    async def child(payload: int, ctx: Any) -> str | None:
        return ctx.run.version

    @task(id="v-parent")
    async def parent(payload: None, ctx: Any) -> dict[str, Any]:
        await release.wait()
        batch = await child.batch_trigger_and_wait(list(range(8)))
        single = await child.trigger_and_wait(99)
        return {
            "parent": ctx.run.version,
            "children": [r.output for r in batch.runs] + [single.output],
        }

    await start_worker(version="v1", concurrency=10)
    handle = await parent.trigger(None)
    await eventually(lambda: runs.retrieve(handle.id), until=lambda r: r.is_executing)
    # Another version's worker, live and idle, while the children are triggered.
    await start_worker(version="v2", concurrency=10)
    release.set()
    done = await engine.wait_for_final(handle.id, timeout=30)
    assert done.status == "COMPLETED", done.error
    assert loads(done.output) == {"parent": "v1", "children": ["v1"] * 9}
    # The parent resumed on its version too.
    assert done.version == "v1"


async def test_a_plain_trigger_from_a_task_is_not_locked(engine: Engine, start_worker: Any) -> None:
    child_ids: list[str] = []

    @task(id="v-free-child")
    async def free_child(payload: None) -> None:
        return None

    @task(id="v-free-parent")
    async def free_parent(payload: None) -> None:
        child_ids.append((await free_child.trigger(None)).id)

    await start_worker(version="v1")
    handle = await free_parent.trigger(None)
    await engine.wait_for_final(handle.id, timeout=20)
    # Not waited for: no version until a worker claims it (any version may).
    child = await engine.wait_for_final(child_ids[0], timeout=20)
    assert child.status == "COMPLETED" and child.version == "v1"
    events = await statuses(engine, child_ids[0])
    assert events == ["EXECUTING", "COMPLETED"]


async def test_versions_are_listed_with_their_live_workers(
    engine: Engine, start_worker: Any
) -> None:
    @task(id="v-listed")
    async def listed(payload: None) -> None:
        return None

    worker = await start_worker(version="2026.11.27")
    found = await engine.list_versions()
    assert [(v.version, v.task_ids, v.live_workers, v.is_live) for v in found] == [
        ("2026.11.27", ("v-listed",), 1, True)
    ]
    assert found[0].to_dict()["task_ids"] == ["v-listed"]
    assert [w.version for w in await engine.live_workers()] == ["2026.11.27"]
    await worker.stop(grace=0)
    assert [v.live_workers for v in await engine.list_versions()] == [0]


@pytest.mark.fake_clock
async def test_a_run_waiting_for_a_worker_expires_by_its_ttl(
    engine: Engine, clock: FakeClock
) -> None:
    @task(id="v-ttl")
    async def ttl(payload: None) -> None:
        return None

    handle = await ttl.trigger(None, ttl="10s")
    assert (await engine.get_run(handle.id)).status == "PENDING_VERSION"
    await clock.advance(11)
    await engine.promote_due()
    assert (await engine.get_run(handle.id)).status == "EXPIRED"


async def test_a_run_waiting_for_a_worker_can_be_canceled(engine: Engine) -> None:
    @task(id="v-cancel")
    async def cancel(payload: None) -> None:
        return None

    handle = await cancel.trigger(None)
    canceled = await runs.cancel(handle.id)
    assert canceled.status == RunStatus.CANCELED
