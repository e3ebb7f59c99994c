"""What code defines: tasks, shared queues and global hooks, held by one :class:`Definitions`.

The ``@task`` / ``schema_task`` / ``queue()`` / ``tasks.on_*`` calls fill the process's default
definitions (:func:`default_definitions`). An :class:`~shipyard.engine.engine.Engine` and the
worker that executes its runs are given a definitions object (the default unless another is
passed), so tests and embedders can hold several side by side without touching globals::

    defs = Definitions()
    with use_definitions(defs):
        @task(id="hello")
        async def hello(payload): ...
    engine = Engine(settings, definitions=defs)
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from shipyard.errors import DuplicateTaskError, ValidationError
from shipyard.models.schedules import CronSchedule
from shipyard.retry_policy import RetryOptions

__all__ = [
    "HOOK_NAMES",
    "MAX_CONCURRENCY_LIMIT",
    "Definitions",
    "GlobalHooks",
    "QueueDefinition",
    "TaskDefinition",
    "default_definitions",
    "use_definitions",
    "validate_limit",
]

Hook = Callable[..., Any]
MAX_CONCURRENCY_LIMIT = 100_000

# Every hook a task (or the global hooks, for every task) can have, in no particular order.
HOOK_NAMES = (
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
    "catch_error",
    "middleware",
)


def validate_limit(limit: object) -> int | None:
    """A concurrency limit is None (the environment's) or an int from 0 to 100,000."""
    if limit is None:
        return None
    if (
        not isinstance(limit, int)
        or isinstance(limit, bool)
        or not 0 <= limit <= MAX_CONCURRENCY_LIMIT
    ):
        raise ValidationError(
            f"concurrency_limit must be an integer from 0 to {MAX_CONCURRENCY_LIMIT:,}; "
            f"got {limit!r}.",
            limit=repr(limit),
        )
    return limit


@dataclass(frozen=True, slots=True)
class QueueDefinition:
    """A queue as code defines it (what ``queue()`` returns)."""

    name: str
    concurrency_limit: int | None = None


@dataclass(eq=False)
class TaskDefinition:
    """A task as the engine sees it: the function, its options and its hooks.

    The SDK's :class:`~shipyard.sdk.task.Task` adds the triggering methods on top.
    """

    id: str
    fn: Callable[..., Any]
    retry: RetryOptions | None = None
    max_duration: int | None = None
    machine: str | None = None
    queue: QueueDefinition | None = None
    description: str | None = None
    schema: type[BaseModel] | None = None
    ttl: str | int | None = None
    catch_error: Hook | None = None
    init: Hook | None = None
    cleanup: Hook | None = None
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
    # A declarative schedule (``@schedules.task(cron=...)``), synced when a worker registers.
    cron: CronSchedule | None = None
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

    def hook(self, name: str) -> Hook | None:
        """The task's own hook of that name, or None."""
        value: Hook | None = getattr(self, name)
        return value

    def validate_payload(self, payload: Any) -> Any:
        """Validate a payload against the schema (schema_task); return the parsed value."""
        if self.schema is None:
            return payload
        return self.schema.model_validate(payload)


class GlobalHooks:
    """Hooks registered for every task, in registration order."""

    def __init__(self) -> None:
        self._hooks: dict[str, list[Hook]] = {name: [] for name in HOOK_NAMES}

    def add(self, name: str, fn: Hook) -> Hook:
        """Register ``fn`` as a global ``name`` hook; returns ``fn`` (usable as a decorator)."""
        if name not in self._hooks:
            raise ValidationError(f"Unknown hook {name!r}; hooks: {', '.join(HOOK_NAMES)}.")
        self._hooks[name].append(fn)
        return fn

    def get(self, name: str) -> list[Hook]:
        """The global hooks of that name, in registration order."""
        return list(self._hooks[name])


class Definitions:
    """Every task, shared queue and global hook defined in code, by id / name."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskDefinition] = {}
        self._queues: dict[str, QueueDefinition] = {}
        self.hooks = GlobalHooks()

    # -- tasks ----------------------------------------------------------------------------

    def add_task(self, definition: TaskDefinition) -> None:
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

    def task(self, task_id: str) -> TaskDefinition | None:
        """The task with that id, or None."""
        return self._tasks.get(task_id)

    def tasks(self) -> list[TaskDefinition]:
        """Every task, sorted by id."""
        return [self._tasks[k] for k in sorted(self._tasks)]

    def task_ids(self) -> list[str]:
        """Every task id, sorted."""
        return sorted(self._tasks)

    def forget_files(self, files: set[str]) -> None:
        """Forget tasks defined in these files (before re-importing them)."""
        for task_id in [k for k, t in self._tasks.items() if t.file_path in files]:
            del self._tasks[task_id]

    # -- queues ---------------------------------------------------------------------------

    def add_queue(self, definition: QueueDefinition) -> QueueDefinition:
        """Register a shared queue; the same name with another limit is an error."""
        existing = self._queues.get(definition.name)
        if existing is not None and existing != definition:
            raise ValidationError(
                f"Queue '{definition.name}' is defined twice with different limits "
                f"({existing.concurrency_limit} and {definition.concurrency_limit}).",
                queue=definition.name,
            )
        self._queues[definition.name] = definition
        return definition

    def queue(self, name: str) -> QueueDefinition | None:
        """The queue with that name, or None."""
        return self._queues.get(name)

    def queues(self) -> list[QueueDefinition]:
        """Every shared queue, sorted by name."""
        return [self._queues[k] for k in sorted(self._queues)]

    def queue_limits(self) -> dict[str, int | None]:
        """Every queue code defines (shared ones and each task's own) with its limit."""
        limits: dict[str, int | None] = {q.name: q.concurrency_limit for q in self.queues()}
        for task in self.tasks():
            limits[task.queue_name] = task.queue_limit
        return limits


def _same_definition(a: TaskDefinition, b: TaskDefinition) -> bool:
    # Re-importing the same module (hot reload, or a module imported under two names)
    # redefines the same function in the same file: that is not a duplicate.
    return a.file_path == b.file_path and a.fn.__qualname__ == b.fn.__qualname__


class _Default:
    current = Definitions()


def default_definitions() -> Definitions:
    """The definitions ``@task``, ``queue()`` and ``tasks.on_*`` register into."""
    return _Default.current


@contextlib.contextmanager
def use_definitions(definitions: Definitions) -> Iterator[Definitions]:
    """Make ``definitions`` the default within the block (tests, embedding)."""
    previous = _Default.current
    _Default.current = definitions
    try:
        yield definitions
    finally:
        _Default.current = previous
