"""Batches across tasks: ``batch.trigger([...])`` and ``batch.retrieve(id)``.

Example::

    handle = await batch.trigger([
        {"id": "send-email", "payload": {"to": "a@example.com"}},
        {"id": "resize-image", "payload": {"url": "..."}, "options": {"tags": ["img"]}},
    ])
    info = await batch.retrieve(handle.batch_id)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from typing_extensions import Unpack

from shipyard.errors import ValidationError
from shipyard.models.batches import BatchInfo
from shipyard.models.handles import BatchHandle, BatchResult
from shipyard.models.options import TriggerOptions
from shipyard.sdk.backend import current_backend

__all__ = ["BatchInfo", "batch"]


def _entries(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    entries = []
    for index, item in enumerate(items):
        task_id = item.get("id") or item.get("task")
        if not task_id:
            raise ValidationError(f"Batch item {index} has no task 'id'.", index=index)
        entries.append(
            {"task": task_id, "payload": item.get("payload"), "options": item.get("options") or {}}
        )
    return entries


class _Batch:
    """Trigger and inspect batches of runs across tasks."""

    async def trigger(
        self, items: Sequence[Mapping[str, Any]], **options: Unpack[TriggerOptions]
    ) -> BatchHandle:
        """Trigger runs of several tasks (``{"id", "payload", "options"}`` each, ≤ 1,000)."""
        return await current_backend().batch_trigger(_entries(items), options)

    async def trigger_and_wait(self, items: Sequence[Mapping[str, Any]]) -> BatchResult[Any]:
        """Trigger runs of several tasks and wait for all; only inside a run."""
        return await current_backend().batch_trigger_and_wait(_entries(items), {})

    async def retrieve(self, batch_id: str) -> BatchInfo:
        """A batch and its run ids."""
        return await current_backend().retrieve_batch(batch_id)


batch = _Batch()
