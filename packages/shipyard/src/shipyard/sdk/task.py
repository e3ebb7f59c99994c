"""Defining tasks: ``@task``, ``schema_task`` and the registry of every task in the process.

Example::

    from shipyard import task

    @task(id="send-welcome-email", retry={"max_attempts": 5})
    async def send_welcome_email(payload: dict, ctx) -> dict:
        ...
        return {"sent": True}

    handle = await send_welcome_email.trigger({"user_id": "u_1"})
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pydantic import BaseModel

from shipyard.errors import DuplicateTaskError, ValidationError
from shipyard.retry_policy import RetryOptions
from shipyard.sdk.queues import Queue, queue_registry, validate_limit

if TYPE_CHECKING:
    from shipyard.sdk.handles import BatchHandle, BatchResult, Result, RunHandle

TaskFn = Callable[..., Any]
QueueOption = Queue | str | Mapping[str, Any] | None
Hook = Callable[..., Any]
F = TypeVar("F", bound=TaskFn)
M = TypeVar("M", bound=BaseModel)

MAX_DURATION_MIN = 5
MAX_DURATION_NONE = 2_147_483_647


@dataclass(eq=False)
class Task:
    """A task definition: the function plus its options. Created by :func:`task`."""

    id: str
    fn: TaskFn
    retry: RetryOptions | None = None
    max_duration: int | None = None
    machine: str | None = None
    queue: Queue | None = None
    description: str | None = None
    schema: type[BaseModel] | None = None
    ttl: str | int | None = None
    catch_error: Hook | None = None
    on_start: Hook | None = None
    on_start_attempt: Hook | None = None
    on_success: Hook | None = None
    on_failure: Hook | None = None
    on_complete: Hook | None = None
    on_cancel: Hook | None = None
    on_wait: Hook | None = None
    on_resume: Hook | None = None
    middleware: Sequence[Hook] = ()
    file_path: str = ""
    takes_ctx: bool = field(init=False, default=False)
    is_async: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        params = [
            p
            for p in inspect.signature(self.fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if len(params) not in (1, 2):
            raise ValidationError(
                f"Task '{self.id}' must take (payload) or (payload, ctx); "
                f"{self.fn.__qualname__} takes {len(params)} positional parameters.",
                task_id=self.id,
            )
        self.takes_ctx = len(params) == 2
        self.is_async = inspect.iscoroutinefunction(self.fn)
        if not self.file_path:
            try:
                self.file_path = str(Path(inspect.getfile(self.fn)).resolve())
            except (TypeError, OSError):
                self.file_path = "<unknown>"

    @property
    def queue_name(self) -> str:
        """The queue runs of this task go to: its own ``task/<id>`` unless set."""
        return self.queue.name if self.queue else f"task/{self.id}"

    @property
    def queue_limit(self) -> int | None:
        """The concurrency limit of the task's queue (None: the environment's)."""
        return self.queue.concurrency_limit if self.queue else None

    def validate_payload(self, payload: Any) -> Any:
        """Validate a payload against the schema (schema_task); return the parsed value."""
        if self.schema is None:
            return payload
        return self.schema.model_validate(payload)

    async def trigger(self, payload: Any = None, **options: Any) -> RunHandle:
        """Create a run of this task; return its handle at once.

        Options: ``tags``, ``metadata``, ``max_attempts``, ``max_duration``,
        ``idempotency_key``, ``idempotency_key_ttl``, ``machine``.
        For a schema_task the payload is validated first (pydantic's error, no run created).
        """
        from shipyard.engine.registry import get_engine

        self._validate_client_side(payload)
        return await get_engine().trigger(self.id, payload, options)

    async def batch_trigger(self, items: Sequence[Any], **options: Any) -> BatchHandle:
        """Create one run per item (≤ 1,000), in one transaction.

        Each item is a payload, or a dict ``{"payload": ..., "options": {...}}``.
        """
        from shipyard.engine.registry import get_engine

        entries = [_batch_entry(self.id, item) for item in items]
        for entry in entries:
            self._validate_client_side(entry["payload"])
        return await get_engine().batch_trigger(entries, options)

    async def trigger_and_wait(self, payload: Any = None, **options: Any) -> Result:
        """Trigger a child run and wait for it to finish; only inside a run.

        Returns a :class:`Result`; call ``.unwrap()`` to get the output or raise.
        """
        from shipyard.engine.registry import get_engine

        self._validate_client_side(payload)
        return await get_engine().trigger_and_wait(self.id, payload, options)

    async def batch_trigger_and_wait(self, items: Sequence[Any], **options: Any) -> BatchResult:
        """Trigger many child runs and wait for all; ``.runs`` are in input order."""
        from shipyard.engine.registry import get_engine

        entries = [_batch_entry(self.id, item) for item in items]
        for entry in entries:
            self._validate_client_side(entry["payload"])
        return await get_engine().batch_trigger_and_wait(entries, options)

    def _validate_client_side(self, payload: Any) -> None:
        if self.schema is not None:
            self.schema.model_validate(payload)


def _batch_entry(task_id: str, item: Any) -> dict[str, Any]:
    if isinstance(item, Mapping) and "payload" in item and set(item) <= {"payload", "options"}:
        return {"task": task_id, "payload": item["payload"], "options": item.get("options") or {}}
    return {"task": task_id, "payload": item, "options": {}}


class TaskRegistry:
    """Every task defined in this process, by id. Defining an id twice is an error."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}

    def add(self, definition: Task) -> None:
        """Register a task; a different task with the same id raises DuplicateTaskError."""
        existing = self._tasks.get(definition.id)
        if existing is not None and not _same_definition(existing, definition):
            raise DuplicateTaskError(
                f"Task id '{definition.id}' is defined twice: in {existing.file_path} "
                f"({existing.fn.__qualname__}) and in {definition.file_path} "
                f"({definition.fn.__qualname__}). Task ids must be unique.",
                task_id=definition.id,
                files=[existing.file_path, definition.file_path],
            )
        self._tasks[definition.id] = definition

    def get(self, task_id: str) -> Task | None:
        """The task with that id, or None."""
        return self._tasks.get(task_id)

    def all(self) -> list[Task]:
        """Every task, sorted by id."""
        return [self._tasks[k] for k in sorted(self._tasks)]

    def ids(self) -> list[str]:
        """Every task id, sorted."""
        return sorted(self._tasks)

    def remove_from_files(self, files: set[str]) -> None:
        """Forget tasks defined in these files (before re-importing them)."""
        for task_id in [k for k, t in self._tasks.items() if t.file_path in files]:
            del self._tasks[task_id]

    def clear(self) -> None:
        """Forget every task (tests)."""
        self._tasks.clear()


def _same_definition(a: Task, b: Task) -> bool:
    # Re-importing the same module (hot reload, or a module imported under two names)
    # redefines the same function in the same file: that is not a duplicate.
    return a.file_path == b.file_path and a.fn.__qualname__ == b.fn.__qualname__


registry = TaskRegistry()


@overload
def task(fn: F, /) -> Task: ...
@overload
def task(
    *,
    id: str,
    retry: RetryOptions | Mapping[str, Any] | None = None,
    max_duration: int | None = None,
    machine: str | None = None,
    queue: QueueOption = None,
    description: str | None = None,
    catch_error: Hook | None = None,
    on_start: Hook | None = None,
    on_start_attempt: Hook | None = None,
    on_success: Hook | None = None,
    on_failure: Hook | None = None,
    on_complete: Hook | None = None,
    on_cancel: Hook | None = None,
    on_wait: Hook | None = None,
    on_resume: Hook | None = None,
    middleware: Hook | Sequence[Hook] | None = None,
    ttl: str | int | None = None,
) -> Callable[[TaskFn], Task]: ...


def task(
    fn: TaskFn | None = None,
    /,
    *,
    id: str | None = None,
    retry: RetryOptions | Mapping[str, Any] | None = None,
    max_duration: int | None = None,
    machine: str | None = None,
    queue: QueueOption = None,
    description: str | None = None,
    catch_error: Hook | None = None,
    on_start: Hook | None = None,
    on_start_attempt: Hook | None = None,
    on_success: Hook | None = None,
    on_failure: Hook | None = None,
    on_complete: Hook | None = None,
    on_cancel: Hook | None = None,
    on_wait: Hook | None = None,
    on_resume: Hook | None = None,
    middleware: Hook | Sequence[Hook] | None = None,
    ttl: str | int | None = None,
) -> Task | Callable[[TaskFn], Task]:
    """Define a task from an ``async def`` or ``def`` taking ``(payload)`` or ``(payload, ctx)``.

    Example::

        @task(id="resize-image", retry={"max_attempts": 5, "factor": 1.8}, max_duration=300)
        async def resize_image(payload: dict, ctx) -> dict:
            return {"width": 100}
    """

    def decorate(function: TaskFn) -> Task:
        definition = _build(
            function,
            task_id=id or function.__name__.replace("_", "-"),
            retry=retry,
            max_duration=max_duration,
            machine=machine,
            queue=queue,
            description=description or inspect.getdoc(function),
            hooks={
                "catch_error": catch_error,
                "on_start": on_start,
                "on_start_attempt": on_start_attempt,
                "on_success": on_success,
                "on_failure": on_failure,
                "on_complete": on_complete,
                "on_cancel": on_cancel,
                "on_wait": on_wait,
                "on_resume": on_resume,
            },
            middleware=middleware,
            schema=None,
            ttl=ttl,
        )
        registry.add(definition)
        return definition

    if fn is not None:
        return decorate(fn)
    return decorate


def schema_task(
    *,
    id: str,
    schema: type[BaseModel],
    retry: RetryOptions | Mapping[str, Any] | None = None,
    max_duration: int | None = None,
    machine: str | None = None,
    queue: QueueOption = None,
    description: str | None = None,
    catch_error: Hook | None = None,
    on_start: Hook | None = None,
    on_start_attempt: Hook | None = None,
    on_success: Hook | None = None,
    on_failure: Hook | None = None,
    on_complete: Hook | None = None,
    on_cancel: Hook | None = None,
    on_wait: Hook | None = None,
    on_resume: Hook | None = None,
    middleware: Hook | Sequence[Hook] | None = None,
    ttl: str | int | None = None,
) -> Callable[[TaskFn], Task]:
    """A task whose payload is validated by a pydantic model.

    ``my_task.trigger(payload)`` validates before any run is created (pydantic's
    ``ValidationError`` is raised); each attempt validates again and a failure ends the run
    FAILED with no retry and no hooks. The task function receives the model instance.

    Example::

        class Order(BaseModel):
            order_id: str
            quantity: int = 1

        @schema_task(id="fulfil-order", schema=Order)
        async def fulfil_order(order: Order) -> dict:
            return {"order": order.order_id}
    """

    def decorate(function: TaskFn) -> Task:
        definition = _build(
            function,
            task_id=id,
            retry=retry,
            max_duration=max_duration,
            machine=machine,
            queue=queue,
            description=description or inspect.getdoc(function),
            hooks={
                "catch_error": catch_error,
                "on_start": on_start,
                "on_start_attempt": on_start_attempt,
                "on_success": on_success,
                "on_failure": on_failure,
                "on_complete": on_complete,
                "on_cancel": on_cancel,
                "on_wait": on_wait,
                "on_resume": on_resume,
            },
            middleware=middleware,
            schema=schema,
            ttl=ttl,
        )
        registry.add(definition)
        return definition

    return decorate


def _build(
    function: TaskFn,
    *,
    task_id: str,
    retry: RetryOptions | Mapping[str, Any] | None,
    max_duration: int | None,
    machine: str | None,
    queue: QueueOption,
    description: str | None,
    hooks: dict[str, Hook | None],
    middleware: Hook | Sequence[Hook] | None,
    schema: type[BaseModel] | None,
    ttl: str | int | None,
) -> Task:
    if not task_id or len(task_id) > 128:
        raise ValidationError("A task id must be 1–128 characters.", task_id=task_id)
    if max_duration is not None:
        max_duration = max(MAX_DURATION_MIN, min(int(max_duration), MAX_DURATION_NONE))
    if middleware is None:
        chain: tuple[Hook, ...] = ()
    elif callable(middleware):
        chain = (middleware,)
    else:
        chain = tuple(middleware)
    if ttl is not None:
        from shipyard.durations import parse_duration_ms

        parse_duration_ms(ttl)  # an invalid TTL fails where the task is defined
    return Task(
        id=task_id,
        fn=function,
        retry=RetryOptions.from_value(retry),
        max_duration=max_duration,
        machine=machine,
        queue=_resolve_queue(queue, task_id),
        ttl=ttl,
        description=description,
        schema=schema,
        middleware=chain,
        catch_error=hooks["catch_error"],
        on_start=hooks["on_start"],
        on_start_attempt=hooks["on_start_attempt"],
        on_success=hooks["on_success"],
        on_failure=hooks["on_failure"],
        on_complete=hooks["on_complete"],
        on_cancel=hooks["on_cancel"],
        on_wait=hooks["on_wait"],
        on_resume=hooks["on_resume"],
    )


def _resolve_queue(value: QueueOption, task_id: str) -> Queue | None:
    if value is None or isinstance(value, Queue):
        return value
    if isinstance(value, str):
        # A name: the shared queue defined with queue(...), or a queue with the default limit.
        return queue_registry.get(value) or queue_registry.add(Queue(name=value))
    # {"concurrency_limit": n} without a name sets the limit of the task's own queue.
    name = value.get("name") or f"task/{task_id}"
    if not isinstance(name, str):
        raise ValidationError("queue={...} 'name' must be a string.")
    return queue_registry.add(
        Queue(name=name, concurrency_limit=validate_limit(value.get("concurrency_limit")))
    )


AwaitableOrValue = Awaitable[Any] | Any
