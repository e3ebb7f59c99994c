"""Queues: shared concurrency limits, and the ``queues`` API to inspect and steer them.

Every task runs in a queue: its own ``task/<id>`` unless it names a shared one. A queue's
``concurrency_limit`` holds across every worker; a run triggered with ``concurrency_key=``
gets a sub-queue per key with the same limit. Workers register the queues their tasks use;
pausing a queue stops new claims from it (running runs are unaffected) and survives restarts.

Example::

    email_queue = queue(name="email-processing", concurrency_limit=5)

    @task(id="send-email", queue=email_queue)
    async def send_email(payload): ...

    await queues.pause("email-processing")
    info = await queues.retrieve("email-processing")   # .running, .queued, .paused
"""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.errors import ValidationError
from shipyard.records import QueueRecord
from shipyard.store.protocol import QueueListParams, QueueUpdateParams, ReadyNotifyParams

MAX_CONCURRENCY_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class Queue:
    """A queue definition (what :func:`queue` returns)."""

    name: str
    concurrency_limit: int | None = None


class QueueRegistry:
    """Queues defined in code in this process, by name (a registry)."""

    def __init__(self) -> None:
        self._queues: dict[str, Queue] = {}

    def add(self, definition: Queue) -> Queue:
        """Register a queue; the same name with another limit is an error."""
        existing = self._queues.get(definition.name)
        if existing is not None and existing != definition:
            raise ValidationError(
                f"Queue '{definition.name}' is defined twice with different limits "
                f"({existing.concurrency_limit} and {definition.concurrency_limit}).",
                queue=definition.name,
            )
        self._queues[definition.name] = definition
        return definition

    def get(self, name: str) -> Queue | None:
        """The queue with that name, or None."""
        return self._queues.get(name)

    def all(self) -> list[Queue]:
        """Every queue, sorted by name."""
        return [self._queues[k] for k in sorted(self._queues)]

    def clear(self) -> None:
        """Forget every queue (tests)."""
        self._queues.clear()


queue_registry = QueueRegistry()


def validate_limit(limit: int | None) -> int | None:
    """A concurrency limit is None (the environment's) or an int from 0 to 100,000."""
    if limit is None:
        return None
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= 100_000:
        raise ValidationError(
            f"concurrency_limit must be an integer from 0 to {MAX_CONCURRENCY_LIMIT:,}; "
            f"got {limit!r}.",
            limit=limit,
        )
    return limit


def queue(*, name: str, concurrency_limit: int | None = None) -> Queue:
    """Define a queue that tasks can share.

    Example::

        email_queue = queue(name="email-processing", concurrency_limit=5)
    """
    if not name or len(name) > 128 or name.startswith("task/"):
        raise ValidationError(
            "A queue name must be 1–128 characters and not start with 'task/' "
            "(reserved for each task's own queue).",
            queue=name,
        )
    return queue_registry.add(Queue(name=name, concurrency_limit=validate_limit(concurrency_limit)))


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue as ``queues.retrieve`` reports it."""

    name: str
    concurrency_limit: int | None
    limit_override: int | None
    effective_limit: int
    paused: bool
    running: int
    queued: int


def _info(record: QueueRecord, environment_limit: int) -> QueueInfo:
    from shipyard.store.claims import group_limit

    return QueueInfo(
        name=record.name,
        concurrency_limit=record.concurrency_limit,
        limit_override=record.limit_override,
        effective_limit=group_limit(
            record.concurrency_limit, record.limit_override, environment_limit
        ),
        paused=bool(record.paused),
        running=record.running,
        queued=record.queued,
    )


class _Queues:
    """List, inspect, pause/resume and override the limits of queues."""

    async def list(self) -> list[QueueInfo]:
        """Every queue workers registered in this environment."""
        from shipyard.engine.registry import get_engine

        engine = get_engine()
        await engine.start()
        limit = engine.settings.environment_concurrency_limit
        return [
            _info(q, limit)
            for q in await engine.store.queue_list(QueueListParams(engine.environment))
        ]

    async def retrieve(self, name: str) -> QueueInfo:
        """One queue by name."""
        for info in await self.list():
            if info.name == name:
                return info
        raise _unknown(name)

    async def _update(self, name: str, **changes: object) -> QueueInfo:
        from shipyard.engine.registry import get_engine

        engine = get_engine()
        await engine.start()
        record = await engine.store.queue_update(
            QueueUpdateParams(
                environment=engine.environment,
                name=name,
                now=engine.clock(),
                **changes,  # type: ignore[arg-type]
            )
        )
        if record is None:
            raise _unknown(name)
        await engine.store.ready_notify(ReadyNotifyParams(engine.environment, engine.clock()))
        return _info(record, engine.settings.environment_concurrency_limit)

    async def pause(self, name: str) -> QueueInfo:
        """Stop claims from this queue (running runs finish normally)."""
        return await self._update(name, paused=True)

    async def resume(self, name: str) -> QueueInfo:
        """Allow claims from this queue again."""
        return await self._update(name, paused=False)

    async def override_concurrency_limit(self, name: str, limit: int) -> QueueInfo:
        """Replace the queue's limit until reset (survives worker restarts)."""
        value = validate_limit(limit)
        return await self._update(name, limit_override=value)

    async def reset_concurrency_limit(self, name: str) -> QueueInfo:
        """Go back to the limit set in code."""
        return await self._update(name, clear_override=True)


def _unknown(name: str) -> Exception:
    from shipyard.errors import UnknownQueueError

    return UnknownQueueError(f"Queue '{name}' not found in this environment.", queue=name)


queues = _Queues()
