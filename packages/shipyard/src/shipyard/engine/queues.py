"""Queues: list and inspect them, pause and resume them, override their limits.

Workers register the queues their tasks use; pausing a queue stops new claims from it (running
runs are unaffected) and survives restarts and re-registration.
"""

from __future__ import annotations

from shipyard.engine.definitions import validate_limit
from shipyard.engine.options import check_text
from shipyard.engine.waitpoints import WaitpointOps
from shipyard.errors import UnknownQueueError
from shipyard.models.queues import QueueInfo
from shipyard.records import QueueRecord
from shipyard.store.claims import group_limit
from shipyard.store.params import QueueListParams, QueueUpdateParams, ReadyNotifyParams

__all__ = ["QueueOps"]


class QueueOps(WaitpointOps):
    """Queue inspection and control."""

    def _queue_info(self, record: QueueRecord) -> QueueInfo:
        limit = self.settings.environment_concurrency_limit
        return QueueInfo(
            name=record.name,
            concurrency_limit=record.concurrency_limit,
            limit_override=record.limit_override,
            effective_limit=group_limit(record.concurrency_limit, record.limit_override, limit),
            paused=bool(record.paused),
            running=record.running,
            queued=record.queued,
        )

    async def list_queues(self) -> list[QueueInfo]:
        """Every queue workers registered in this environment, by name."""
        await self.start()
        found = await self.store.queue_list(QueueListParams(environment=self.environment))
        return [self._queue_info(q) for q in found]

    async def retrieve_queue(self, name: str) -> QueueInfo:
        """One queue by name, or :class:`UnknownQueueError`."""
        check_text(name, "queue", max_length=128)
        for info in await self.list_queues():
            if info.name == name:
                return info
        raise _unknown(name)

    async def _update_queue(
        self,
        name: str,
        *,
        paused: bool | None = None,
        limit_override: int | None = None,
        clear_override: bool = False,
    ) -> QueueInfo:
        check_text(name, "queue", max_length=128)
        await self.start()
        record = await self.store.queue_update(
            QueueUpdateParams(
                environment=self.environment,
                name=name,
                now=self.now(),
                paused=paused,
                limit_override=limit_override,
                clear_override=clear_override,
            )
        )
        if record is None:
            raise _unknown(name)
        await self.store.ready_notify(
            ReadyNotifyParams(environment=self.environment, now=self.now())
        )
        return self._queue_info(record)

    async def pause_queue(self, name: str) -> QueueInfo:
        """Stop claims from this queue (running runs finish normally)."""
        return await self._update_queue(name, paused=True)

    async def resume_queue(self, name: str) -> QueueInfo:
        """Allow claims from this queue again."""
        return await self._update_queue(name, paused=False)

    async def override_queue_limit(self, name: str, limit: int) -> QueueInfo:
        """Replace the queue's limit until reset (survives worker restarts)."""
        return await self._update_queue(name, limit_override=validate_limit(limit))

    async def reset_queue_limit(self, name: str) -> QueueInfo:
        """Go back to the limit set in code."""
        return await self._update_queue(name, clear_override=True)


def _unknown(name: str) -> UnknownQueueError:
    return UnknownQueueError(f"Queue '{name}' not found in this environment.", queue=name)
