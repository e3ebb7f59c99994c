"""Runs as readers see them: ``runs.retrieve`` / ``runs.list`` objects, attempts and events.

Built from store rows by the local engine, or from the HTTP API's JSON by the remote client;
either way the SDK, the CLI, the server and the MCP server read the same object.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.jsonutil import dumps, loads
from shipyard.machines import MACHINES
from shipyard.models.handles import Result, TaskRunError
from shipyard.records import AttemptRecord, RunEventRecord, RunRecord
from shipyard.statuses import RunStatus

__all__ = ["Attempt", "Run", "RunEvent", "RunPage", "RunStats", "error_of", "result_of"]

_FLAGS = (
    "is_queued",
    "is_executing",
    "is_waiting",
    "is_completed",
    "is_success",
    "is_failed",
    "is_cancelled",
)


def to_datetime(ms: int | None) -> datetime.datetime | None:
    """Epoch milliseconds as an aware UTC datetime (None stays None)."""
    if ms is None:
        return None
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)


def _error(text: str | None) -> TaskRunError | None:
    data = loads(text)
    if not isinstance(data, dict) or not data:
        return None
    code = data.get("code")
    return TaskRunError(
        name=str(data.get("name", "Error")),
        message=str(data.get("message", "")),
        stack=str(data.get("stack", "")),
        code=str(code) if code is not None else None,
    )


def error_of(run: RunRecord) -> TaskRunError | None:
    """The run's recorded error as a :class:`TaskRunError`."""
    return _error(run.error)


def result_of(run: RunRecord) -> Result[Any]:
    """A finished run as a :class:`Result`."""
    return final_result(run.id, run.task_id, run.status, run.output, run.error)


