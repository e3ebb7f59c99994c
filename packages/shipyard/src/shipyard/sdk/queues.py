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

from shipyard.engine.definitions import QueueDefinition, default_definitions, validate_limit
from shipyard.errors import ValidationError
from shipyard.models.queues import QueueInfo
from shipyard.sdk.backend import current_backend

__all__ = ["Queue", "QueueInfo", "queue", "queues"]

Queue = QueueDefinition
"""A queue definition (what :func:`queue` returns)."""


def queue(*, name: str, concurrency_limit: int | None = None) -> Queue:
    """Define a queue that tasks can share.

    Example::

        email_queue = queue(name="email-processing", concurrency_limit=5)
    """
    if not isinstance(name, str) or not name or len(name) > 128 or name.startswith("task/"):
        raise ValidationError(
            "A queue name must be 1–128 characters and not start with 'task/' "
            "(reserved for each task's own queue).",
            queue=str(name),
        )
    if "\x00" in name:
        raise ValidationError("A queue name cannot contain NUL (\\x00) characters.")
    return default_definitions().add_queue(
        Queue(name=name, concurrency_limit=validate_limit(concurrency_limit))
    )


class _Queues:
    """List, inspect, pause/resume and override the limits of queues."""

    async def list(self) -> list[QueueInfo]:
        """Every queue workers registered in this environment."""
        return await current_backend().list_queues()

    async def retrieve(self, name: str) -> QueueInfo:
        """One queue by name."""
        return await current_backend().retrieve_queue(name)

    async def pause(self, name: str) -> QueueInfo:
        """Stop claims from this queue (running runs finish normally)."""
        return await current_backend().pause_queue(name)

    async def resume(self, name: str) -> QueueInfo:
        """Allow claims from this queue again."""
        return await current_backend().resume_queue(name)

    async def override_concurrency_limit(self, name: str, limit: int) -> QueueInfo:
        """Replace the queue's limit until reset (survives worker restarts)."""
        return await current_backend().override_queue_limit(name, limit)

    async def reset_concurrency_limit(self, name: str) -> QueueInfo:
        """Go back to the limit set in code."""
        return await current_backend().reset_queue_limit(name)


queues = _Queues()
