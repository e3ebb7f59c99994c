"""The ``tasks`` namespace: trigger by id, and hooks that apply to every task.

Example::

    from shipyard import tasks

    tasks.on_failure(lambda payload, error, ctx: alert(ctx.run.id, error))
    handle = await tasks.trigger("send-welcome-email", {"user_id": "u_1"})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from typing_extensions import Unpack

from shipyard.engine.definitions import default_definitions
from shipyard.models.handles import BatchHandle, BatchResult, Result, RunHandle
from shipyard.models.options import TriggerOptions
from shipyard.sdk.backend import current_backend
from shipyard.sdk.task import batch_entry

__all__ = ["tasks"]

Hook = Callable[..., Any]


def _add(name: str, fn: Hook) -> Hook:
    return default_definitions().hooks.add(name, fn)


class _Tasks:
    """Trigger tasks by id, and register global hooks (run before each task's own)."""

    async def trigger(
        self, task_id: str, payload: Any = None, **options: Unpack[TriggerOptions]
    ) -> RunHandle:
        """Trigger a task by id, without importing its code (no client-side validation)."""
        return await current_backend().trigger(task_id, payload, options)

    async def batch_trigger(
        self,
        task_id: str,
        items: Sequence[Any | Mapping[str, Any]],
        **options: Unpack[TriggerOptions],
    ) -> BatchHandle:
        """Trigger many runs of one task by id (items: payloads or ``{payload, options}``)."""
        entries = [batch_entry(task_id, item) for item in items]
        return await current_backend().batch_trigger(entries, options)

    async def trigger_and_wait(
        self, task_id: str, payload: Any = None, **options: Unpack[TriggerOptions]
    ) -> Result[Any]:
        """Trigger a task by id and wait for its result; only inside a run."""
        return await current_backend().trigger_and_wait(task_id, payload, options)

    async def batch_trigger_and_wait(
        self,
        task_id: str,
        items: Sequence[Any | Mapping[str, Any]],
        **options: Unpack[TriggerOptions],
    ) -> BatchResult[Any]:
        """Trigger many runs of one task by id and wait for all; only inside a run."""
        entries = [batch_entry(task_id, item) for item in items]
        return await current_backend().batch_trigger_and_wait(entries, options)

    def init(self, fn: Hook) -> Hook:
        """Run ``fn`` before every attempt of every task (before the task's own ``init``).

        What the ``init`` hooks return (dicts, merged; the task's keys win) reaches every later
        hook of the attempt as its ``init`` argument."""
        return _add("init", fn)

    def cleanup(self, fn: Hook) -> Hook:
        """Run ``fn`` after every attempt's task function, whatever it did (an error in it
        fails the attempt)."""
        return _add("cleanup", fn)

    def on_start(self, fn: Hook) -> Hook:
        """Run ``fn`` before the first attempt of every task (before the task's own)."""
        return _add("on_start", fn)

    def on_start_attempt(self, fn: Hook) -> Hook:
        """Run ``fn`` before every attempt of every task."""
        return _add("on_start_attempt", fn)

    def on_success(self, fn: Hook) -> Hook:
        """Run ``fn`` when any run succeeds (errors in it are logged, not raised)."""
        return _add("on_success", fn)

    def on_failure(self, fn: Hook) -> Hook:
        """Run ``fn`` once when any run ends FAILED (errors in it are logged, not raised)."""
        return _add("on_failure", fn)

    def on_complete(self, fn: Hook) -> Hook:
        """Run ``fn`` when any executing run reaches a final status (``result`` says how)."""
        return _add("on_complete", fn)

    def on_cancel(self, fn: Hook) -> Hook:
        """Run ``fn`` (at most 30 s) when an executing run is canceled."""
        return _add("on_cancel", fn)

    def on_wait(self, fn: Hook) -> Hook:
        """Run ``fn(wait=...)`` before any run suspends at a durable wait."""
        return _add("on_wait", fn)

    def on_resume(self, fn: Hook) -> Hook:
        """Run ``fn(wait=...)`` when any run continues after a durable wait."""
        return _add("on_resume", fn)

    def catch_error(self, fn: Hook) -> Hook:
        """Consult ``fn`` (after the task's own) when an attempt fails."""
        return _add("catch_error", fn)

    def middleware(self, fn: Hook) -> Hook:
        """Wrap every attempt in ``fn(payload, ctx, next)`` (outside the task's own
        middleware); it must ``await next()``."""
        return _add("middleware", fn)


tasks = _Tasks()