def final_result(
    run_id: str, task_id: str, status: str, output: str | None, error: str | None
) -> Result[Any]:
    """A run that ended with ``status`` and the stored ``output`` or ``error`` (JSON text) as a
    :class:`Result`."""
    if status == RunStatus.COMPLETED:
        return Result(ok=True, id=run_id, task_identifier=task_id, output=loads(output))
    found = _error(error) or TaskRunError(name=status, message=f"Run ended {status}.")
    return Result(ok=False, id=run_id, task_identifier=task_id, error=found)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt of a run."""

    number: int
    status: str
    started_at: datetime.datetime | None
    finished_at: datetime.datetime | None
    error: TaskRunError | None

    @classmethod
    def from_record(cls, record: AttemptRecord) -> Attempt:
        """Build from a stored attempt row."""
        return cls(
            number=record.number,
            status=record.status,
            started_at=to_datetime(record.started_at),
            finished_at=to_datetime(record.finished_at),
            error=_error(record.error),
        )


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One entry of a run's event log: a log line, a span, a metadata, tag or status change.

    ``id`` is the change feed's cursor (monotonic); ``attributes`` is decoded JSON.
    """

    id: int
    run_id: str
    ts: datetime.datetime
    kind: str
    level: str | None
    message: str
    attributes: Any

    @classmethod
    def from_record(cls, record: RunEventRecord) -> RunEvent:
        """Build from a stored event row."""
        return cls(
            id=record.id,
            run_id=record.run_id,
            ts=to_datetime(record.ts) or datetime.datetime.now(datetime.UTC),
            kind=record.kind,
            level=record.level,
            message=record.message,
            attributes=loads(record.attributes),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for the CLI and tools: ``id`` (the cursor), ``run_id``, ``ts``
        (ISO 8601), ``kind``, ``level``, ``message`` and ``attributes``."""
        return {
            "id": self.id,
            "run_id": self.run_id,
            "ts": self.ts.isoformat(),
            "kind": self.kind,
            "level": self.level,
            "message": self.message,
            "attributes": self.attributes,
        }


@dataclass(frozen=True, slots=True)
class Run:
    """A run as ``runs.retrieve`` returns it (Trigger.dev's fields, in snake_case)."""

    id: str
    status: RunStatus
    task_identifier: str
    idempotency_key: str | None
    version: str | None
    tags: tuple[str, ...]
    metadata: dict[str, Any]
    is_test: bool
    created_at: datetime.datetime
    updated_at: datetime.datetime
    started_at: datetime.datetime | None
    finished_at: datetime.datetime | None
    delayed_until: datetime.datetime | None
    ttl: int | None
    expired_at: datetime.datetime | None
    cost_in_cents: float
    base_cost_in_cents: float
    duration_ms: int
    depth: int
    trigger_function: str
    batch_id: str | None
    parent_id: str | None
    root_id: str | None
    payload: Any
    output: Any
    error: TaskRunError | None
    attempt_count: int
    max_attempts: int | None
    queue: str = ""
    concurrency_key: str | None = None
    machine: str | None = None
    priority: float = 0.0
    schedule_id: str | None = None
    attempts: tuple[Attempt, ...] = ()

    @property
    def is_queued(self) -> bool:
        """DELAYED, PENDING_VERSION or QUEUED."""
        return self.status.is_queued

    @property
    def is_executing(self) -> bool:
        """DEQUEUED or EXECUTING."""
        return self.status.is_executing

    @property
    def is_waiting(self) -> bool:
        """WAITING."""
        return self.status.is_waiting

    @property
    def is_completed(self) -> bool:
        """In a final status."""
        return self.status.is_completed

    @property
    def is_success(self) -> bool:
        """COMPLETED."""
        return self.status.is_success

    @property
    def is_failed(self) -> bool:
        """FAILED, CRASHED, SYSTEM_FAILURE, EXPIRED or TIMED_OUT."""
        return self.status.is_failed

    @property
    def is_cancelled(self) -> bool:
        """CANCELED."""
        return self.status.is_cancelled

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (datetimes as ISO strings), for the CLI and tools."""
        data: dict[str, Any] = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["status"] = str(self.status)
        data["error"] = _error_dict(self.error)
        data["attempts"] = [
            {
                "number": a.number,
                "status": a.status,
                "started_at": a.started_at,
                "finished_at": a.finished_at,
                "error": _error_dict(a.error),
            }
            for a in self.attempts
        ]
        for flag in _FLAGS:
            data[flag] = getattr(self, flag)
        # Values were decoded with the depth limit already; the run wraps them a level deeper.
        decoded: dict[str, Any] = loads(dumps(data, max_depth=None), max_depth=None)
        return decoded

    @classmethod
    def from_record(
        cls, record: RunRecord, attempts: Sequence[AttemptRecord] = (), now_ms: int | None = None
    ) -> Run:
        """Build from a stored row (and its attempts); ``now_ms`` times a running run."""
        status = RunStatus(record.status)
        end = record.finished_at or now_ms or record.updated_at
        duration = max(0, end - record.started_at) if record.started_at else 0
        preset = MACHINES.get(record.machine or "small-1x")
        cost = round(duration * preset.cents_per_ms, 6) if preset else 0.0
        return cls(
            id=record.id,
            status=status,
            task_identifier=record.task_id,
            idempotency_key=record.idempotency_key,
            version=record.version,
            tags=tuple(loads(record.tags) or ()),
            # A value stored before the depth limit existed reads as a marker, not a crash.
            metadata=loads(record.metadata, too_deep="marker") or {},
            is_test=bool(record.is_test),
            created_at=to_datetime(record.created_at) or _epoch(),
            updated_at=to_datetime(record.updated_at) or _epoch(),
            started_at=to_datetime(record.started_at),
            finished_at=to_datetime(record.finished_at),
            delayed_until=to_datetime(record.delay_until),
            ttl=record.ttl_ms,
            expired_at=to_datetime(record.expired_at),
            cost_in_cents=cost,
            base_cost_in_cents=0.0,
            duration_ms=duration,
            depth=record.depth,
            trigger_function=record.trigger_function,
            batch_id=record.batch_id,
            parent_id=record.parent_run_id,
            root_id=record.root_run_id,
            payload=loads(record.payload, too_deep="marker"),
            output=loads(record.output, too_deep="marker"),
            error=error_of(record),
            attempt_count=record.attempt_number,
            max_attempts=record.max_attempts,
            queue=record.queue,
            concurrency_key=record.concurrency_key,
            machine=record.machine,
            priority=record.priority_ms / 1000,
            schedule_id=record.schedule_id,
            attempts=tuple(Attempt.from_record(a) for a in attempts),
        )


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of runs, newest first; pass ``next_cursor`` to get the next page."""

    items: tuple[Run, ...] = ()
    next_cursor: str | None = None


def _epoch() -> datetime.datetime:
    return datetime.datetime.fromtimestamp(0, tz=datetime.UTC)


def _error_dict(error: TaskRunError | None) -> dict[str, str] | None:
    if error is None:
        return None
    data = {"name": error.name, "message": error.message, "stack": error.stack}
    if error.code is not None:
        data["code"] = error.code
    return data


@dataclass(frozen=True, slots=True)
class RunStats:
    """Runs created per time window, by status: ``counts[i]`` maps each status to how many
    runs created in ``[start + i × bucket_ms, start + (i + 1) × bucket_ms)`` have it now."""

    start: datetime.datetime
    bucket_ms: int
    counts: tuple[dict[str, int], ...]

    @property
    def total(self) -> int:
        """Runs created in the whole period."""
        return sum(sum(c.values()) for c in self.counts)
