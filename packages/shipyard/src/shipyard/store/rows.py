"""Parameter rows shared by every backend's named queries."""

from __future__ import annotations

import json
from typing import Any

from shipyard.records import NewEvent, RunRecord, WaitpointRecord
from shipyard.store.protocol import (
    RateTakeParams,
    RunInsertParams,
    WaitpointCreateParams,
    WaitpointListParams,
)


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
        "debounce_key": p.debounce_key,
        "ttl_expires_at": p.ttl_expires_at,
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


def idempotency_key_released(existing: RunRecord, params: RunInsertParams) -> bool:
    """Whether the run holding a key lets a new run take it (key expired, or run failed)."""
    expired = (
        existing.idempotency_key_expires_at is not None
        and existing.idempotency_key_expires_at <= params.created_at
    )
    return expired or existing.status in params.idempotency_release_statuses


def debounce_overflows(existing: RunRecord, params: RunInsertParams) -> bool:
    """Whether pushing the debounced run would pass ``max_delay`` from its creation."""
    return (
        params.debounce_max_delay_ms is not None
        and params.debounce_delay_until is not None
        and params.debounce_delay_until > existing.created_at + params.debounce_max_delay_ms
    )


def debounce_push_row(existing: RunRecord, params: RunInsertParams) -> dict[str, Any]:
    """The ``run_debounce_push`` parameters for a trigger that lands on a debounced run."""
    return {
        "id": existing.id,
        "delay_until": params.debounce_delay_until,
        "trailing": int(params.debounce_trailing),
        "payload": params.payload,
        "metadata": params.metadata,
        "tags": json.dumps(list(params.tags)),
        "max_attempts": params.max_attempts,
        "max_duration_s": params.max_duration_s,
        "machine": params.machine,
        "now": params.created_at,
    }


def take_tokens(
    tokens: float | None, refilled_at: int | None, params: RateTakeParams
) -> tuple[float, int]:
    """Refill a token bucket to ``params.now`` and take ``params.count`` tokens.

    Returns the tokens left and 0, or the unchanged tokens and how many milliseconds until
    enough have refilled. A bucket seen for the first time starts full.
    """
    rate = params.refill_tokens / params.refill_interval_ms  # tokens per millisecond
    if tokens is None or refilled_at is None:
        current = float(params.bucket_size)
    else:
        elapsed = max(0, params.now - refilled_at)
        current = min(float(params.bucket_size), tokens + elapsed * rate)
    if current >= params.count:
        return current - params.count, 0
    missing = params.count - current
    return current, max(1, int(missing / rate + 0.999))


def waitpoint_values(params: WaitpointCreateParams) -> dict[str, Any]:
    """The bound values of a waitpoint insert."""
    return {
        "id": params.id,
        "environment": params.environment,
        "kind": params.kind,
        "now": params.now,
        "completes_at": params.completes_at,
        "timeout_at": params.timeout_at,
        "idempotency_key": params.idempotency_key,
        "idempotency_key_expires_at": params.idempotency_key_expires_at,
        "tags": json.dumps(list(params.tags)),
        "target_id": params.target_id,
    }


def filter_waitpoints(
    found: list[WaitpointRecord], params: WaitpointListParams
) -> list[WaitpointRecord]:
    """Tokens matching the statuses and carrying every tag, at most ``limit``."""
    wanted = set(params.tags)
    return [
        w
        for w in found
        if (not params.statuses or w.status in params.statuses)
        and wanted <= set(json.loads(w.tags))
    ][: params.limit]
