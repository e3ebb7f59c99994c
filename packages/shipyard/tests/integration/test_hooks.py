"""Lifecycle hooks, middleware, catch_error and locals (``docs/runs.md``, Hooks)."""

from __future__ import annotations

import datetime
import json
import threading
from typing import Any

from shipyard import RunStatus, locals, logger, metadata, runs, task, tasks
from shipyard.engine.engine import Engine


class OtherError(Exception):
    """Replaces the original error via catch_error's {"error": ...}."""


async def _attempts(engine: Engine, run_id: str) -> list[tuple[str, dict[str, Any] | None]]:
    return [
        (
            a.status,
            {"name": a.error.name, "message": a.error.message, "code": a.error.code}
            if a.error
            else None,
        )
        for a in (await engine.retrieve_run(run_id)).attempts
    ]


async def test_hook_order_on_a_successful_first_attempt(engine, start_worker):
    order: list[str] = []

    async def global_mw(payload, ctx, next):
        order.append("global middleware")
        await next()
        order.append("global middleware after")

    async def task_mw(next):
        order.append("task middleware")
        await next()
        order.append("task middleware after")

    tasks.middleware(global_mw)
    tasks.on_start(lambda: order.append("global on_start"))
    tasks.on_start_attempt(lambda: order.append("global on_start_attempt"))
    tasks.on_success(lambda output: order.append(f"global on_success {output}"))
    tasks.on_failure(lambda: order.append("global on_failure"))
    tasks.on_complete(lambda result: order.append(f"global on_complete {result['ok']}"))

    async def task_on_start(payload, ctx, task):
        order.append(f"task on_start {payload['n']} {task.id} {ctx.attempt.number}")

    @task(
        id="ordered",
        middleware=task_mw,
        on_start=task_on_start,
        on_start_attempt=lambda ctx: order.append(f"task on_start_attempt {ctx.attempt.number}"),
        on_success=lambda output: order.append(f"task on_success {output}"),
        on_failure=lambda: order.append("task on_failure"),
        on_complete=lambda result: order.append(f"task on_complete {result['output']}"),
    )
    async def ordered(payload):
        order.append("run")
        return payload["n"] * 2

    await start_worker()
    handle = await ordered.trigger({"n": 21})
    record = await engine.wait_for_final(handle.id, timeout=10)

    assert record.status == RunStatus.COMPLETED
    assert order == [
        "global middleware",
        "task middleware",
        "global on_start",
        "task on_start 21 ordered 1",
        "global on_start_attempt",
        "task on_start_attempt 1",
        "run",
        "task middleware after",
        "global middleware after",
        "global on_success 42",
        "task on_success 42",
        "global on_complete True",
        "task on_complete 42",
    ]


async def test_retried_run_on_start_once_on_start_attempt_every_time(engine, start_worker):
    order: list[str] = []
    tasks.on_start(lambda ctx: order.append(f"global on_start {ctx.attempt.number}"))
    tasks.on_start_attempt(
        lambda ctx: order.append(f"global on_start_attempt {ctx.attempt.number}")
    )
    tasks.on_failure(lambda ctx: order.append(f"global on_failure {ctx.attempt.number}"))

    @task(
        id="retried-hooks",
        on_start=lambda ctx: order.append(f"on_start {ctx.attempt.number}"),
        on_start_attempt=lambda ctx: order.append(f"on_start_attempt {ctx.attempt.number}"),
        on_success=lambda ctx: order.append(f"on_success {ctx.attempt.number}"),
        on_failure=lambda ctx: order.append(f"on_failure {ctx.attempt.number}"),
        on_complete=lambda ctx: order.append(f"on_complete {ctx.attempt.number}"),
    )
    async def retried_hooks(payload, ctx):
        order.append(f"run {ctx.attempt.number}")
        if ctx.attempt.number < 3:
            raise RuntimeError("not yet")
        return "ok"

    await start_worker()
    handle = await retried_hooks.trigger()
    record = await engine.wait_for_final(handle.id, timeout=10)

    assert record.status == RunStatus.COMPLETED
    assert order == [
        "global on_start 1",
        "on_start 1",
        "global on_start_attempt 1",
        "on_start_attempt 1",
        "run 1",
        "global on_start_attempt 2",
        "on_start_attempt 2",
        "run 2",
        "global on_start_attempt 3",
        "on_start_attempt 3",
        "run 3",
        "on_success 3",
        "on_complete 3",
    ]


