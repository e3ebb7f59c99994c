"""Example values for the wire model tests: Shipyard's own run, token and queue objects, and
request bodies exactly as @trigger.dev/sdk 4.8.3 sent them (captured from its requests)."""

from __future__ import annotations

import datetime
from typing import Any

from shipyard.errors import WaitpointTimeoutError
from shipyard.models.handles import TaskRunError
from shipyard.models.queues import QueueInfo
from shipyard.models.runs import Attempt, Run
from shipyard.models.tokens import WaitTokenInfo
from shipyard.records import RunEventRecord
from shipyard.statuses import RunStatus

NOW = datetime.datetime(2025, 1, 2, 3, 4, 5, 678_901, tzinfo=datetime.UTC)
NOW_TEXT = "2025-01-02T03:04:05.678Z"

# tasks.trigger("hello", {to, when}, {tags, ttl, idempotencyKey: "order-1", queue: "emails",
# concurrencyKey: 7, delay, maxAttempts, machine, priority, metadata, debounce}) outside a task.
SDK_TRIGGER_BODY: dict[str, Any] = {
    "payload": '{"json":{"to":"a@b.c","when":"2025-01-01"}}',
    "options": {
        "queue": {"name": "emails"},
        "concurrencyKey": 7,
        "payloadType": "application/super+json",
        "payloadSize": 43,
        "idempotencyKey": "0bafe22156d2698c143b86040446d366ead863ba600d5c924f3d15c786ef4057",
        "idempotencyKeyOptions": {"key": "order-1", "scope": "run"},
        "delay": "5m",
        "ttl": "10m",
        "tags": ["x"],
        "maxAttempts": 2,
        "metadata": {"k": 1},
        "machine": "small-2x",
        "priority": 10,
        "debounce": {"key": "d", "delay": "5s"},
    },
}

# tasks.trigger("hello", "just a string") and tasks.trigger("hello") (no payload).
SDK_TRIGGER_STRING_BODY = {
    "payload": "just a string",
    "options": {"payloadType": "text/plain", "payloadSize": 13},
}
SDK_TRIGGER_EMPTY_BODY = {"options": {"payloadType": "application/json", "payloadSize": 0}}

# The query of runs.list({status: ["COMPLETED", "FAILED"], taskIdentifier: "hello",
# tag: ["a", "b"], from: 1700000000000, limit: 5}), second page.
SDK_LIST_QUERY = [
    ("filter[status]", "COMPLETED,FAILED"),
    ("filter[taskIdentifier]", "hello"),
    ("filter[tag]", "a,b"),
    ("filter[createdAt][from]", "1700000000000"),
    ("page[size]", "5"),
    ("page[after]", "run_1"),
]


def make_run(**overrides: Any) -> Run:
    """A finished run with one attempt; ``overrides`` replace fields."""
    fields: dict[str, Any] = {
        "id": "run_1",
        "status": RunStatus.COMPLETED,
        "task_identifier": "hello",
        "idempotency_key": None,
        "version": None,
        "tags": ("a",),
        "metadata": {"progress": 1},
        "is_test": False,
        "created_at": NOW,
        "updated_at": NOW,
        "started_at": NOW,
        "finished_at": NOW,
        "delayed_until": None,
        "ttl": 600_000,
        "expired_at": None,
        "cost_in_cents": 0.0,
        "base_cost_in_cents": 0.0,
        "duration_ms": 12,
        "depth": 0,
        "trigger_function": "trigger",
        "batch_id": None,
        "parent_id": None,
        "root_id": None,
        "payload": {"x": None},
        "output": {"ok": True},
        "error": None,
        "attempt_count": 1,
        "max_attempts": 3,
        "attempts": (Attempt(1, "COMPLETED", NOW, NOW, None),),
    }
    fields.update(overrides)
    return Run(**fields)


def failed_run() -> Run:
    """A failed run with two attempts and an error."""
    error = TaskRunError("ValueError", "boom", "Traceback …")
    return make_run(
        id="run_failed",
        status=RunStatus.FAILED,
        output=None,
        error=error,
        attempt_count=2,
        attempts=(
            Attempt(1, "FAILED", NOW, NOW, error),
            Attempt(2, "FAILED", NOW, NOW, error),
        ),
    )


def waiting_run() -> Run:
    """A run still waiting: no finish time, no output."""
    return make_run(
        id="run_waiting",
        status=RunStatus.WAITING,
        finished_at=None,
        output=None,
        ttl=None,
        metadata={},
        attempts=(Attempt(1, "EXECUTING", NOW, None, None),),
    )


def token_info(status: str = "COMPLETED") -> WaitTokenInfo:
    """A wait token in ``status`` (times in epoch ms, as the SDK reports them)."""
    completed = status == "COMPLETED"
    return WaitTokenInfo(
        id="waitpoint_1",
        url="http://127.0.0.1:3030/api/v1/waitpoints/tokens/waitpoint_1/callback/abc",
        status=status,
        completed_at=1_735_787_045_678 if completed else None,
        timeout_at=1_735_790_000_000 if status == "TIMED_OUT" else None,
        idempotency_key=None,
        idempotency_key_expires_at=None,
        tags=("t",),
        created_at=1_735_787_000_000,
        output={"approved": True} if completed else None,
        error=WaitpointTimeoutError("Token timed out.") if status == "TIMED_OUT" else None,
    )


def queue_info(name: str = "task/hello", **overrides: Any) -> QueueInfo:
    """A queue as ``queues.retrieve`` reports it."""
    fields: dict[str, Any] = {
        "name": name,
        "concurrency_limit": 5,
        "limit_override": None,
        "effective_limit": 5,
        "paused": False,
        "running": 1,
        "queued": 2,
    }
    fields.update(overrides)
    return QueueInfo(**fields)


def event_record(event_id: int, kind: str = "log") -> RunEventRecord:
    """A stored run event."""
    return RunEventRecord(
        id=event_id,
        run_id="run_1",
        ts=1_735_787_045_678,
        kind=kind,
        level="info" if kind == "log" else None,
        message=f"event {event_id}",
        attributes='{"url": "https://example.com"}' if kind == "log" else None,
    )
