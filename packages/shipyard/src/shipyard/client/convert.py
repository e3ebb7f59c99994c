"""The HTTP API's JSON (:mod:`shipyard.schemas`) back into the values the in-process engine
returns (:mod:`shipyard.models`), so SDK callers see the same objects either way.

What the wire does not carry is filled the way a reader of the in-process object would least
be misled: a run's ``queue``, ``max_attempts``, ``concurrency_key`` and ``priority``, and a
task's ``retry`` options are not in the API's bodies (empty / None / 0 / ``{}`` here).
"""

from __future__ import annotations

import datetime
from typing import Any

from shipyard.durations import parse_duration_ms
from shipyard.errors import WaitpointTimeoutError
from shipyard.jsonutil import loads
from shipyard.models.batches import BatchInfo
from shipyard.models.handles import TaskRunError
from shipyard.models.queues import QueueInfo
from shipyard.models.runs import Attempt, Run, RunEvent
from shipyard.models.schedules import Schedule, ScheduleGenerator, ScheduleList, SchedulePagination
from shipyard.models.tasks import RegisteredTask
from shipyard.models.tokens import WaitTokenInfo
from shipyard.schemas.batches import RetrieveBatchResponse
from shipyard.schemas.events import RunEvent as WireRunEvent
from shipyard.schemas.queues import TASK_QUEUE_PREFIX, QueueItem
from shipyard.schemas.runs import (
    ListRunItem,
    RetrieveRunResponse,
    RunAttempt,
    SerializedError,
)
from shipyard.schemas.schedules import ListSchedulesResponse, ScheduleObject
from shipyard.schemas.tasks import TaskItem
from shipyard.schemas.tokens import RetrieveWaitpointTokenResponse, WaitpointTokenItem
from shipyard.statuses import RunStatus

__all__ = [
    "batch_info",
    "queue_info",
    "registered_task",
    "run_event",
    "run_from_item",
    "run_from_retrieve",
    "schedule",
    "schedule_list",
    "token_info",
]


def _error(error: SerializedError | None) -> TaskRunError | None:
    if error is None:
        return None
    return TaskRunError(
        name=error.name or "Error", message=error.message, stack=error.stack_trace or ""
    )


def _attempt(attempt: RunAttempt) -> Attempt:
    return Attempt(
        number=attempt.number,
        status=attempt.status,
        started_at=attempt.started_at,
        finished_at=attempt.finished_at,
        error=_error(attempt.error),
    )


def _ttl_ms(ttl: str | None) -> int | None:
    return parse_duration_ms(ttl) or None if ttl else None


def _common(body: ListRunItem | RetrieveRunResponse) -> dict[str, Any]:
    return {
        "id": body.id,
        "status": RunStatus(body.status),
        "task_identifier": body.task_identifier,
        "idempotency_key": body.idempotency_key,
        "version": body.version,
        "tags": tuple(body.tags),
        "metadata": dict(body.metadata or {}),
        "is_test": body.is_test,
        "created_at": body.created_at,
        "updated_at": body.updated_at,
        "started_at": body.started_at,
        "finished_at": body.finished_at,
        "delayed_until": body.delayed_until,
        "ttl": _ttl_ms(body.ttl),
        "expired_at": body.expired_at,
        "cost_in_cents": body.cost_in_cents,
        "base_cost_in_cents": body.base_cost_in_cents,
        "duration_ms": int(body.duration_ms),
        "max_attempts": None,
    }


def run_from_retrieve(body: RetrieveRunResponse) -> Run:
    """A :class:`Run` from ``GET /api/v3/runs/{id}`` (payload, output, error, attempts)."""
    related = body.related_runs
    return Run(
        **_common(body),
        depth=body.depth,
        trigger_function=body.trigger_function,
        batch_id=body.batch_id,
        parent_id=related.parent.id if related.parent else None,
        # A root run with children is its own root on the wire; the engine's root_id is None.
        root_id=related.root.id if related.root and related.root.id != body.id else None,
        payload=body.payload,
        output=body.output,
        error=_error(body.error),
        attempt_count=body.attempt_count,
        attempts=tuple(_attempt(a) for a in body.attempts or ()),
    )


def run_from_item(body: ListRunItem) -> Run:
    """A :class:`Run` from one item of ``GET /api/v1/runs`` (no payload, output or attempts:
    retrieve the run for those)."""
    return Run(
        **_common(body),
        depth=0,
        trigger_function="trigger",
        batch_id=None,
        parent_id=None,
        root_id=None,
        payload=None,
        output=None,
        error=None,
        attempt_count=0,
    )


