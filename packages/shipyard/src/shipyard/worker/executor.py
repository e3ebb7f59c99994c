"""One attempt of one run, start to finish, in Trigger.dev's order (``docs/runs.md``).

1. Parse the payload (schema_task: validate; a failure ends the run FAILED, no hooks).
2. Middleware: global, then the task's; each awaits ``next()``.
3. Inside: ``init`` (global, then the task's; results merged, the task's keys winning),
   ``on_start`` (attempt 1 only), ``on_start_attempt``, the task function, and ``cleanup``
   whatever the function did (an error in any of them fails the attempt).
4. On error: ``catch_error`` (task first, then global; the first non-None answer wins), then
   the engine's retry decision; either a retry, or ``on_failure`` and ``on_complete`` — exactly
   once, on the run's last attempt, even when ``catch_error`` asked for a retry that
   ``max_attempts`` does not allow. A ``catch_error`` that raises, or answers with an unknown
   key, fails the run through this same path with that error.
5. On success: serialise the output, then ``on_success`` and ``on_complete``.

``max_duration`` counts execution on the engine's clock and is paused while the run waits at a
durable wait. Errors in ``on_success``, ``on_failure`` and ``on_complete`` are logged and ignored.
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

from shipyard.engine.definitions import TaskDefinition
from shipyard.engine.engine import Engine
from shipyard.engine.hooks import call_hook, call_hooks_quietly
from shipyard.engine.retries import (
    decide,
    parse_catch_answer,
    retries_disabled,
    retry_options,
    serialize_error,
)
from shipyard.engine.scope import RunScope, enter_scope, exit_scope
from shipyard.engine.waitpoints import OUTPUT_MAX_BYTES
from shipyard.errors import (
    MaxDurationExceededError,
    PayloadTooLargeError,
    ShipyardError,
    TaskMiddlewareError,
    TaskOutputError,
    TaskPayloadParsedError,
)
from shipyard.jsonutil import byte_size, dumps, loads
from shipyard.models.context import Context
from shipyard.records import RunRecord
from shipyard.retry_policy import RetryOptions
from shipyard.statuses import RunStatus

log = logging.getLogger("shipyard.worker")
ON_CANCEL_SECONDS = 30.0

__all__ = ["AttemptControl", "AttemptOutcome", "pause_deadline", "resume_deadline", "run_attempt"]


@dataclass(slots=True)
class AttemptControl:
    """Why the worker interrupted an attempt: ``canceled``, ``released``, ``lost`` or
    ``timed_out`` (its max_duration ran out)."""

    reason: str | None = None


@dataclass(slots=True)
class AttemptOutcome:
    """What the attempt ended as. ``status`` is None when nothing must be written."""

    status: str | None
    attempt_status: str
    output: str | None = None
    error: str | None = None
    retry_at: int | None = None


class _Deadline:
    """max_duration on the engine's clock: a timer that cancels the attempt when it fires."""

    def __init__(self, scope: RunScope, control: AttemptControl) -> None:
        self.scope = scope
        self.control = control
        # Looked up when a timer is set (inside the attempt's task, as start() always is):
        # most runs have no max_duration, and the lookup was ~4 % of a drain's worker CPU.
        self.task: asyncio.Task[Any] | None = None

    def start(self) -> None:
        scope = self.scope
        if scope.max_duration_left is None:
            return
        if self.task is None:
            self.task = asyncio.current_task()
        clock = scope.engine.clock
        scope.deadline_started = clock.now_ms()
        scope.deadline = clock.call_later(scope.max_duration_left, self._fire)

    def _fire(self) -> None:
        if self.control.reason is None and self.task is not None and not self.task.done():
            self.scope.timed_out = True
            self.control.reason = "timed_out"
            self.task.cancel()

    def stop(self) -> None:
        if self.scope.deadline is not None:
            self.scope.deadline.cancel()
            self.scope.deadline = None


def pause_deadline(scope: RunScope) -> None:
    """Stop counting max_duration (the run is parked at a durable wait)."""
    if scope.deadline is None or scope.max_duration_left is None:
        return
    scope.deadline.cancel()
    scope.deadline = None
    used = (scope.engine.clock.now_ms() - scope.deadline_started) / 1000
    scope.max_duration_left = max(0.0, scope.max_duration_left - used)


def resume_deadline(scope: RunScope) -> None:
    """Count max_duration again from what was left (the run resumed)."""
    restart = scope.restart_deadline
    if restart is not None and scope.max_duration_left is not None and scope.deadline is None:
        restart()