async def test_on_failure_exactly_once_on_the_final_attempt(engine, start_worker):
    calls: list[tuple[str, int, str]] = []

    def record(name: str):
        return lambda ctx, error: calls.append((name, ctx.attempt.number, str(error)))

    tasks.on_failure(record("global on_failure"))

    @task(
        id="fails-thrice",
        on_failure=record("on_failure"),
        on_complete=record("on_complete"),
    )
    async def fails_thrice(payload, ctx):
        raise RuntimeError(f"attempt {ctx.attempt.number}")

    await start_worker()
    handle = await fails_thrice.trigger()
    record_ = await engine.wait_for_final(handle.id, timeout=10)

    assert record_.status == RunStatus.FAILED
    assert calls == [
        ("global on_failure", 3, "attempt 3"),
        ("on_failure", 3, "attempt 3"),
        ("on_complete", 3, "attempt 3"),
    ]


async def test_on_failure_called_when_catch_error_asks_for_retry_on_last_attempt(
    engine, start_worker
):
    """§15: unlike Trigger.dev, a retry asked for on the last allowed attempt still fails once."""
    failures: list[int] = []
    catches: list[int] = []

    def catch_error(ctx, retry_delay_ms):
        catches.append(ctx.attempt.number)
        return {"retry_delay_ms": 1}

    @task(
        id="catch-retry-last",
        retry={"max_attempts": 2, "min_timeout_ms": 10},
        catch_error=catch_error,
        on_failure=lambda ctx: failures.append(ctx.attempt.number),
    )
    async def catch_retry_last(payload):
        raise RuntimeError("always")

    await start_worker()
    handle = await catch_retry_last.trigger()
    record = await engine.wait_for_final(handle.id, timeout=10)

    assert record.status == RunStatus.FAILED
    assert catches == [1, 2]
    assert failures == [2]
    assert [s for s, _ in await _attempts(engine, handle.id)] == ["FAILED", "FAILED"]


async def test_catch_error_task_hook_first_then_global_first_truthy_wins(engine, start_worker):
    consulted: list[str] = []
    received: dict[str, Any] = {}

    def task_catch(error, retry, retry_delay_ms, retry_at, payload, ctx, task):
        consulted.append("task")
        received.update(
            error=str(error),
            retry_max_attempts=retry.max_attempts,
            retry_delay_ms=retry_delay_ms,
            retry_at=retry_at,
            payload=payload,
            task=task.id,
        )
        return None  # default behaviour: let the next hook decide

    tasks.catch_error(lambda: consulted.append("global 1") or {"skip_retrying": True})
    tasks.catch_error(lambda: consulted.append("global 2") or {"retry_delay_ms": 1})

    @task(
        id="catch-order",
        retry={"max_attempts": 4, "min_timeout_ms": 100, "randomize": False},
        catch_error=task_catch,
    )
    async def catch_order(payload):
        raise RuntimeError("kaput")

    await start_worker()
    handle = await catch_order.trigger({"p": 1})
    record = await engine.wait_for_final(handle.id, timeout=10)

    assert record.status == RunStatus.FAILED
    assert consulted == ["task", "global 1"]
    assert len(await _attempts(engine, handle.id)) == 1
    assert received["error"] == "kaput"
    assert received["retry_max_attempts"] == 4
    assert received["retry_delay_ms"] == 100
    assert isinstance(received["retry_at"], datetime.datetime)
    assert received["payload"] == {"p": 1}
    assert received["task"] == "catch-order"


async def test_catch_error_task_answer_skips_global_hooks(engine, start_worker):
    consulted: list[str] = []
    tasks.catch_error(lambda: consulted.append("global") or {"retry_delay_ms": 1})

    @task(
        id="catch-task-wins",
        retry={"max_attempts": 4, "min_timeout_ms": 10},
        catch_error=lambda: consulted.append("task") or {"skip_retrying": True},
    )
    async def catch_task_wins(payload):
        raise RuntimeError("x")

    await start_worker()
    handle = await catch_task_wins.trigger()
    record = await engine.wait_for_final(handle.id, timeout=10)

    assert record.status == RunStatus.FAILED
    assert consulted == ["task"]
    assert len(await _attempts(engine, handle.id)) == 1