def run_event(event: WireRunEvent) -> RunEvent:
    """A :class:`RunEvent` from one event of ``GET /api/v1/runs/{id}/events``."""
    return RunEvent(
        id=event.id,
        run_id=event.run_id,
        ts=event.timestamp,
        kind=event.kind,
        level=event.level,
        message=event.message,
        attributes=event.attributes,
    )


def _ms(moment: datetime.datetime | None) -> int | None:
    return None if moment is None else round(moment.timestamp() * 1000)


def token_info(body: WaitpointTokenItem) -> WaitTokenInfo:
    """A :class:`WaitTokenInfo` from the token list or retrieve (retrieve carries the output,
    JSON text on the wire)."""
    output: Any = None
    error: WaitpointTimeoutError | None = None
    if isinstance(body, RetrieveWaitpointTokenResponse) and body.output is not None:
        decoded = loads(body.output)
        if body.output_is_error:
            message = decoded.get("message") if isinstance(decoded, dict) else None
            error = WaitpointTimeoutError(str(message or "The wait token timed out."))
        else:
            output = decoded
    return WaitTokenInfo(
        id=body.id,
        url=body.url,
        status=body.status,
        completed_at=_ms(body.completed_at),
        timeout_at=_ms(body.timeout_at),
        idempotency_key=body.idempotency_key,
        idempotency_key_expires_at=_ms(body.idempotency_key_expires_at),
        tags=tuple(body.tags),
        created_at=_ms(body.created_at) or 0,
        output=output,
        error=error,
    )


def queue_info(item: QueueItem, environment_limit: int) -> QueueInfo:
    """A :class:`QueueInfo` from a queue body. The API does not say the environment's limit,
    which applies to a queue without a limit of its own: ``environment_limit`` stands in."""
    concurrency = item.concurrency
    base = concurrency.base if concurrency is not None else item.concurrency_limit
    override = concurrency.override if concurrency is not None else None
    current = item.concurrency_limit
    effective = current if current is not None else environment_limit
    return QueueInfo(
        name=TASK_QUEUE_PREFIX + item.name if item.type == "task" else item.name,
        concurrency_limit=base,
        limit_override=override,
        effective_limit=min(effective, environment_limit),
        paused=item.paused,
        running=item.running,
        queued=item.queued,
    )


def batch_info(body: RetrieveBatchResponse) -> BatchInfo:
    """A :class:`BatchInfo` from ``GET /api/v1/batches/{id}``."""
    return BatchInfo(
        id=body.id,
        status=body.status,
        run_count=body.run_count,
        runs=tuple(body.runs),
        created_at=body.created_at,
        completed_at=body.processing.completed_at,
    )


def registered_task(item: TaskItem) -> RegisteredTask:
    """A :class:`RegisteredTask` from ``GET /api/v1/tasks`` (retry options are not on the
    wire: ``{}``)."""
    return RegisteredTask(
        id=item.id,
        file_path=item.file_path,
        queue=item.queue,
        max_attempts=item.max_attempts,
        retry={},
        max_duration=item.max_duration,
        machine=item.machine,
        description=item.description,
        payload_schema=dict(item.payload_schema or {}),
        ttl_ms=_ttl_ms(item.ttl),
    )


def schedule(body: ScheduleObject) -> Schedule:
    """A :class:`Schedule` from a schedule route's body (``environments`` is the engine's
    list of names, ``declaredEnvironments`` on the wire)."""
    return Schedule(
        id=body.id,
        type=body.type,
        task=body.task,
        active=body.active,
        deduplication_key=body.deduplication_key,
        external_id=body.external_id,
        generator=ScheduleGenerator(
            expression=body.generator.expression, description=body.generator.description
        ),
        timezone=body.timezone,
        window=body.window,
        next_run=body.next_run,
        next_run_effective_at=body.next_run_effective_at,
        last_run=body.last_run,
        environments=tuple(body.declared_environments),
        environment=body.environment,
        created_at=body.created_at,
        updated_at=body.updated_at,
    )


def schedule_list(body: ListSchedulesResponse) -> ScheduleList:
    """A :class:`ScheduleList` from ``GET /api/v1/schedules``."""
    return ScheduleList(
        data=tuple(schedule(item) for item in body.data),
        pagination=SchedulePagination(
            current_page=body.pagination.current_page,
            total_pages=body.pagination.total_pages,
            count=body.pagination.count,
        ),
    )
