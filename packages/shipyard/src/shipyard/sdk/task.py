"""Defining tasks: ``@task`` and ``schema_task``.

A :class:`Task` is generic in its payload and output: ``await t.trigger(wrong_payload)`` fails
type checking, ``(await t.trigger_and_wait(p)).output`` has the task's return type, and trigger
options are a typed dict (unknown names and wrong types fail type checking too).

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
from typing import Any, Generic, Protocol, TypedDict, TypeVar, cast, overload

from pydantic import BaseModel
from typing_extensions import Unpack

from shipyard.durations import parse_duration_ms
from shipyard.engine.definitions import (
    QueueDefinition,
    TaskDefinition,
    default_definitions,
    validate_limit,
)
from shipyard.errors import ValidationError
from shipyard.machines import validate_machine
from shipyard.models.context import Context
from shipyard.models.handles import BatchHandle, BatchResult, Result, RunHandle
from shipyard.models.options import TriggerOptions
from shipyard.retry_policy import RetryOptions
from shipyard.sdk.backend import current_backend

__all__ = ["Task", "TaskOptions", "schema_task", "task"]

PayloadT = TypeVar("PayloadT")
OutputT = TypeVar("OutputT")
ModelT = TypeVar("ModelT", bound=BaseModel)
Hook = Callable[..., Any]
QueueOption = QueueDefinition | str | Mapping[str, Any] | None

MAX_DURATION_MIN = 5
MAX_DURATION_NONE = 2_147_483_647


class TaskOptions(TypedDict, total=False):
    """Every option of ``@task`` / ``schema_task`` besides ``id``.

    Hooks receive the keyword arguments they name (``payload``, ``ctx``, ``task``, ``output``,
    ``error``, ``result``, ``wait``, ``init`` …); for a ``schema_task`` ``payload`` is the parsed
    model. ``init``/``cleanup`` run around every attempt (deprecated upstream, still used).
    """

    retry: RetryOptions | Mapping[str, Any] | None
    max_duration: int | None
    machine: str | None
    queue: QueueOption
    description: str | None
    ttl: str | int | None
    catch_error: Hook | None
    init: Hook | None
    cleanup: Hook | None
    on_start: Hook | None
    on_start_attempt: Hook | None
    on_success: Hook | None
    on_failure: Hook | None
    on_complete: Hook | None
    on_cancel: Hook | None
    on_wait: Hook | None
    on_resume: Hook | None
    middleware: Hook | Sequence[Hook] | None


class Task(TaskDefinition, Generic[PayloadT, OutputT]):
    """A task: the function, its options, and the methods that trigger it."""

    async def trigger(
        self,
        payload: PayloadT = None,  # type: ignore[assignment]
        **options: Unpack[TriggerOptions],
    ) -> RunHandle:
        """Create a run of this task; return its handle at once.

        Options (all keyword, see :class:`~shipyard.models.options.TriggerOptions`): ``tags``,
        ``metadata``, ``idempotency_key``, ``idempotency_key_ttl``, ``delay``, ``ttl``,
        ``queue``, ``concurrency_key``, ``priority``, ``machine``, ``max_attempts``,
        ``max_duration``, ``debounce`` and ``connection``. For a ``schema_task`` the payload is
        validated first (pydantic's error, no run created).
        """
        self._validate_client_side(payload)
        return await current_backend().trigger(self.id, payload, options)

    async def batch_trigger(
        self, items: Sequence[PayloadT | Mapping[str, Any]], **options: Unpack[TriggerOptions]
    ) -> BatchHandle:
        """Create one run per item (≤ 1,000), in one transaction.

        Each item is a payload, or ``{"payload": ..., "options": {...}}`` (a dict with exactly
        those keys; ``options`` is optional). An item's options override the batch's options of
        the same name; a batch-level ``idempotency_key`` gives each item without a key of its
        own ``[key, index]``. ``docs/runs.md`` (Batches) has an example.
        """
        entries = [batch_entry(self.id, item) for item in items]
        for entry in entries:
            self._validate_client_side(entry["payload"])
        return await current_backend().batch_trigger(entries, options)

    async def trigger_and_wait(
        self,
        payload: PayloadT = None,  # type: ignore[assignment]
        **options: Unpack[TriggerOptions],
    ) -> Result[OutputT]:
        """Trigger a child run and wait for it to finish; only inside a run.

        Returns a :class:`Result`; ``.unwrap()`` gives the output or raises.
        """
        self._validate_client_side(payload)
        return await current_backend().trigger_and_wait(self.id, payload, options)

    async def batch_trigger_and_wait(
        self, items: Sequence[PayloadT | Mapping[str, Any]], **options: Unpack[TriggerOptions]
    ) -> BatchResult[OutputT]:
        """Trigger many child runs and wait for all; ``.runs`` are in input order.

        Items as for :meth:`batch_trigger`. Only inside a run: the run suspends (WAITING, its
        slot given back) until every child is final.
        """
        entries = [batch_entry(self.id, item) for item in items]
        for entry in entries:
            self._validate_client_side(entry["payload"])
        return await current_backend().batch_trigger_and_wait(entries, options)

    def _validate_client_side(self, payload: Any) -> None:
        if self.schema is not None:
            self.schema.model_validate(payload)


def batch_entry(task_id: str, item: Any) -> dict[str, Any]:
    """A batch item as the engine takes it: ``{"task", "payload", "options"}``.

    ``{"payload": ..., "options": {...}}`` is the item form; anything else is a bare payload.
    """
    if isinstance(item, Mapping) and "payload" in item and set(item) <= {"payload", "options"}:
        return {"task": task_id, "payload": item["payload"], "options": item.get("options") or {}}
    return {"task": task_id, "payload": item, "options": {}}


class TaskDecorator(Protocol):
    """What ``task(id=...)`` returns: applied to the function, it makes the :class:`Task`."""

    @overload
    def __call__(
        self, fn: Callable[[PayloadT, Context], Awaitable[OutputT]], /
    ) -> Task[PayloadT, OutputT]: ...
    @overload
    def __call__(
        self, fn: Callable[[PayloadT], Awaitable[OutputT]], /
    ) -> Task[PayloadT, OutputT]: ...
    @overload
    def __call__(
        self, fn: Callable[[PayloadT, Context], OutputT], /
    ) -> Task[PayloadT, OutputT]: ...
    @overload
    def __call__(self, fn: Callable[[PayloadT], OutputT], /) -> Task[PayloadT, OutputT]: ...


class SchemaTaskDecorator(Protocol[ModelT]):
    """What ``schema_task(...)`` returns: the task's payload is the model (or its dict form)."""

    @overload
    def __call__(
        self, fn: Callable[[ModelT, Context], Awaitable[OutputT]], /
    ) -> Task[ModelT | Mapping[str, Any], OutputT]: ...
    @overload
    def __call__(
        self, fn: Callable[[ModelT], Awaitable[OutputT]], /
    ) -> Task[ModelT | Mapping[str, Any], OutputT]: ...
    @overload
    def __call__(
        self, fn: Callable[[ModelT, Context], OutputT], /
    ) -> Task[ModelT | Mapping[str, Any], OutputT]: ...
    @overload
    def __call__(
        self, fn: Callable[[ModelT], OutputT], /
    ) -> Task[ModelT | Mapping[str, Any], OutputT]: ...


@overload
def task(fn: Callable[[PayloadT, Context], Awaitable[OutputT]], /) -> Task[PayloadT, OutputT]: ...
@overload
def task(fn: Callable[[PayloadT], Awaitable[OutputT]], /) -> Task[PayloadT, OutputT]: ...
@overload
def task(fn: Callable[[PayloadT, Context], OutputT], /) -> Task[PayloadT, OutputT]: ...
@overload
def task(fn: Callable[[PayloadT], OutputT], /) -> Task[PayloadT, OutputT]: ...
@overload
def task(*, id: str, **options: Unpack[TaskOptions]) -> TaskDecorator: ...


def task(fn: Callable[..., Any] | None = None, /, *, id: str | None = None, **options: Any) -> Any:
    """Define a task from an ``async def`` or ``def`` taking ``(payload)`` or ``(payload, ctx)``.

    Bare ``@task`` takes the id from the function name (``send_email`` → ``send-email``).

    Example::

        @task(id="resize-image", retry={"max_attempts": 5, "factor": 1.8}, max_duration=300)
        async def resize_image(payload: dict, ctx) -> dict:
            return {"width": 100}
    """

    def decorate(function: Callable[..., Any]) -> Task[Any, Any]:
        definition = _build(
            function,
            task_id=id or function.__name__.replace("_", "-"),
            schema=None,
            options=options,
        )
        default_definitions().add_task(definition)
        return definition

    if fn is not None:
        return decorate(fn)
    return decorate


def schema_task(
    *, id: str, schema: type[ModelT], **options: Unpack[TaskOptions]
) -> SchemaTaskDecorator[ModelT]:
    """A task whose payload is validated by a pydantic model.

    ``my_task.trigger(payload)`` validates before any run is created (pydantic's
    ``ValidationError`` is raised); each attempt validates again and a failure ends the run
    FAILED with no retry and no hooks. The task function — and every hook's ``payload`` —
    receives the parsed model instance.

    Example::

        class Order(BaseModel):
            order_id: str
            quantity: int = 1

        @schema_task(id="fulfil-order", schema=Order)
        async def fulfil_order(order: Order) -> dict:
            return {"order": order.order_id}
    """

    def decorate(function: Callable[..., Any]) -> Task[Any, Any]:
        definition = _build(function, task_id=id, schema=schema, options=dict(options))
        default_definitions().add_task(definition)
        return definition

    return cast("SchemaTaskDecorator[ModelT]", decorate)


_HOOKS = (
    "catch_error",
    "init",
    "cleanup",
    "on_start",
    "on_start_attempt",
    "on_success",
    "on_failure",
    "on_complete",
    "on_cancel",
    "on_wait",
    "on_resume",
)
_OPTIONS = frozenset(
    {"retry", "max_duration", "machine", "queue", "description", "ttl", "middleware", *_HOOKS}
)


def _build(
    function: Callable[..., Any],
    *,
    task_id: str,
    schema: type[BaseModel] | None,
    options: Mapping[str, Any],
) -> Task[Any, Any]:
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise ValidationError(
            f"Unknown task option{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(u) for u in unknown)} on task '{task_id}'; supported: "
            f"{', '.join(sorted(_OPTIONS))}.",
            task_id=task_id,
        )
    if not isinstance(task_id, str) or not task_id or len(task_id) > 128 or "\x00" in task_id:
        raise ValidationError("A task id must be 1–128 characters.", task_id=str(task_id))
    max_duration = options.get("max_duration")
    if max_duration is not None:
        max_duration = max(MAX_DURATION_MIN, min(int(max_duration), MAX_DURATION_NONE))
    middleware = options.get("middleware")
    if middleware is None:
        chain: tuple[Hook, ...] = ()
    elif callable(middleware):
        chain = (middleware,)
    else:
        chain = tuple(middleware)
    ttl = options.get("ttl")
    if ttl is not None:
        parse_duration_ms(ttl)  # an invalid TTL fails where the task is defined
    machine = options.get("machine")
    if machine is not None:
        machine = validate_machine(machine, where=f"machine of task '{task_id}'")
    description = options.get("description") or inspect.getdoc(function)
    return Task(
        id=task_id,
        fn=function,
        retry=RetryOptions.from_value(options.get("retry")),
        max_duration=max_duration,
        machine=machine,
        queue=_resolve_queue(options.get("queue"), task_id),
        ttl=ttl,
        description=description,
        schema=schema,
        middleware=chain,
        catch_error=options.get("catch_error"),
        init=options.get("init"),
        cleanup=options.get("cleanup"),
        on_start=options.get("on_start"),
        on_start_attempt=options.get("on_start_attempt"),
        on_success=options.get("on_success"),
        on_failure=options.get("on_failure"),
        on_complete=options.get("on_complete"),
        on_cancel=options.get("on_cancel"),
        on_wait=options.get("on_wait"),
        on_resume=options.get("on_resume"),
    )


def _resolve_queue(value: QueueOption, task_id: str) -> QueueDefinition | None:
    definitions = default_definitions()
    if value is None or isinstance(value, QueueDefinition):
        return value
    if isinstance(value, str):
        # A name: the shared queue defined with queue(...), or a queue with the default limit.
        return definitions.queue(value) or definitions.add_queue(QueueDefinition(name=value))
    # {"concurrency_limit": n} without a name sets the limit of the task's own queue.
    name = value.get("name") or f"task/{task_id}"
    if not isinstance(name, str):
        raise ValidationError("queue={...} 'name' must be a string.")
    return definitions.add_queue(
        QueueDefinition(name=name, concurrency_limit=validate_limit(value.get("concurrency_limit")))
    )