async def test_catch_error_retry_at_is_bounded_by_max_attempts(engine, start_worker):
    attempts_seen: list[int] = []

    def catch_error(ctx):
        soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(milliseconds=50)
        return {"retry_at": soon}

    @task(
        id="catch-retry-at",
        retry={"max_attempts": 3, "min_timeout_ms": 5000},
        catch_error=catch_error,
    )
    async def catch_retry_at(payload, ctx):
        attempts_seen.append(ctx.attempt.number)
        raise RuntimeError("again")

    await start_worker()
    handle = await catch_retry_at.trigger()
    record = await engine.wait_for_final(handle.id, timeout=10)

    assert record.status == RunStatus.FAILED
    # retry_at (50 ms) replaced the 5 s backoff, and max_attempts still stopped it at 3.
    assert attempts_seen == [1, 2, 3]
    attempts = (await engine.retrieve_run(handle.id)).attempts
    gap = (attempts[1].started_at - attempts[0].finished_at).total_seconds() * 1000  # type: ignore[operator]
    # The backoff would leave at least 5000 ms; the bound leaves a loaded host seconds to start
    # the retry on the real clock, as retry_at is the caller's wall time.
    assert gap < 4000, gap


async def test_catch_error_replaces_the_recorded_error(engine, start_worker):
    failures: list[str] = []

    @task(
        id="catch-replace",
        catch_error=lambda: {"error": OtherError("translated"), "skip_retrying": True},
        on_failure=lambda error: failures.append(type(error).__name__),
    )
    async def catch_replace(payload):
        raise KeyError("original")

    await start_worker()
    handle = await catch_replace.trigger()
    await engine.wait_for_final(handle.id, timeout=10)

    run = await runs.retrieve(handle.id)
    assert run.status == RunStatus.FAILED
    assert run.error is not None
    assert (run.error.name, run.error.message) == ("OtherError", "translated")
    assert failures == ["OtherError"]
    assert run.attempt_count == 1


async def test_catch_error_error_alone_keeps_default_retries(engine, start_worker):
    @task(id="catch-replace-retry", catch_error=lambda: {"error": OtherError("wrapped")})
    async def catch_replace_retry(payload):
        raise KeyError("original")

    await start_worker()
    handle = await catch_replace_retry.trigger()
    await engine.wait_for_final(handle.id, timeout=10)

    attempts = await _attempts(engine, handle.id)
    assert [s for s, _ in attempts] == ["FAILED", "FAILED", "FAILED"]
    assert {e["name"] for _, e in attempts if e} == {"OtherError"}
    run = await runs.retrieve(handle.id)
    assert run.error is not None and run.error.name == "OtherError"


async def test_errors_in_on_success_and_on_complete_are_swallowed(engine, start_worker):
    called: list[str] = []

    def bad_global_success():
        called.append("global on_success")
        raise RuntimeError("global on_success broke")

    async def bad_success():
        called.append("on_success")
        raise RuntimeError("on_success broke")

    def bad_complete():
        called.append("on_complete")
        raise RuntimeError("on_complete broke")

    tasks.on_success(bad_global_success)
    tasks.on_complete(lambda: called.append("global on_complete") or 1 / 0)

    @task(id="bad-hooks", on_success=bad_success, on_complete=bad_complete)
    async def bad_hooks(payload):
        return "fine"

    await start_worker()
    handle = await bad_hooks.trigger()
    record = await engine.wait_for_final(handle.id, timeout=10)

    assert record.status == RunStatus.COMPLETED
    assert called == ["global on_success", "on_success", "global on_complete", "on_complete"]
    run = await runs.retrieve(handle.id)
    assert run.output == "fine"
    assert run.attempt_count == 1


async def test_middleware_error_outside_next_is_a_retryable_attempt_failure(engine, start_worker):
    ran: list[int] = []

    async def flaky_mw(ctx, next):
        if ctx.attempt.number == 1:
            raise ConnectionError("db down")
        await next()

    @task(id="mw-fails", middleware=flaky_mw)
    async def mw_fails(payload, ctx):
        ran.append(ctx.attempt.number)
        return "ok"

    await start_worker()
    handle = await mw_fails.trigger()
    record = await engine.wait_for_final(handle.id, timeout=10)

    assert record.status == RunStatus.COMPLETED
    assert ran == [2]
    attempts = await _attempts(engine, handle.id)
    assert [s for s, _ in attempts] == ["FAILED", "COMPLETED"]
    first_error = attempts[0][1]
    assert first_error is not None
    assert first_error["name"] == "TaskMiddlewareError"
    assert first_error["code"] == "TASK_MIDDLEWARE_ERROR"
    assert "db down" in first_error["message"]


