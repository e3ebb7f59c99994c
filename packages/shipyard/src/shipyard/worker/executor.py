"""One attempt of one run, start to finish, in the order of SEMANTICS §1.5.

1. Parse the payload (schema_task: validate; a failure ends the run FAILED, no hooks).
2. Middleware: global, then the task's; each awaits ``next()``.
3. Inside: ``on_start`` (attempt 1 only), ``on_start_attempt``, then the task function.
4. On error: ``catch_error`` (task first, then global; the first non-None answer wins), then
   either a retry, or ``on_failure`` and ``on_complete`` — exactly once, on the run's last
   attempt, even when ``catch_error`` asked for a retry that ``max_attempts`` does not allow.
5. On success: serialise the output, then ``on_success`` and ``on_complete``.

Errors in ``on_success``, ``on_failure`` and ``on_complete`` are logged and ignored.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime
import logging
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from shipyard.engine.engine import OUTPUT_MAX_BYTES, Engine
from shipyard.engine.retries import decide, serialize_error
from shipyard.engine.runs import RunStatus
from shipyard.errors import (
    MaxDurationExceededError,
    PayloadTooLargeError,
    ShipyardError,
    TaskPayloadParsedError,
)
from shipyard.jsonutil import byte_size, dumps, loads
from shipyard.records import RunRecord
from shipyard.retry_policy import RetryOptions
from shipyard.sdk.context import (
    AttemptInfo,
    Context,
    EnvironmentInfo,
    QueueInfo,
    RunInfo,
    RunScope,
    TaskInfo,
    enter_scope,
    exit_scope,
    machine_info,
)
from shipyard.sdk.task import Task
from shipyard.sdk.tasks import global_hooks
from shipyard.worker.hooks import call_hook, call_hooks_quietly

log = logging.getLogger("shipyard.worker")
ON_CANCEL_SECONDS = 30.0


class TaskMiddlewareError(ShipyardError):
    """Middleware raised outside ``next()``: the attempt fails (retryable)."""

    code = "TASK_MIDDLEWARE_ERROR"


class TaskOutputError(ShipyardError):
    """The task's return value could not be stored (not JSON, or over 10 MiB)."""

    code = "TASK_OUTPUT_ERROR"


@dataclass(slots=True)
class AttemptControl:
    """Why the worker interrupted an attempt: ``canceled``, ``released`` or ``lost``."""

    reason: str | None = None


@dataclass(slots=True)
class AttemptOutcome:
    """What the attempt ended as. ``status`` is None when nothing must be written."""

    status: str | None
    attempt_status: str
    output: str | None = None
    error: str | None = None
    retry_at: int | None = None


def build_context(
    engine: Engine, task: Task, run: RunRecord, now: int, *, is_replay: bool = False
) -> Context:
    """The ``ctx`` snapshot for this attempt (``is_replay``: resumed by replay)."""
    env = engine.environment
    env_type = env.split("/", 1)[0].upper()
    return Context(
        run=RunInfo(
            id=run.id,
            tags=tuple(loads(run.tags)),
            is_test=bool(run.is_test),
            is_replay=is_replay,
            created_at=run.created_at,
            started_at=run.started_at,
            idempotency_key=run.idempotency_key,
            max_attempts=run.max_attempts,
            max_duration=run.max_duration_s or task.max_duration or engine.settings.max_duration,
            parent_id=run.parent_run_id,
            root_id=run.root_run_id,
            depth=run.depth,
            batch_id=run.batch_id,
        ),
        attempt=AttemptInfo(number=run.attempt_number, started_at=now),
        task=TaskInfo(id=task.id, file_path=task.file_path),
        environment=EnvironmentInfo(slug=env, type=env_type),
        machine=machine_info(run.machine or task.machine),
        queue=QueueInfo(name=run.queue),
    )


def retry_options(engine: Engine, task: Task) -> RetryOptions:
    """The task's retry options, or the configured default (replaced wholesale)."""
    if task.retry is not None:
        return task.retry
    default = RetryOptions.from_value(engine.settings.retries_default)
    assert default is not None
    return default


def retries_disabled(engine: Engine) -> bool:
    """Development with retries turned off."""
    return engine.environment == "development" and not engine.settings.retries_enabled_in_dev


async def run_attempt(
    engine: Engine,
    task: Task,
    run: RunRecord,
    scope: RunScope,
    control: AttemptControl,
    threads: Executor,
) -> AttemptOutcome:
    """Execute one attempt inside ``scope`` and say how it ended."""
    token = enter_scope(scope)
    try:
        return await _attempt(engine, task, run, scope, control, threads)
    finally:
        exit_scope(token)


