"""Retries end to end (``docs/runs.md``, Retries).

Each test defines its tasks inside the test, triggers them on a real SQLite store and lets a
real in-process worker execute them; assertions read the run and its attempts back.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pydantic
import pytest

from shipyard import (
    AbortTaskRunError,
    ApiError,
    RunStatus,
    runs,
    schema_task,
    task,
    tasks,
)
from shipyard.engine.engine import Engine
from shipyard.testing.eventually import eventually


async def _attempt_statuses(engine: Engine, run_id: str) -> list[str]:
    return [a.status for a in (await engine.retrieve_run(run_id)).attempts]


async def test_fails_twice_then_succeeds_on_attempt_three(engine, start_worker):
    seen: list[int] = []

    @task(id="flaky")
    async def flaky(payload, ctx):
        seen.append(ctx.attempt.number)
        if ctx.attempt.number < 3:
            raise RuntimeError(f"boom {ctx.attempt.number}")
        return {"attempt": ctx.attempt.number}

    await start_worker()
    handle = await flaky.trigger({"x": 1})
    record = await engine.wait_for_final(handle.id, timeout=10)

    assert record.status == RunStatus.COMPLETED
    assert seen == [1, 2, 3]
    assert await _attempt_statuses(engine, handle.id) == ["FAILED", "FAILED", "COMPLETED"]
    run = await runs.retrieve(handle.id)
    assert run.output == {"attempt": 3}
    assert run.attempt_count == 3
    assert run.error is None
    assert [a.error.message if a.error else None for a in run.attempts] == [
        "boom 1",
        "boom 2",
        None,
    ]


async def test_exhausted_attempts_fail_with_the_last_error(engine, start_worker):
    @task(id="always-fails")
    async def always_fails(payload, ctx):
        raise ValueError(f"nope {ctx.attempt.number}")

    await start_worker()
    handle = await always_fails.trigger()
    record = await engine.wait_for_final(handle.id, timeout=10)

    assert record.status == RunStatus.FAILED
    assert await _attempt_statuses(engine, handle.id) == ["FAILED"] * 3
    run = await runs.retrieve(handle.id)
    assert run.error is not None
    assert (run.error.name, run.error.message) == ("ValueError", "nope 3")


async def test_per_trigger_max_attempts_one_means_no_retry(engine, start_worker):
    calls: list[int] = []

    @task(id="no-retry-per-trigger", retry={"max_attempts": 5, "min_timeout_ms": 10})
    async def no_retry(payload, ctx):
        calls.append(ctx.attempt.number)
        raise RuntimeError("fail")

    await start_worker()
    handle = await no_retry.trigger(None, max_attempts=1)
    record = await engine.wait_for_final(handle.id, timeout=10)

    assert record.status == RunStatus.FAILED
    assert calls == [1]
    assert await _attempt_statuses(engine, handle.id) == ["FAILED"]
    assert (await runs.retrieve(handle.id)).max_attempts == 1


async def test_per_trigger_max_attempts_above_the_task_retry_is_honoured(engine, start_worker):
    """§1.2: per-trigger max_attempts overrides retry.max_attempts, upwards too."""

    @task(id="more-attempts", retry={"max_attempts": 2, "min_timeout_ms": 10})
    async def more_attempts(payload, ctx):
        if ctx.attempt.number < 4:
            raise RuntimeError("not yet")
        return ctx.attempt.number

    await start_worker()
    handle = await more_attempts.trigger(None, max_attempts=4)
    record = await engine.wait_for_final(handle.id, timeout=10)

    assert record.status == RunStatus.COMPLETED
    assert await _attempt_statuses(engine, handle.id) == ["FAILED"] * 3 + ["COMPLETED"]
    run = await runs.retrieve(handle.id)
    assert (run.output, run.max_attempts) == (4, 4)


async def test_abort_task_run_error_is_not_retried_but_hooks_run(engine, start_worker):
    hooks: list[str] = []

    @task(
        id="aborts",
        retry={"max_attempts": 5, "min_timeout_ms": 10},
        on_failure=lambda error: hooks.append(f"failure:{type(error).__name__}"),
        on_complete=lambda result: hooks.append(f"complete:{result['ok']}"),
    )
    async def aborts(payload):
        raise AbortTaskRunError("stop right now")

    await start_worker()
    handle = await aborts.trigger()
    record = await engine.wait_for_final(handle.id, timeout=10)

    assert record.status == RunStatus.FAILED
    assert await _attempt_statuses(engine, handle.id) == ["FAILED"]
    assert hooks == ["failure:AbortTaskRunError", "complete:False"]
    run = await runs.retrieve(handle.id)
    assert run.error is not None
    assert (run.error.name, run.error.message) == ("AbortTaskRunError", "stop right now")


@pytest.mark.parametrize(
    ("status", "expected_attempts"),
    [(400, 1), (404, 1), (422, 1), (408, 3), (429, 3), (500, 3), (503, 3)],
)
async def test_api_error_retry_classification(engine, start_worker, status, expected_attempts):
    @task(id="calls-api")
    async def calls_api(payload):
        raise ApiError(f"HTTP {payload['status']}", status=payload["status"])

    await start_worker()
    handle = await calls_api.trigger({"status": status})
    record = await engine.wait_for_final(handle.id, timeout=10)

    assert record.status == RunStatus.FAILED
    assert await _attempt_statuses(engine, handle.id) == ["FAILED"] * expected_attempts
    run = await runs.retrieve(handle.id)
    assert run.error is not None
    assert run.error.name == "ApiError"


class Order(pydantic.BaseModel):
    order_id: str
    quantity: int = 1


async def test_schema_task_bad_payload_by_id_fails_once_without_hooks(engine, start_worker):
    hooks: list[str] = []
    ran: list[Any] = []

    async def task_mw(payload, next):
        hooks.append("task-middleware")
        await next()

    tasks.middleware(lambda next: hooks.append("global-middleware") or next())
    tasks.on_start(lambda: hooks.append("global-on_start"))
    tasks.on_start_attempt(lambda: hooks.append("global-on_start_attempt"))
    tasks.on_failure(lambda: hooks.append("global-on_failure"))
    tasks.on_complete(lambda: hooks.append("global-on_complete"))
    tasks.catch_error(lambda: hooks.append("global-catch_error"))

    @schema_task(
        id="fulfil-order",
        schema=Order,
        retry={"max_attempts": 5, "min_timeout_ms": 10},
        middleware=task_mw,
        on_start=lambda: hooks.append("on_start"),
        on_start_attempt=lambda: hooks.append("on_start_attempt"),
        on_failure=lambda: hooks.append("on_failure"),
        on_complete=lambda: hooks.append("on_complete"),
        catch_error=lambda: hooks.append("catch_error"),
    )
    async def fulfil_order(order: Order) -> dict[str, Any]:
        ran.append(order)
        return {"order": order.order_id}

    await start_worker()
    # Triggering by id does no client-side validation: the run is created.
    handle = await tasks.trigger("fulfil-order", {"quantity": "many"})
    record = await engine.wait_for_final(handle.id, timeout=10)

    assert record.status == RunStatus.FAILED
    assert await _attempt_statuses(engine, handle.id) == ["FAILED"]
    run = await runs.retrieve(handle.id)
    assert run.error is not None
    assert run.error.name == "TaskPayloadParsedError"
    assert "order_id" in run.error.message
    assert ran == []
    assert hooks == []


async def test_schema_task_parses_payload_with_defaults(engine, start_worker):
    @schema_task(id="fulfil-order-ok", schema=Order)
    async def fulfil_order_ok(order: Order) -> dict[str, Any]:
        assert isinstance(order, Order)
        return {"order": order.order_id, "quantity": order.quantity}

    await start_worker()
    handle = await fulfil_order_ok.trigger({"order_id": "o_1"})
    await engine.wait_for_final(handle.id, timeout=10)
    assert (await runs.retrieve(handle.id)).output == {"order": "o_1", "quantity": 1}


async def test_schema_task_typed_trigger_validates_client_side(engine):
    @schema_task(id="fulfil-order-typed", schema=Order)
    async def fulfil_order_typed(order: Order) -> None:
        return None

    with pytest.raises(pydantic.ValidationError):
        await fulfil_order_typed.trigger({"quantity": 2})
    with pytest.raises(pydantic.ValidationError):
        await fulfil_order_typed.batch_trigger([{"order_id": "ok"}, {"quantity": "x"}])

    assert [r async for r in runs.list()] == []


@pytest.mark.fake_clock
async def test_retry_delays_follow_the_task_retry_options(engine, start_worker, clock):
    raised_at: list[int] = []

    @task(
        id="slow-backoff",
        retry={"max_attempts": 3, "min_timeout_ms": 200, "factor": 2, "randomize": False},
    )
    async def slow_backoff(payload, ctx):
        if ctx.attempt.number < 3:
            raised_at.append(clock.now_ms())
            raise RuntimeError("again")
        return "done"

    await start_worker()
    handle = await slow_backoff.trigger()
    # The delays pass on the engine's clock, so they are measured exactly: on the real one,
    # the bounds that told them from a 1000 ms default left a loaded host 0.7 s per retry.
    for delay_ms in (200, 400):  # factor 2
        retrying = await eventually(
            lambda: engine.get_run(handle.id),
            until=lambda run: run.status == RunStatus.QUEUED and run.available_at > clock.now_ms(),
        )
        assert retrying.available_at - raised_at[-1] == delay_ms
        await clock.advance(ms=retrying.available_at - clock.now_ms())
    record = await engine.wait_for_final(handle.id, timeout=10)
    assert record.status == RunStatus.COMPLETED

    attempts = (await engine.retrieve_run(handle.id)).attempts
    assert [a.status for a in attempts] == ["FAILED", "FAILED", "COMPLETED"]
    started_ms = [round(a.started_at.timestamp() * 1000) for a in attempts]  # type: ignore[union-attr]
    assert [started_ms[1] - raised_at[0], started_ms[2] - raised_at[1]] == [200, 400]


@pytest.mark.fake_clock
async def test_max_duration_times_out_and_calls_on_complete_not_on_failure(
    engine, start_worker, clock
):
    hooks: list[str] = []
    started = asyncio.Event()

    @task(
        id="too-slow",
        max_duration=5,
        retry={"max_attempts": 3, "min_timeout_ms": 10},
        on_failure=lambda: hooks.append("on_failure"),
        on_complete=lambda result: hooks.append(f"on_complete:{result['ok']}"),
    )
    async def too_slow(payload, ctx):
        assert ctx.run.max_duration == 5
        started.set()
        await asyncio.sleep(30)

    await start_worker()
    handle = await too_slow.trigger()
    await asyncio.wait_for(started.wait(), 10)
    await clock.advance(4.9)  # the clock counts the attempt's execution
    assert (await engine.get_run(handle.id)).status == RunStatus.EXECUTING
    await clock.advance(0.1)
    record = await engine.wait_for_final(handle.id, timeout=10)

    assert record.status == RunStatus.TIMED_OUT
    assert hooks == ["on_complete:False"]
    assert await _attempt_statuses(engine, handle.id) == ["FAILED"]
    run = await runs.retrieve(handle.id)
    assert run.is_failed and run.is_completed
    assert run.error is not None
    assert run.error.name == "MaxDurationExceededError"


async def test_max_duration_is_clamped_to_five_seconds(engine):
    @task(id="clamped", max_duration=1)
    async def clamped(payload):
        return None

    assert clamped.max_duration == 5


async def test_retries_disabled_in_development(custom_engine):
    calls: list[int] = []
    caught: list[str] = []

    @task(
        id="dev-no-retry",
        retry={"max_attempts": 5, "min_timeout_ms": 10},
        catch_error=lambda: caught.append("catch_error") or {"retry_delay_ms": 1},
    )
    async def dev_no_retry(payload, ctx):
        calls.append(ctx.attempt.number)
        raise RuntimeError("dev failure")

    engine = await custom_engine(retries_enabled_in_dev=False)
    assert engine.environment == "development"
    handle = await dev_no_retry.trigger()
    record = await engine.wait_for_final(handle.id, timeout=10)

    assert record.status == RunStatus.FAILED
    assert calls == [1]
    # catch_error is not consulted when dev retries are disabled (§1.4).
    assert caught == []
    assert await _attempt_statuses(engine, handle.id) == ["FAILED"]
    assert (await runs.retrieve(handle.id)).max_attempts == 1