async def test_error_inside_next_is_the_task_error_not_a_middleware_error(engine, start_worker):
    async def passthrough(next):
        await next()

    tasks.middleware(passthrough)

    @task(id="mw-passes-error", middleware=passthrough)
    async def mw_passes_error(payload):
        raise LookupError("from run")

    await start_worker()
    handle = await mw_passes_error.trigger(None, max_attempts=1)
    await engine.wait_for_final(handle.id, timeout=10)

    run = await runs.retrieve(handle.id)
    assert run.error is not None
    assert (run.error.name, run.error.message) == ("LookupError", "from run")


async def test_locals_set_in_middleware_are_visible_in_run_and_hooks(engine, start_worker):
    db = locals.create("db")
    seen: dict[str, Any] = {}

    async def db_middleware(ctx, next):
        locals.set(db, {"conn": f"conn-{ctx.run.id}"})
        await next()
        seen["after next"] = locals.get(db)

    def on_start_attempt():
        seen["on_start_attempt"] = locals.get_or_throw(db)

    def on_success():
        seen["on_success"] = locals.get(db)

    def on_complete():
        seen["on_complete"] = locals.get(db)

    @task(
        id="uses-locals",
        middleware=db_middleware,
        on_start_attempt=on_start_attempt,
        on_success=on_success,
        on_complete=on_complete,
    )
    async def uses_locals(payload, ctx):
        value = locals.get_or_throw(db)
        seen["run"] = value
        return value["conn"]

    await start_worker()
    handle = await uses_locals.trigger()
    await engine.wait_for_final(handle.id, timeout=10)

    expected = {"conn": f"conn-{handle.id}"}
    assert (await runs.retrieve(handle.id)).output == expected["conn"]
    assert seen == {
        "on_start_attempt": expected,
        "run": expected,
        "after next": expected,
        "on_success": expected,
        "on_complete": expected,
    }


async def test_locals_do_not_leak_between_attempts(engine, start_worker):
    counter = locals.create("counter")
    seen: list[Any] = []

    @task(id="locals-per-attempt")
    async def locals_per_attempt(payload, ctx):
        seen.append(locals.get(counter))
        locals.set(counter, ctx.attempt.number)
        if ctx.attempt.number < 2:
            raise RuntimeError("retry")
        return "ok"

    await start_worker()
    handle = await locals_per_attempt.trigger()
    await engine.wait_for_final(handle.id, timeout=10)
    assert seen == [None, None]


async def test_sync_task_runs_in_a_thread_with_metadata_and_logger(engine, start_worker):
    main_thread = threading.get_ident()

    @task(id="sync-task")
    def sync_task(payload, ctx):
        metadata.set("thread", "worker").increment("calls")
        logger.info("from a thread", run=ctx.run.id)
        return {"same_thread": threading.get_ident() == main_thread, "n": payload["n"] + 1}

    await start_worker()
    handle = await sync_task.trigger({"n": 1})
    record = await engine.wait_for_final(handle.id, timeout=10)

    assert record.status == RunStatus.COMPLETED
    run = await runs.retrieve(handle.id)
    assert run.output == {"same_thread": False, "n": 2}
    assert run.metadata == {"thread": "worker", "calls": 1}
    events = await engine.run_event_records(handle.id)
    logs = [e for e in events if e.kind == "log"]
    assert [(e.level, e.message) for e in logs] == [("info", "from a thread")]
    assert json.loads(logs[0].attributes or "{}") == {"run": handle.id}


async def test_task_taking_only_payload(engine, start_worker):
    @task(id="payload-only")
    async def payload_only(payload):
        return sorted(payload)

    @task(id="payload-only-sync")
    def payload_only_sync(payload):
        return len(payload)

    await start_worker()
    first = await payload_only.trigger(["b", "a"])
    second = await payload_only_sync.trigger("abc")
    assert (await engine.wait_for_final(first.id, timeout=10)).status == RunStatus.COMPLETED
    assert (await engine.wait_for_final(second.id, timeout=10)).status == RunStatus.COMPLETED
    assert (await runs.retrieve(first.id)).output == ["a", "b"]
    assert (await runs.retrieve(second.id)).output == 3


