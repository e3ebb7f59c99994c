"""Parameter rows shared by every backend's named queries."""

from __future__ import annotations

import json
from typing import Any

from shipyard.store.protocol import RunInsertParams
from shipyard.store.records import NewEvent


def insert_row(p: RunInsertParams) -> dict[str, Any]:
    """The ``run_insert`` parameters of a run (``sort_key`` = queue time − priority)."""
    return {
        "id": p.id,
        "environment": p.environment,
        "task_id": p.task_id,
        "status": p.status,
        "payload": p.payload,
        "metadata": p.metadata,
        "tags": json.dumps(list(p.tags)),
        "queue": p.queue,
        "concurrency_key": p.concurrency_key,
        "priority_ms": p.priority_ms,
        "queued_at": p.queued_at,
        "sort_key": p.queued_at - p.priority_ms,
        "available_at": p.available_at if p.available_at is not None else p.queued_at,
        "delay_until": p.delay_until,
        "ttl_ms": p.ttl_ms,
        "max_attempts": p.max_attempts,
        "idempotency_key": p.idempotency_key,
        "idempotency_key_expires_at": p.idempotency_key_expires_at,
        "parent_run_id": p.parent_run_id,
        "root_run_id": p.root_run_id,
        "depth": p.depth,
        "batch_id": p.batch_id,
        "batch_index": p.batch_index,
        "machine": p.machine,
        "max_duration_s": p.max_duration_s,
        "trigger_function": p.trigger_function,
        "is_test": int(p.is_test),
        "created_at": p.created_at,
    }


def event_row(e: NewEvent) -> dict[str, Any]:
    """The ``run_event_insert`` parameters of an event."""
    return {
        "run_id": e.run_id,
        "ts": e.ts,
        "kind": e.kind,
        "level": e.level,
        "message": e.message,
        "attributes": e.attributes,
    }
