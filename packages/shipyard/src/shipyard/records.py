"""Rows as the store returns them: plain data, JSON columns still as text.

The engine decodes JSON lazily (a worker that only needs a run's id and attempt number never
parses its payload), which is why ``payload``, ``output``, ``error``, ``metadata`` and ``tags``
stay strings here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class RunRecord:
    """One row of ``runs``. Times are epoch milliseconds."""

    id: str
    environment: str
    task_id: str
    status: str
    payload: str | None
    output: str | None
    error: str | None
    metadata: str
    tags: str
    queue: str
    concurrency_key: str | None
    priority_ms: int
    queued_at: int
    sort_key: int
    available_at: int
    delay_until: int | None
    ttl_ms: int | None
    attempt_number: int
    max_attempts: int | None
    lease_owner: str | None
    lease_expires_at: int | None
    idempotency_key: str | None
    idempotency_key_expires_at: int | None
    debounce_key: str | None
    parent_run_id: str | None
    root_run_id: str | None
    depth: int
    batch_id: str | None
    batch_index: int | None
    schedule_id: str | None
    completion_waitpoint_id: str | None
    machine: str | None
    max_duration_s: int | None
    version: str | None
    trigger_function: str
    is_test: int
    created_at: int
    updated_at: int
    started_at: int | None
    finished_at: int | None
    expired_at: int | None
    ttl_expires_at: int | None = None
    # 'RESUMING' when a waiting run is queued to resume, 'RESUMED' once claimed for it.
    resume_state: str | None = None

    @classmethod
    def from_row(cls, names: list[str], row: tuple[Any, ...]) -> RunRecord:
        """Build from a cursor row; extra columns (a later migration) are ignored."""
        values = dict(zip(names, row, strict=True))
        return cls(**{name: values[name] for name in _RUN_FIELDS})


_RUN_FIELDS = tuple(RunRecord.__dataclass_fields__)


@dataclass(slots=True)
class AttemptRecord:
    """One row of ``attempts``: an execution of a run by a worker."""

    run_id: str
    number: int
    status: str
    worker_id: str
    started_at: int
    finished_at: int | None
    error: str | None


@dataclass(slots=True)
class BatchRecord:
    """One row of ``batches``."""

    id: str
    environment: str
    status: str
    run_count: int
    idempotency_key: str | None
    created_at: int
    completed_at: int | None
    run_ids: str = "[]"


@dataclass(slots=True)
class RunEventRecord:
    """One entry of the change feed: a log line, span, metadata change, tag or status change."""

    id: int
    run_id: str
    ts: int
    kind: str
    level: str | None
    message: str
    attributes: str | None


@dataclass(slots=True)
class TaskRecord:
    """A task as a worker registered it: what triggering by id checks against."""

    environment: str
    id: str
    file_path: str
    queue: str
    max_attempts: int
    retry: str | None
    max_duration_s: int | None
    machine: str | None
    description: str | None
    payload_schema: str | None
    worker_id: str
    updated_at: int
    ttl_ms: int | None = None


@dataclass(slots=True)
class QueueRecord:
    """A queue with its limits and how many of its runs are executing and queued."""

    environment: str
    name: str
    concurrency_limit: int | None
    limit_override: int | None
    paused: int
    created_at: int
    updated_at: int
    running: int = 0
    queued: int = 0


@dataclass(slots=True)
class WorkerRecord:
    """A worker process and where to ring it when runs become ready."""

    id: str
    environment: str
    host: str
    pid: int
    doorbell_port: int | None
    started_at: int
    heartbeat_at: int
    stopped_at: int | None
    # The version of the task code it runs (SHIPYARD_VERSION or a hash of its task files).
    version: str | None = None


@dataclass(slots=True)
class VersionRecord:
    """A version of the task code that workers of an environment registered (``versions``).

    ``task_ids`` is a JSON array; ``live_workers`` counts its workers live at the time asked;
    ``last_heartbeat_at`` is its workers' latest heartbeat (None: none yet).
    """

    environment: str
    version: str
    task_ids: str
    created_at: int
    updated_at: int
    live_workers: int = 0
    last_heartbeat_at: int | None = None


@dataclass(slots=True)
class NewEvent:
    """A run event to append (the store assigns its id)."""

    run_id: str
    ts: int
    kind: str
    message: str
    level: str | None = None
    attributes: str | None = None


@dataclass(slots=True)
class Page:
    """One page of a cursor-paginated listing."""

    items: list[RunRecord] = field(default_factory=list)
    next_cursor: str | None = None


@dataclass(slots=True)
class WaitpointRecord:
    """One row of ``waitpoints``: a durable wait's request and, once resolved, its result.

    ``kind`` is DATETIME, MANUAL (a token), RUN or BATCH; ``status`` PENDING, COMPLETED or
    TIMED_OUT. ``output`` is JSON text (an error when ``output_is_error``).
    """

    id: str
    environment: str
    kind: str
    status: str
    completes_at: int | None
    timeout_at: int | None
    idempotency_key: str | None
    idempotency_key_expires_at: int | None
    tags: str
    output: str | None
    output_is_error: int
    target_id: str | None
    created_at: int
    completed_at: int | None


@dataclass(slots=True)
class WaitpointPage:
    """One page of tokens, newest first; listed tokens carry no ``output`` (it stays None).

    ``next_cursor`` is the id to pass as the next page's cursor, None on the last page.
    """

    items: list[WaitpointRecord] = field(default_factory=list)
    next_cursor: str | None = None


WAITPOINT_COLUMNS = (
    "id, environment, kind, status, completes_at, timeout_at, idempotency_key, "
    "idempotency_key_expires_at, tags, output, output_is_error, target_id, created_at, "
    "completed_at"
)
