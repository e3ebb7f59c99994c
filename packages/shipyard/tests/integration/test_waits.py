"""Durable waits through the public API with real workers, on both backends: slot release,
in-worker resume, child waits, replay after a lost worker, non-determinism, parallel waits."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from shipyard import idempotency_keys, queue, task, wait
from shipyard.engine.engine import Engine
from shipyard.records import RunRecord
from shipyard.sdk.queues import queue_registry
from shipyard.store.protocol import AttemptListParams, RunEventsListParams


@pytest.fixture(autouse=True)
def _fresh_queues() -> Any:
    saved = dict(queue_registry._queues)
    queue_registry.clear()
    yield
    queue_registry.clear()
    queue_registry._queues.update(saved)


async def status_becomes(engine: Engine, run_id: str, status: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await engine.get_run(run_id)).status == status:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{run_id} never became {status}")


def error_name(run: RunRecord) -> str:
    return str(json.loads(run.error or "{}").get("name"))


async def test_long_wait_releases_the_slot_and_resumes_in_the_same_coroutine(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    one = queue(name="waits-one", concurrency_limit=1)
    calls: dict[str, list[float]] = {"before": [], "after": [], "other": []}
    hooks: list[tuple[str, str]] = []

    @task(
        id="w-sleeper",
        queue=one,
        on_wait=lambda wait: hooks.append(("wait", wait["type"])),
        on_resume=lambda wait: hooks.append(("resume", wait["type"])),
    )
    async def sleeper(payload: None) -> str:
        calls["before"].append(time.monotonic())
        await wait.for_(seconds=6)  # over the 5 s threshold: durable
        calls["after"].append(time.monotonic())
        return "slept"

    @task(id="w-other", queue=one)
    async def other(payload: None) -> str:
        calls["other"].append(time.monotonic())
        return "other"

    await start_worker()
    first = await sleeper.trigger(None)
    await status_becomes(engine, first.id, "WAITING")
    second = await other.trigger(None)
    done = await engine.wait_for_final(second.id, timeout=5)
    assert done.status == "COMPLETED"  # ran while the first run waited: the slot was free
    finished = await engine.wait_for_final(first.id, timeout=20)
    assert (finished.status, json.loads(finished.output or "null")) == ("COMPLETED", "slept")
    assert len(calls["before"]) == 1 and len(calls["after"]) == 1  # code before ran once
    assert calls["other"][0] < calls["after"][0]
    assert calls["after"][0] - calls["before"][0] >= 5.9
    assert hooks == [("wait", "duration"), ("resume", "duration")]
    assert [
        a.number
        for a in await engine.store.attempt_list(AttemptListParams(engine.environment, first.id))
    ] == [1]


async def test_short_wait_sleeps_in_process(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    @task(id="w-short")
    async def short(payload: None) -> str:
        await wait.for_(seconds=0.1)
        await wait.for_(seconds=0)
        return "ok"

    await start_worker()
    handle = await short.trigger(None)
    run = await engine.wait_for_final(handle.id, timeout=5)
    assert run.status == "COMPLETED"
    events = await engine.store.run_events_list(RunEventsListParams(engine.environment, handle.id))
    assert "WAITING" not in [e.message for e in events if e.kind == "status"]


async def test_parent_and_children_on_one_limit_1_queue(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    one = queue(name="waits-family", concurrency_limit=1)

    @task(id="w-child", queue=one)
    async def child(payload: int) -> int:
        if payload == 7:
            raise ValueError("seven")
        return payload * 2

    @task(id="w-parent", queue=one)
    async def parent(payload: None) -> Any:
        single = await child.trigger_and_wait(21)
        batch = await child.batch_trigger_and_wait(list(range(50)))
        return {
            "single": single.unwrap(),
            "outputs": [r.output if r.ok else None for r in batch.runs],
            "failed": [i for i, r in enumerate(batch.runs) if not r.ok],
        }

    await start_worker()
    handle = await parent.trigger(None)
    run = await engine.wait_for_final(handle.id, timeout=60)
    assert run.status == "COMPLETED", run.error
    output = json.loads(run.output or "null")
    assert output["single"] == 42
    assert output["failed"] == [7]
    assert output["outputs"] == [None if i == 7 else i * 2 for i in range(50)]


async def test_parallel_durable_waits_fail_without_retry(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    @task(id="w-parallel", retry={"max_attempts": 3, "min_timeout_ms": 10})
    async def parallel(payload: None) -> None:
        await asyncio.gather(wait.for_(seconds=10), wait.for_(seconds=10))

    await start_worker()
    handle = await parallel.trigger(None)
    run = await engine.wait_for_final(handle.id, timeout=10)
    assert run.status == "FAILED"
    assert error_name(run) == "ParallelWaitError"
    assert "batch_trigger_and_wait" in json.loads(run.error or "{}")["message"]
    assert (
        len(await engine.store.attempt_list(AttemptListParams(engine.environment, handle.id))) == 1
    )


async def test_replay_after_the_worker_is_gone(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    counts = {"before": 0, "after": 0}
    replays: list[bool] = []

    @task(id="w-replay")
    async def replayed(payload: None, ctx: Any) -> str:
        counts["before"] += 1
        replays.append(ctx.run.is_replay)
        await wait.for_(seconds=6)
        counts["after"] += 1
        return "done"

    first = await start_worker()
    handle = await replayed.trigger(None)
    await status_becomes(engine, handle.id, "WAITING")
    await first.stop(grace=0)  # drops the parked coroutine; the run stays WAITING
    assert (await engine.get_run(handle.id)).status == "WAITING"
    await start_worker()
    run = await engine.wait_for_final(handle.id, timeout=20)
    assert (run.status, json.loads(run.output or "null")) == ("COMPLETED", "done")
    assert counts == {"before": 2, "after": 1}
    assert replays == [False, True]


async def test_replay_reaching_another_durable_call_fails_with_non_determinism(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    changed = {"code": False}

    @task(id="w-nd-child")
    async def nd_child(payload: None) -> str:
        return "child"

    @task(id="w-nd", retry={"max_attempts": 3, "min_timeout_ms": 10})
    async def nd(payload: None) -> str:
        if changed["code"]:
            await nd_child.trigger_and_wait(None)
        await wait.for_(seconds=6)
        return "wrong"

    first = await start_worker()
    handle = await nd.trigger(None)
    await status_becomes(engine, handle.id, "WAITING")
    await first.stop(grace=0)
    changed["code"] = True  # "a deploy" changed the order of the durable calls
    await start_worker()
    run = await engine.wait_for_final(handle.id, timeout=20)
    assert run.status == "FAILED"
    assert error_name(run) == "NonDeterminismError"
    message = json.loads(run.error or "{}")["message"]
    assert "wait" in message and "trigger_and_wait(w-nd-child)" in message
    assert (
        len(await engine.store.attempt_list(AttemptListParams(engine.environment, handle.id))) == 1
    )


async def test_wait_idempotency_key_keeps_the_original_deadline_on_retry(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    starts: list[float] = []

    @task(id="w-idem", retry={"max_attempts": 2, "min_timeout_ms": 10, "max_timeout_ms": 10})
    async def idem(payload: None, ctx: Any) -> int:
        starts.append(time.monotonic())
        await wait.for_(seconds=6, idempotency_key=idempotency_keys.create("pause"))
        if ctx.attempt.number == 1:
            raise RuntimeError("fail after the wait, once")
        return int(ctx.attempt.number)

    await start_worker()
    began = time.monotonic()
    handle = await idem.trigger(None)
    run = await engine.wait_for_final(handle.id, timeout=20)
    assert (run.status, run.output) == ("COMPLETED", "2")
    # Attempt 2 reused attempt 1's wait, whose deadline had passed: no second 6 s wait.
    assert len(starts) == 2 and time.monotonic() - began < 10


async def test_canceling_a_waiting_run_drops_it_without_on_cancel(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    canceled: list[str] = []
    after: list[str] = []

    @task(id="w-cancel", on_cancel=lambda ctx: canceled.append(ctx.run.id))
    async def waiting(payload: None) -> None:
        await wait.for_(hours=1)
        after.append("resumed")

    worker = await start_worker()
    handle = await waiting.trigger(None)
    await status_becomes(engine, handle.id, "WAITING")
    run = await engine.cancel(handle.id)
    assert run.status == "CANCELED"
    for _ in range(100):
        if not worker._parked:
            break
        await asyncio.sleep(0.05)
    assert not worker._parked and canceled == [] and after == []


async def test_a_worker_over_max_parked_resumes_by_replay(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    counts = {"before": 0, "after": 0}
    replays: list[bool] = []

    @task(id="w-evicted")
    async def evicted(payload: None, ctx: Any) -> str:
        counts["before"] += 1
        replays.append(ctx.run.is_replay)
        await wait.for_(seconds=6)
        counts["after"] += 1
        return "done"

    worker = await start_worker(max_parked=0)  # parks nothing: every resume is a replay
    handle = await evicted.trigger(None)
    run = await engine.wait_for_final(handle.id, timeout=20)
    assert run.status == "COMPLETED"
    assert counts == {"before": 2, "after": 1} and replays == [False, True]
    assert not worker._parked
