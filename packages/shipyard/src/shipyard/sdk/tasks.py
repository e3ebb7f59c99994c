"""The ``tasks`` namespace: trigger by id, and hooks that apply to every task.

Example::

    from shipyard import tasks

    tasks.on_failure(lambda payload, error, ctx: alert(ctx.run.id, error))
    handle = await tasks.trigger("send-welcome-email", {"user_id": "u_1"})
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from shipyard.sdk.handles import BatchHandle, BatchResult, Result, RunHandle

Hook = Callable[..., Any]

HOOK_NAMES = (
    "on_start",
    "on_start_attempt",
    "on_success",
    "on_failure",
    "on_complete",
    "on_cancel",
    "on_wait",
    "on_resume",
    "catch_error",
    "middleware",
)


class GlobalHooks:
    """Hooks registered for every task, in registration order (a registry)."""

    def __init__(self) -> None:
        self._hooks: dict[str, list[Hook]] = {name: [] for name in HOOK_NAMES}

    def add(self, name: str, fn: Hook) -> Hook:
        """Register ``fn`` as a global ``name`` hook; returns ``fn`` (usable as a decorator)."""
        self._hooks[name].append(fn)
        return fn

    def get(self, name: str) -> list[Hook]:
        """The global hooks of that name, in registration order."""
        return list(self._hooks[name])

    def clear(self) -> None:
        """Forget every global hook (tests)."""
        for hooks in self._hooks.values():
            hooks.clear()


global_hooks = GlobalHooks()


class _Tasks:
    """Trigger tasks by id, and register global hooks."""

    async def trigger(self, task_id: str, payload: Any = None, **options: Any) -> RunHandle:
        """Trigger a task by id (no client-side schema validation)."""
        from shipyard.engine.registry import get_engine

        return await get_engine().trigger(task_id, payload, options)

    async def batch_trigger(
        self, task_id: str, items: Sequence[Any], **options: Any
    ) -> BatchHandle:
        """Trigger many runs of one task by id."""
        from shipyard.engine.registry import get_engine
        from shipyard.sdk.task import _batch_entry

        return await get_engine().batch_trigger([_batch_entry(task_id, i) for i in items], options)

    async def trigger_and_wait(self, task_id: str, payload: Any = None, **options: Any) -> Result:
        """Trigger a task by id and wait for its result; only inside a run."""
        from shipyard.engine.registry import get_engine

        return await get_engine().trigger_and_wait(task_id, payload, options)

    async def batch_trigger_and_wait(
        self, task_id: str, items: Sequence[Any], **options: Any
    ) -> BatchResult:
        """Trigger many runs of one task by id and wait for all; only inside a run."""
        from shipyard.engine.registry import get_engine
        from shipyard.sdk.task import _batch_entry

        return await get_engine().batch_trigger_and_wait(
            [_batch_entry(task_id, i) for i in items], options
        )

    def on_start(self, fn: Hook) -> Hook:
        """Run ``fn`` before the first attempt of every task (before the task's own)."""
        return global_hooks.add("on_start", fn)

    def on_start_attempt(self, fn: Hook) -> Hook:
        """Run ``fn`` before every attempt of every task."""
        return global_hooks.add("on_start_attempt", fn)

    def on_success(self, fn: Hook) -> Hook:
        """Run ``fn`` when any run succeeds (errors in it are logged, not raised)."""
        return global_hooks.add("on_success", fn)

    def on_failure(self, fn: Hook) -> Hook:
        """Run ``fn`` once when any run ends FAILED."""
        return global_hooks.add("on_failure", fn)

    def on_complete(self, fn: Hook) -> Hook:
        """Run ``fn`` when any executing run reaches a final status."""
        return global_hooks.add("on_complete", fn)

    def on_cancel(self, fn: Hook) -> Hook:
        """Run ``fn`` when an executing run is canceled."""
        return global_hooks.add("on_cancel", fn)

    def on_wait(self, fn: Hook) -> Hook:
        """Run ``fn(wait=...)`` before any run suspends at a durable wait."""
        return global_hooks.add("on_wait", fn)

    def on_resume(self, fn: Hook) -> Hook:
        """Run ``fn(wait=...)`` when any run continues after a durable wait."""
        return global_hooks.add("on_resume", fn)

    def catch_error(self, fn: Hook) -> Hook:
        """Consult ``fn`` (after the task's own) when an attempt fails."""
        return global_hooks.add("catch_error", fn)

    def middleware(self, fn: Hook) -> Hook:
        """Wrap every attempt in ``fn(payload, ctx, next)``; it must ``await next()``."""
        return global_hooks.add("middleware", fn)


tasks = _Tasks()