async def test_catch_error_retry_options_recompute_the_delay(engine, start_worker):
    raised_at: list[datetime.datetime] = []

    @task(
        id="catch-retry-options",
        retry={"max_attempts": 2, "min_timeout_ms": 5000},
        catch_error=lambda: {"retry": {"min_timeout_ms": 250, "randomize": False}},
    )
    async def catch_retry_options(payload, ctx):
        if ctx.attempt.number == 1:
            raised_at.append(datetime.datetime.now(datetime.UTC))
            raise RuntimeError("once")
        return "ok"

    await start_worker()
    handle = await catch_retry_options.trigger()
    record = await engine.wait_for_final(handle.id, timeout=10)
    assert record.status == RunStatus.COMPLETED

    attempts = (await engine.retrieve_run(handle.id)).attempts
    # 250 ms from catch_error's options, not the task's 5 s. The delay runs from the retry
    # decision, which comes after the raise, so the second attempt starts at least 250 ms after
    # the raise (timestamps are stored in whole milliseconds) however late the finisher writes
    # the first attempt's end.
    gap = (attempts[1].started_at - raised_at[0]).total_seconds() * 1000
    assert 249 <= gap < 2000, gap


async def test_init_and_cleanup_hooks_run_around_every_attempt(engine, start_worker):
    """init (global, then task; results merged, the task's keys winning) before on_start;
    cleanup (global, then task) after the function whether it failed or not."""
    order: list[str] = []
    seen_init: list[Any] = []

    tasks.init(lambda ctx: order.append(f"global init {ctx.attempt.number}") or {"db": "global"})
    tasks.cleanup(lambda: order.append("global cleanup"))

    def task_init(payload):
        order.append("task init")
        return {"db": "task", "cache": payload["n"]}

    @task(
        id="init-cleanup",
        retry={"max_attempts": 2, "min_timeout_ms": 10},
        init=task_init,
        cleanup=lambda init: order.append(f"task cleanup {init['db']}"),
        on_start_attempt=lambda init: seen_init.append(dict(init)),
        on_success=lambda init: seen_init.append(dict(init)),
    )
    async def initialised(payload, ctx):
        order.append(f"run {ctx.attempt.number}")
        if ctx.attempt.number == 1:
            raise RuntimeError("first attempt fails")
        return "ok"

    await start_worker()
    handle = await initialised.trigger({"n": 3})
    record = await engine.wait_for_final(handle.id, timeout=10)
    assert record.status == RunStatus.COMPLETED
    assert order == [
        "global init 1",
        "task init",
        "run 1",
        "global cleanup",
        "task cleanup task",
        "global init 2",
        "task init",
        "run 2",
        "global cleanup",
        "task cleanup task",
    ]
    assert seen_init == [{"db": "task", "cache": 3}] * 3


async def test_an_error_in_cleanup_fails_the_attempt(engine, start_worker):
    @task(
        id="bad-cleanup",
        retry={"max_attempts": 1},
        cleanup=lambda: (_ for _ in ()).throw(OSError("disk gone")),
    )
    async def bad_cleanup(payload):
        return "fine"

    await start_worker()
    handle = await bad_cleanup.trigger({})
    record = await engine.wait_for_final(handle.id, timeout=10)
    assert record.status == RunStatus.FAILED
    assert json.loads(record.error or "{}")["name"] == "OSError"


async def test_ctx_carries_the_fields_trigger_dev_tasks_read(engine, start_worker):
    seen: dict[str, Any] = {}

    @task(id="ctx-fields", machine="medium-1x")
    async def ctx_fields(payload, ctx):
        seen.update(
            organization=ctx.organization.slug,
            project=(ctx.project.ref.startswith("proj_"), ctx.project.slug),
            environment=(ctx.environment.id, ctx.environment.slug, ctx.environment.type),
            queue=(ctx.queue.id, ctx.queue.name),
            run=(ctx.run.priority, ctx.run.version, ctx.run.id),
            machine=(ctx.machine.name, ctx.machine.cents_per_ms > 0),
            batch=ctx.batch.id if ctx.batch else None,
        )

    worker = await start_worker()
    handle = await ctx_fields.trigger({}, priority=2.5)
    await engine.wait_for_final(handle.id, timeout=10)
    assert seen["organization"] == "local"
    assert seen["project"][0] is True
    assert seen["environment"] == ("env_development", "development", "DEVELOPMENT")
    assert seen["queue"] == ("queue_task-ctx-fields", "task/ctx-fields")
    # The run locked to the version of the worker that claimed it (a hash of the task files).
    assert seen["run"] == (2.5, worker.version, handle.id)
    assert worker.version is not None and len(worker.version) == 12
    assert seen["machine"] == ("medium-1x", True)
    assert seen["batch"] is None

    batch = await ctx_fields.batch_trigger([{}])
    await engine.wait_for_final(batch.runs[0], timeout=10)
    assert seen["batch"] == batch.batch_id
