"""Batches across tasks: ``batch.trigger([...])`` and ``batch.retrieve(id)``.

Example::

    handle = await batch.trigger([
        {"id": "send-email", "payload": {"to": "a@example.com"}},
        {"id": "resize-image", "payload": {"url": "..."}, "options": {"tags": ["img"]}},
    ])
    info = await batch.retrieve(handle.batch_id)
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.errors import BatchNotFoundError, ValidationError
from shipyard.sdk.handles import BatchHandle, BatchResult
from shipyard.store.protocol import BatchGetParams


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """``batch.retrieve``: the batch's processing status and its run ids in input order."""

    id: str
    status: str
    run_count: int
    runs: tuple[str, ...]
    created_at: datetime.datetime
    completed_at: datetime.datetime | None


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

    async def trigger(self, items: Sequence[Mapping[str, Any]], **options: Any) -> BatchHandle:
        """Trigger runs of several tasks (``{"id", "payload", "options"}`` each, ≤ 1,000)."""
        from shipyard.engine.registry import get_engine

        return await get_engine().batch_trigger(_entries(items), options)

    async def trigger_and_wait(self, items: Sequence[Mapping[str, Any]]) -> BatchResult:
        """Trigger runs of several tasks and wait for all; only inside a run."""
        from shipyard.engine.registry import get_engine

        return await get_engine().batch_trigger_and_wait(_entries(items), {})

    async def retrieve(self, batch_id: str) -> BatchInfo:
        """A batch and its run ids."""
        from shipyard.engine.registry import get_engine

        engine = get_engine()
        await engine.start()
        record = await engine.store.batch_get(BatchGetParams(engine.environment, batch_id))
        if record is None:
            raise BatchNotFoundError(f"Batch {batch_id} not found.", batch_id=batch_id)
        return BatchInfo(
            id=record.id,
            status=record.status,
            run_count=record.run_count,
            runs=tuple(json.loads(record.run_ids)),
            created_at=datetime.datetime.fromtimestamp(record.created_at / 1000, datetime.UTC),
            completed_at=(
                datetime.datetime.fromtimestamp(record.completed_at / 1000, datetime.UTC)
                if record.completed_at
                else None
            ),
        )


batch = _Batch()