async def _attempt(
    engine: Engine,
    task: Task,
    run: RunRecord,
    scope: RunScope,
    control: AttemptControl,
    threads: Executor,
) -> AttemptOutcome:
    ctx = scope.ctx
    raw_payload = loads(run.payload)
    try:
        payload = task.validate_payload(raw_payload)
    except PydanticValidationError as exc:
        error = TaskPayloadParsedError(
            f"Payload of run {run.id} failed {task.schema.__name__ if task.schema else ''} "
            f"validation: {exc}",
            run_id=run.id,
            task_id=task.id,
        )
        return _failed(error, RunStatus.FAILED)

    base: dict[str, Any] = {"payload": payload, "ctx": ctx, "task": task}
    scope.hook_args = base

    async def inner() -> Any:
        if ctx.attempt.number == 1:
            for hook in [*global_hooks.get("on_start"), *_one(task.on_start)]:
                await call_hook(hook, **base)
        for hook in [*global_hooks.get("on_start_attempt"), *_one(task.on_start_attempt)]:
            await call_hook(hook, **base)
        return await _invoke(task, payload, ctx, threads)

    chain = _middleware_chain([*global_hooks.get("middleware"), *task.middleware], inner, base)
    max_duration = ctx.run.max_duration
    deadline = asyncio.timeout(max_duration) if max_duration else None
    scope.deadline = deadline  # paused while the run waits (worker._Driver.park)
    try:
        if deadline is not None:
            async with deadline:
                output = await chain()
        else:
            output = await chain()
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if control.reason is None:
            raise
        if current is not None:
            current.uncancel()
        if control.reason != "canceled":
            return AttemptOutcome(status=None, attempt_status="RELEASED")
        await _on_cancel(task, base, run.id)
        await call_hooks_quietly(
            [*global_hooks.get("on_complete"), *_one(task.on_complete)],
            "on_complete",
            run.id,
            **base,
            result={"ok": False, "status": "CANCELED"},
        )
        return AttemptOutcome(status=RunStatus.CANCELED, attempt_status="CANCELED")
    except TimeoutError as exc:
        if deadline is None or not deadline.expired():
            return await _handle_error(engine, task, run, base, exc)
        timed_out = MaxDurationExceededError(
            f"Run {run.id} exceeded its max_duration of {max_duration} s.",
            run_id=run.id,
            max_duration=max_duration,
        )
        await call_hooks_quietly(
            [*global_hooks.get("on_complete"), *_one(task.on_complete)],
            "on_complete",
            run.id,
            **base,
            error=timed_out,
            result={"ok": False, "error": timed_out},
        )
        return _failed(timed_out, RunStatus.TIMED_OUT)
    except Exception as exc:
        return await _handle_error(engine, task, run, base, exc)

    try:
        output_text = dumps(output, what="Output")
        size = byte_size(output_text)
        if size > OUTPUT_MAX_BYTES:
            raise PayloadTooLargeError(
                f"Output is {size:,} bytes; the limit is {OUTPUT_MAX_BYTES:,} bytes (10 MiB).",
                limit=OUTPUT_MAX_BYTES,
                size=size,
            )
    except ShipyardError as exc:
        return await _handle_error(
            engine, task, run, base, TaskOutputError(str(exc), run_id=run.id, task_id=task.id)
        )
    await call_hooks_quietly(
        [*global_hooks.get("on_success"), *_one(task.on_success)],
        "on_success",
        run.id,
        **base,
        output=output,
    )
    await call_hooks_quietly(
        [*global_hooks.get("on_complete"), *_one(task.on_complete)],
        "on_complete",
        run.id,
        **base,
        output=output,
        result={"ok": True, "output": output},
    )
    return AttemptOutcome(
        status=RunStatus.COMPLETED, attempt_status="COMPLETED", output=output_text
    )


async def _invoke(task: Task, payload: Any, ctx: Context, threads: Executor) -> Any:
    args = (payload, ctx) if task.takes_ctx else (payload,)
    if task.is_async:
        return await task.fn(*args)
    loop = asyncio.get_running_loop()
    # copy_context carries the run scope into the thread, so metadata/logger work there.
    context = contextvars.copy_context()
    return await loop.run_in_executor(threads, lambda: context.run(task.fn, *args))


def _middleware_chain(
    middleware: list[Callable[..., Any]],
    inner: Callable[[], Awaitable[Any]],
    base: Mapping[str, Any],
) -> Callable[[], Awaitable[Any]]:
    call: Callable[[], Awaitable[Any]] = inner
    for mw in reversed(middleware):
        call = _wrap(mw, call, base)
    return call