async def run_attempt(
    engine: Engine,
    task: TaskDefinition,
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


def _global(engine: Engine, name: str) -> list[Callable[..., Any]]:
    return engine.definitions.hooks.get(name)


def _both(engine: Engine, task: TaskDefinition, name: str) -> list[Callable[..., Any]]:
    """Global hooks of that name, then the task's own."""
    own = task.hook(name)
    return [*_global(engine, name), *([own] if own is not None else [])]


async def _attempt(
    engine: Engine,
    task: TaskDefinition,
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

    base: dict[str, Any] = {"payload": payload, "ctx": ctx, "task": task, "init": None}
    scope.hook_args = base

    async def inner() -> Any:
        merged: dict[str, Any] = {}
        for hook in _both(engine, task, "init"):
            result = await call_hook(hook, **base)
            if isinstance(result, Mapping):
                merged.update(result)
        base["init"] = merged or None
        if ctx.attempt.number == 1:
            for hook in _both(engine, task, "on_start"):
                await call_hook(hook, **base)
        for hook in _both(engine, task, "on_start_attempt"):
            await call_hook(hook, **base)
        try:
            return await _invoke(task, payload, ctx, threads)
        finally:
            for hook in _both(engine, task, "cleanup"):
                await call_hook(hook, **base)

    chain = _middleware_chain([*_global(engine, "middleware"), *task.middleware], inner, base)
    max_duration = ctx.run.max_duration
    scope.max_duration_left = float(max_duration) if max_duration else None
    deadline = _Deadline(scope, control)
    scope.restart_deadline = deadline.start
    deadline.start()
    try:
        output = await chain()
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if control.reason is None:
            raise
        if current is not None:
            current.uncancel()
        if control.reason == "timed_out":
            return await _timed_out(engine, task, run, base, max_duration)
        if control.reason != "canceled":
            return AttemptOutcome(status=None, attempt_status="RELEASED")
        await _on_cancel(engine, task, base, run.id)
        await call_hooks_quietly(
            _both(engine, task, "on_complete"),
            "on_complete",
            run.id,
            **_public(base),
            result={"ok": False, "status": "CANCELED"},
        )
        return AttemptOutcome(status=RunStatus.CANCELED, attempt_status="CANCELED")
    except Exception as exc:
        deadline.stop()
        return await _handle_error(engine, task, run, base, exc)
    finally:
        deadline.stop()
        scope.restart_deadline = None

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
    # Most tasks have neither hook: no argument copies or result dict for them.
    if on_success := _both(engine, task, "on_success"):
        await call_hooks_quietly(on_success, "on_success", run.id, **_public(base), output=output)
    if on_complete := _both(engine, task, "on_complete"):
        await call_hooks_quietly(
            on_complete,
            "on_complete",
            run.id,
            **_public(base),
            output=output,
            result={"ok": True, "output": output},
        )
    return AttemptOutcome(
        status=RunStatus.COMPLETED, attempt_status="COMPLETED", output=output_text
    )


def _public(base: Mapping[str, Any]) -> dict[str, Any]:
    """The hook arguments (a copy: hooks must not see later additions)."""
    return dict(base)


async def _timed_out(
    engine: Engine,
    task: TaskDefinition,
    run: RunRecord,
    base: dict[str, Any],
    max_duration: int | None,
) -> AttemptOutcome:
    timed_out = MaxDurationExceededError(
        f"Run {run.id} exceeded its max_duration of {max_duration} s.",
        run_id=run.id,
        max_duration=max_duration,
    )
    await call_hooks_quietly(
        _both(engine, task, "on_complete"),
        "on_complete",
        run.id,
        **_public(base),
        error=timed_out,
        result={"ok": False, "error": timed_out},
    )
    return _failed(timed_out, RunStatus.TIMED_OUT)


async def _invoke(task: TaskDefinition, payload: Any, ctx: Context, threads: Executor) -> Any:
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
            await call_hook(mw, **_public(base), next=next_, call_next=next_)
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
    engine: Engine,
    task: TaskDefinition,
    run: RunRecord,
    base: dict[str, Any],
    error: BaseException,
) -> AttemptOutcome:
    settings = engine.settings
    attempt = base["ctx"].attempt.number
    options = retry_options(settings, task)
    max_attempts = run.max_attempts or options.max_attempts
    disabled = retries_disabled(settings)
    if disabled:
        max_attempts = 1
    default = decide(error=error, attempt=attempt, max_attempts=max_attempts, options=options)
    override: int | None = None
    skip = False
    recorded = error
    if not disabled:
        try:
            answer = await _catch_error(engine, task, base, error, options, default.delay_ms)
            if answer is not None:
                parsed = parse_catch_answer(answer, error, attempt, engine.now())
                skip, override, recorded = parsed.skip_retrying, parsed.delay_ms, parsed.error
        except Exception as hook_error:
            # A catch_error that raises (or answers nonsense) fails the run with its error,
            # through the normal failure path: on_failure once, then on_complete.
            log.warning("%s: catch_error failed: %s", run.id, hook_error)
            skip, override, recorded = True, None, hook_error
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
            retry_at=engine.now() + decision.delay_ms,
        )
    await call_hooks_quietly(
        _both(engine, task, "on_failure"), "on_failure", run.id, **_public(base), error=recorded
    )
    await call_hooks_quietly(
        _both(engine, task, "on_complete"),
        "on_complete",
        run.id,
        **_public(base),
        error=recorded,
        result={"ok": False, "error": recorded},
    )
    return _failed(recorded, RunStatus.FAILED)


async def _catch_error(
    engine: Engine,
    task: TaskDefinition,
    base: dict[str, Any],
    error: BaseException,
    options: RetryOptions,
    delay_ms: int | None,
) -> Any:
    retry_at = (
        None
        if delay_ms is None
        else datetime.datetime.fromtimestamp((engine.now() + delay_ms) / 1000, datetime.UTC)
    )
    own = task.hook("catch_error")
    for hook in [*([own] if own is not None else []), *_global(engine, "catch_error")]:
        answer = await call_hook(
            hook,
            **_public(base),
            error=error,
            retry=options,
            retry_delay_ms=delay_ms,
            retry_at=retry_at,
        )
        if answer:
            return answer
    return None


async def _on_cancel(
    engine: Engine, task: TaskDefinition, base: dict[str, Any], run_id: str
) -> None:
    hooks = _both(engine, task, "on_cancel")
    if not hooks:
        return
    try:
        async with asyncio.timeout(ON_CANCEL_SECONDS):
            await call_hooks_quietly(hooks, "on_cancel", run_id, **_public(base))
    except TimeoutError:
        log.warning("on_cancel hooks of %s ran past %.0f s", run_id, ON_CANCEL_SECONDS)


def _failed(error: BaseException, status: str) -> AttemptOutcome:
    return AttemptOutcome(
        status=status,
        attempt_status="FAILED",
        error=dumps(serialize_error(error)),
    )
