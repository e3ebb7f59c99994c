"""Durable waits through the public API with real workers, on both backends: slot release,
in-worker resume, child waits, replay after a lost worker, non-determinism, parallel waits,
max_duration paused while waiting, metadata flushed before suspending.

Time is a FakeClock: a wait of 6 s takes no real time; the test moves the clock."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from shipyard import idempotency_keys, metadata, queue, runs, task, wait
from shipyard.clock import FakeClock
from shipyard.engine.engine import Engine
from shipyard.records import RunRecord
from shipyard.testing.eventually import eventually
from shipyard.worker import parking


async def status_becomes(engine: Engine, run_id: str, status: str, timeout: float = 10) -> None:
    await eventually(
        lambda: engine.get_run(run_id),
        until=lambda run: run.status == status,
        timeout=timeout,
        message=f"{run_id} to become {status}",
    )


def error_name(run: RunRecord) -> str:
    return str(json.loads(run.error or "{}").get("name"))


@pytest.mark.fake_clock
async def test_long_wait_releases_the_slot_and_resumes_in_the_same_coroutine(
    engine: Engine, start_worker: Callable[..., Any], clock: FakeClock
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
        calls["before"].append(clock.now_ms())
        await wait.for_(seconds=6)  # over the 5 s threshold: durable
        calls["after"].append(clock.now_ms())
        return "slept"

    @task(id="w-other", queue=one)
    async def other(payload: None) -> str:
        calls["other"].append(clock.now_ms())
        return "other"

    await start_worker()
    first = await sleeper.trigger(None)
    await status_becomes(engine, first.id, "WAITING")
    second = await other.trigger(None)
    done = await engine.wait_for_final(second.id, timeout=5)
    assert done.status == "COMPLETED"  # ran while the first run waited: the slot was free
    await clock.advance(5.9)
    assert (await engine.get_run(first.id)).status == "WAITING"  # not yet due
    await clock.advance(0.1)
    finished = await engine.wait_for_final(first.id, timeout=10)
    assert (finished.status, json.loads(finished.output or "null")) == ("COMPLETED", "slept")
    assert len(calls["before"]) == 1 and len(calls["after"]) == 1  # code before ran once
    assert calls["other"][0] < calls["after"][0]
    assert calls["after"][0] - calls["before"][0] >= 6000
    assert hooks == [("wait", "duration"), ("resume", "duration")]
    assert [a.number for a in (await engine.retrieve_run(first.id)).attempts] == [1]


@pytest.mark.fake_clock
async def test_short_wait_sleeps_in_process(
    engine: Engine, start_worker: Callable[..., Any], clock: FakeClock
) -> None:
    @task(id="w-short")
    async def short(payload: None) -> str:
        await wait.for_(seconds=5)  # the threshold itself: in process, keeps the slot
        await wait.for_(seconds=0)
        return "ok"

    await start_worker()
    handle = await short.trigger(None)
    await eventually(lambda: clock.pending() > 0)  # the task sleeps on the clock
    await clock.advance(5)
    run = await engine.wait_for_final(handle.id, timeout=5)
    assert run.status == "COMPLETED"
    events = await engine.run_event_records(handle.id)
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
    assert len((await engine.retrieve_run(handle.id)).attempts) == 1


@pytest.mark.fake_clock
async def test_replay_after_the_worker_is_gone(
    engine: Engine, start_worker: Callable[..., Any], clock: FakeClock
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
    await clock.advance(6)
    run = await engine.wait_for_final(handle.id, timeout=10)
    assert (run.status, json.loads(run.output or "null")) == ("COMPLETED", "done")
    assert counts == {"before": 2, "after": 1}
    assert replays == [False, True]


@pytest.mark.fake_clock
async def test_replay_reaching_another_durable_call_fails_with_non_determinism(
    engine: Engine, start_worker: Callable[..., Any], clock: FakeClock
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
    await clock.advance(6)
    run = await engine.wait_for_final(handle.id, timeout=10)
    assert run.status == "FAILED"
    assert error_name(run) == "NonDeterminismError"
    message = json.loads(run.error or "{}")["message"]
    assert "wait" in message and "trigger_and_wait(w-nd-child)" in message
    assert len((await engine.retrieve_run(handle.id)).attempts) == 1


@pytest.mark.fake_clock
async def test_wait_idempotency_key_keeps_the_original_deadline_on_retry(
    engine: Engine, start_worker: Callable[..., Any], clock: FakeClock
) -> None:
    starts: list[int] = []

    @task(id="w-idem", retry={"max_attempts": 2, "min_timeout_ms": 10, "max_timeout_ms": 10})
    async def idem(payload: None, ctx: Any) -> int:
        starts.append(clock.now_ms())
        await wait.for_(seconds=6, idempotency_key=idempotency_keys.create("pause"))
        if ctx.attempt.number == 1:
            raise RuntimeError("fail after the wait, once")
        return int(ctx.attempt.number)

    await start_worker()
    handle = await idem.trigger(None)
    await status_becomes(engine, handle.id, "WAITING")
    await clock.advance(6)
    await eventually(
        lambda: engine.get_run(handle.id),
        until=lambda r: r.status == "QUEUED" and r.error is not None,
    )
    # The retry is due 10 ms later; attempt 2 reuses attempt 1's wait, whose deadline has
    # passed: no second 6 s wait, so the run completes without the clock moving 6 s again.
    await clock.advance(0.01)
    run = await engine.wait_for_final(handle.id, timeout=10)
    assert (run.status, run.output) == ("COMPLETED", "2")
    assert len(starts) == 2


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
    run = await engine.cancel_run(handle.id)
    assert run.status == "CANCELED"
    await eventually(lambda: not worker.parked)
    assert canceled == [] and after == []


async def test_the_parked_runs_check_reads_a_slice_a_tick_and_comes_round_to_all(
    engine: Engine, start_worker: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The check reads a slice of the parked runs each second (it read all of them: 10,000
    # rows a second with 10,000 parked); round robin, so it still finds every canceled one.
    monkeypatch.setattr(parking, "PARKED_CHECK_BATCH", 2)

    @task(id="w-parked-slice")
    async def waiting(payload: int) -> None:
        await wait.for_(hours=1)

    worker = await start_worker()
    handles = [await waiting.trigger(n) for n in range(5)]
    await eventually(lambda: len(worker.parked) == 5)
    read: list[int] = []
    ownership = engine.run_ownership

    async def counting(run_ids: list[str]) -> Any:
        read.append(len(run_ids))
        return await ownership(run_ids)

    monkeypatch.setattr(engine, "run_ownership", counting)
    order = list(worker.parked)
    first, fourth = order[0], order[3]
    await engine.cancel_run(first)
    await engine.cancel_run(fourth)
    await eventually(lambda: set(worker.parked) == set(order) - {first, fourth}, timeout=15)
    assert read and max(read) == 2
    assert {h.id for h in handles} == set(order)


@pytest.mark.fake_clock
async def test_a_worker_over_max_parked_resumes_by_replay(
    engine: Engine, start_worker: Callable[..., Any], clock: FakeClock
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
    await status_becomes(engine, handle.id, "WAITING")
    await clock.advance(6)
    run = await engine.wait_for_final(handle.id, timeout=10)
    assert run.status == "COMPLETED"
    assert counts == {"before": 2, "after": 1} and replays == [False, True]
    assert not worker.parked


@pytest.mark.fake_clock
async def test_max_duration_does_not_count_time_spent_waiting(
    engine: Engine, start_worker: Callable[..., Any], clock: FakeClock
) -> None:
    """Defect: max_duration=5 with wait.for_(seconds=8) gave a false TIMED_OUT, ran the code
    before the wait twice and called on_complete twice."""
    counts = {"before": 0, "after": 0}
    completes: list[Any] = []

    @task(id="w-max-duration", max_duration=5, on_complete=lambda result: completes.append(result))
    async def bounded(payload: None) -> str:
        counts["before"] += 1
        await wait.for_(seconds=8)
        counts["after"] += 1
        return "done"

    await start_worker()
    handle = await bounded.trigger(None)
    await status_becomes(engine, handle.id, "WAITING")
    await clock.advance(8)
    run = await engine.wait_for_final(handle.id, timeout=10)
    assert (run.status, json.loads(run.output or "null")) == ("COMPLETED", "done")
    assert counts == {"before": 1, "after": 1}
    assert len(completes) == 1 and completes[0]["ok"]


@pytest.mark.fake_clock
async def test_max_duration_still_counts_execution_around_a_wait(
    engine: Engine, start_worker: Callable[..., Any], clock: FakeClock
) -> None:
    gate = asyncio.Event()

    @task(id="w-max-duration-busy", max_duration=5)
    async def busy(payload: None) -> str:
        await wait.for_(seconds=8)
        await gate.wait()  # "works" after the wait until the test says otherwise
        return "never"

    await start_worker()
    handle = await busy.trigger(None)
    await status_becomes(engine, handle.id, "WAITING")
    await clock.advance(8)  # the wait: not execution
    await status_becomes(engine, handle.id, "EXECUTING")
    await clock.advance(4.9)
    assert (await engine.get_run(handle.id)).status == "EXECUTING"
    await clock.advance(0.2)  # 5.1 s of execution in all
    run = await engine.wait_for_final(handle.id, timeout=10)
    assert run.status == "TIMED_OUT"
    assert error_name(run) == "MaxDurationExceededError"


@pytest.mark.fake_clock
async def test_metadata_is_flushed_before_the_run_suspends(
    engine: Engine, start_worker: Callable[..., Any], clock: FakeClock
) -> None:
    """Defect: a run's own metadata was written only when its attempt ended: an approval flow's
    metadata.set("approvalTokenId", ...) could not be read while the run was WAITING."""

    @task(id="w-approval")
    async def approval(payload: None) -> Any:
        token = await wait.create_token(timeout="1h")
        metadata.set("approval_token_id", token.id)
        result = await wait.for_token(token)
        return result.output

    await start_worker()
    handle = await approval.trigger(None)
    await status_becomes(engine, handle.id, "WAITING")
    token_id = (await runs.retrieve(handle.id)).metadata.get("approval_token_id")
    assert token_id is not None and token_id.startswith("waitpoint_")
    await wait.complete_token(token_id, {"approved": True})
    run = await engine.wait_for_final(handle.id, timeout=10)
    assert json.loads(run.output or "null") == {"approved": True}


async def test_a_fan_out_parents_own_metadata_lands_before_its_childrens_increments(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    """Defect: ported from Trigger.dev, a parent's metadata.set("processed", 0) landed after its
    children's metadata.parent.increment calls and reset the count to 0."""

    @task(id="w-fan-child")
    async def fan_child(payload: int) -> int:
        metadata.parent.increment("processed", 1)
        return payload

    @task(id="w-fan-parent")
    async def fan_parent(payload: None) -> None:
        metadata.set("processed", 0)
        await fan_child.batch_trigger_and_wait(list(range(5)))

    await start_worker()
    handle = await fan_parent.trigger(None)
    run = await engine.wait_for_final(handle.id, timeout=20)
    assert run.status == "COMPLETED"
    assert (await runs.retrieve(handle.id)).metadata == {"processed": 5}


@pytest.mark.fake_clock
async def test_max_duration_stops_counting_when_the_suspend_is_sent(
    engine: Engine, start_worker: Callable[..., Any], clock: FakeClock
) -> None:
    """Defect (a failed CI run): the clock passed max_duration after the suspend committed but
    before the worker had its answer; the deadline cancelled the suspended attempt and the
    run resumed by replay, running the code before the wait twice."""
    counts = {"before": 0, "after": 0}

    @task(id="w-max-duration-race", max_duration=5)
    async def bounded(payload: None) -> str:
        counts["before"] += 1
        await wait.for_(seconds=8)
        counts["after"] += 1
        return "done"

    suspend_many = engine.suspend_many

    async def clock_moves_before_the_answer(blocks: Any) -> Any:
        results = await suspend_many(blocks)
        await clock.advance(8)
        return results

    engine.suspend_many = clock_moves_before_the_answer  # type: ignore[method-assign]
    await start_worker()
    handle = await bounded.trigger(None)
    run = await engine.wait_for_final(handle.id, timeout=10)
    assert (run.status, json.loads(run.output or "null")) == ("COMPLETED", "done")
    assert counts == {"before": 1, "after": 1}