class _InnerError(Exception):
    """Carries an error raised inside ``next()`` through the middleware unchanged."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _wrap(
    mw: Callable[..., Any], nxt: Callable[[], Awaitable[Any]], base: Mapping[str, Any]
) -> Callable[[], Awaitable[Any]]:
    async def call() -> Any:
        box: dict[str, Any] = {}

        async def next_() -> Any:
            try:
                box["value"] = await nxt()
            except Exception as exc:
                box["error"] = exc
                raise
            return box["value"]

        try:
            await call_hook(mw, **base, next=next_, call_next=next_)
        except Exception as exc:
            if "error" in box and exc is box["error"]:
                raise
            raise TaskMiddlewareError(
                f"Middleware {getattr(mw, '__qualname__', mw)} failed: {exc}"
            ) from exc
        if "error" in box:
            raise box["error"]
        if "value" not in box:
            raise TaskMiddlewareError(
                f"Middleware {getattr(mw, '__qualname__', mw)} did not await next()."
            )
        return box["value"]

    return call


async def _handle_error(
    engine: Engine, task: Task, run: RunRecord, base: dict[str, Any], error: BaseException
) -> AttemptOutcome:
    attempt = base["ctx"].attempt.number
    options = retry_options(engine, task)
    max_attempts = run.max_attempts or options.max_attempts
    if retries_disabled(engine):
        max_attempts = 1
    default = decide(error=error, attempt=attempt, max_attempts=max_attempts, options=options)
    override: int | None = None
    skip = False
    recorded = error
    if not retries_disabled(engine):
        answer = await _catch_error(task, base, error, options, default.delay_ms)
        if answer is not None:
            skip, override, recorded = _apply_catch_answer(
                answer, error, attempt, options, engine.clock()
            )
    decision = decide(
        error=error,
        attempt=attempt,
        max_attempts=max_attempts,
        options=options,
        override_delay_ms=override,
        skip_retrying=skip,
    )
    if decision.retry:
        assert decision.delay_ms is not None
        log.info(
            "%s %s attempt %d failed (%s: %s); retrying in %d ms",
            run.id,
            task.id,
            attempt,
            type(recorded).__name__,
            recorded,
            decision.delay_ms,
        )
        return AttemptOutcome(
            status=RunStatus.QUEUED,
            attempt_status="FAILED",
            error=dumps(serialize_error(recorded)),
            retry_at=engine.clock() + decision.delay_ms,
        )
    await call_hooks_quietly(
        [*global_hooks.get("on_failure"), *_one(task.on_failure)],
        "on_failure",
        run.id,
        **base,
        error=recorded,
    )
    await call_hooks_quietly(
        [*global_hooks.get("on_complete"), *_one(task.on_complete)],
        "on_complete",
        run.id,
        **base,
        error=recorded,
        result={"ok": False, "error": recorded},
    )
    return _failed(recorded, RunStatus.FAILED)


async def _catch_error(
    task: Task,
    base: dict[str, Any],
    error: BaseException,
    options: RetryOptions,
    delay_ms: int | None,
) -> Any:
    retry_at = (
        None
        if delay_ms is None
        else datetime.datetime.now(datetime.UTC) + datetime.timedelta(milliseconds=delay_ms)
    )
    for hook in [*_one(task.catch_error), *global_hooks.get("catch_error")]:
        answer = await call_hook(
            hook,
            **base,
            error=error,
            retry=options,
            retry_delay_ms=delay_ms,
            retry_at=retry_at,
        )
        if answer:
            return answer
    return None


def _apply_catch_answer(
    answer: Any, error: BaseException, attempt: int, options: RetryOptions, now_ms: int
) -> tuple[bool, int | None, BaseException]:
    from shipyard.retry_policy import backoff_delay_ms

    if not isinstance(answer, Mapping):
        return False, None, error
    recorded = answer.get("error", error)
    if not isinstance(recorded, BaseException):
        recorded = Exception(str(recorded))
    if answer.get("skip_retrying"):
        return True, None, recorded
    if (retry_at := answer.get("retry_at")) is not None:
        if isinstance(retry_at, datetime.datetime):
            if retry_at.tzinfo is None:
                retry_at = retry_at.replace(tzinfo=datetime.UTC)
            return False, int(retry_at.timestamp() * 1000) - now_ms, recorded
        return False, int(retry_at) - now_ms, recorded
    if (delay := answer.get("retry_delay_ms")) is not None:
        return False, int(delay), recorded
    if (retry := answer.get("retry")) is not None:
        custom = RetryOptions.from_value(retry)
        assert custom is not None
        custom_delay = backoff_delay_ms(custom, attempt)
        if custom_delay is None:
            return True, None, recorded
        return False, custom_delay, recorded
    return False, None, recorded


async def _on_cancel(task: Task, base: dict[str, Any], run_id: str) -> None:
    hooks = [*global_hooks.get("on_cancel"), *_one(task.on_cancel)]
    if not hooks:
        return
    try:
        async with asyncio.timeout(ON_CANCEL_SECONDS):
            await call_hooks_quietly(hooks, "on_cancel", run_id, **base)
    except TimeoutError:
        log.warning("on_cancel hooks of %s ran past %.0f s", run_id, ON_CANCEL_SECONDS)


def _failed(error: BaseException, status: str) -> AttemptOutcome:
    return AttemptOutcome(
        status=status,
        attempt_status="FAILED",
        error=dumps(serialize_error(error)),
    )


def _one(hook: Callable[..., Any] | None) -> list[Callable[..., Any]]:
    return [hook] if hook is not None else []
