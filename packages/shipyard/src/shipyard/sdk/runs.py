"""The runs API: retrieve, list, cancel, replay and poll runs.

Example::

    run = await runs.retrieve(handle.id)
    if run.is_completed: print(run.output)
    async for run in runs.list(status=["FAILED"], task_identifier="send-email"):
        ...
    await runs.cancel(handle.id)
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.engine.engine import error_of
from shipyard.engine.runs import RunStatus
from shipyard.errors import RunTimeoutError, ValidationError
from shipyard.jsonutil import loads
from shipyard.records import AttemptRecord, RunRecord
from shipyard.sdk.handles import RunHandle, TaskRunError
from shipyard.store.protocol import AttemptListParams, RunListParams


def _dt(ms: int | None) -> datetime.datetime | None:
    if ms is None:
        return None
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt of a run."""

    number: int
    status: str
    started_at: datetime.datetime | None
    finished_at: datetime.datetime | None
    error: TaskRunError | None


@dataclass(frozen=True, slots=True)
class Run:
    """A run as ``runs.retrieve`` returns it (SEMANTICS §7.3, in snake_case)."""

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
        """JSON-ready form (datetimes as ISO strings), for the CLI and HTTP API."""
        from shipyard.jsonutil import dumps

        data: dict[str, Any] = loads(dumps(_as_dict(self)))
        return data

    @classmethod
    def from_record(
        cls, record: RunRecord, attempts: Sequence[AttemptRecord] = (), now_ms: int | None = None
    ) -> Run:
        """Build from a stored row (and its attempts)."""
        status = RunStatus(record.status)
        end = record.finished_at or now_ms or record.updated_at
        duration = max(0, end - record.started_at) if record.started_at else 0
        return cls(
            id=record.id,
            status=status,
            task_identifier=record.task_id,
            idempotency_key=record.idempotency_key,
            version=record.version,
            tags=tuple(loads(record.tags)),
            metadata=loads(record.metadata) or {},
            is_test=bool(record.is_test),
            created_at=_dt(record.created_at),  # type: ignore[arg-type]
            updated_at=_dt(record.updated_at),  # type: ignore[arg-type]
            started_at=_dt(record.started_at),
            finished_at=_dt(record.finished_at),
            delayed_until=_dt(record.delay_until),
            ttl=record.ttl_ms,
            expired_at=_dt(record.expired_at),
            cost_in_cents=0.0,
            base_cost_in_cents=0.0,
            duration_ms=duration,
            depth=record.depth,
            trigger_function=record.trigger_function,
            batch_id=record.batch_id,
            parent_id=record.parent_run_id,
            root_id=record.root_run_id,
            payload=loads(record.payload),
            output=loads(record.output),
            error=error_of(record),
            attempt_count=record.attempt_number,
            max_attempts=record.max_attempts,
            queue=record.queue,
            concurrency_key=record.concurrency_key,
            attempts=tuple(
                Attempt(
                    number=a.number,
                    status=a.status,
                    started_at=_dt(a.started_at),
                    finished_at=_dt(a.finished_at),
                    error=_attempt_error(a.error),
                )
                for a in attempts
            ),
        )


def _attempt_error(text: str | None) -> TaskRunError | None:
    data = loads(text)
    if not data:
        return None
    return TaskRunError(str(data.get("name")), str(data.get("message")), str(data.get("stack", "")))


def _as_dict(run: Run) -> dict[str, Any]:
    data = {name: getattr(run, name) for name in run.__dataclass_fields__}
    data["status"] = str(run.status)
    data["error"] = (
        {"name": run.error.name, "message": run.error.message, "stack": run.error.stack}
        if run.error
        else None
    )
    data["attempts"] = [
        {
            "number": a.number,
            "status": a.status,
            "started_at": a.started_at,
            "finished_at": a.finished_at,
            "error": ({"name": a.error.name, "message": a.error.message} if a.error else None),
        }
        for a in run.attempts
    ]
    for flag in (
        "is_queued",
        "is_executing",
        "is_waiting",
        "is_completed",
        "is_success",
        "is_failed",
        "is_cancelled",
    ):
        data[flag] = getattr(run, flag)
    return data


def _run_id(run: str | RunHandle) -> str:
    return run.id if isinstance(run, RunHandle) else run


def _to_ms(value: datetime.datetime | int | float | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return int(value.timestamp() * 1000)
    return int(value)


class _Runs:
    """Retrieve, list, cancel, replay and poll runs."""

    async def retrieve(self, run: str | RunHandle) -> Run:
        """The full run, with payload, output, error and attempts."""
        from shipyard.engine.registry import get_engine

        engine = get_engine()
        record = await engine.get_run(_run_id(run))
        attempts = await engine.store.attempt_list(AttemptListParams(engine.environment, record.id))
        return Run.from_record(record, attempts, engine.clock())

    async def list(
        self,
        *,
        status: str | Sequence[str] | None = None,
        task_identifier: str | Sequence[str] | None = None,
        tag: str | None = None,
        batch: str | None = None,
        from_: datetime.datetime | int | None = None,
        to: datetime.datetime | int | None = None,
        limit: int = 50,
    ) -> AsyncIterator[Run]:
        """Runs newest first, fetched ``limit`` at a time as you iterate.

        ``from_``/``to`` bound ``created_at`` (datetime or epoch ms).
        """
        from shipyard.engine.registry import get_engine

        if not 1 <= limit <= 1000:
            raise ValidationError("limit must be between 1 and 1000.", limit=limit)
        statuses = [status] if isinstance(status, str) else list(status or [])
        for s in statuses:
            try:
                RunStatus(s)
            except ValueError:
                raise ValidationError(
                    f"Unknown status {s!r}; one of {', '.join(RunStatus)}.", status=s
                ) from None
        task_ids = [task_identifier] if isinstance(task_identifier, str) else task_identifier
        engine = get_engine()
        await engine.start()
        cursor: str | None = None
        now = engine.clock()
        while True:
            page = await engine.store.run_list(
                RunListParams(
                    environment=engine.environment,
                    limit=limit,
                    cursor=cursor,
                    statuses=statuses,
                    task_ids=list(task_ids or []),
                    tag=tag,
                    batch_id=batch,
                    created_from=_to_ms(from_),
                    created_to=_to_ms(to),
                )
            )
            for record in page.items:
                yield Run.from_record(record, now_ms=now)
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def cancel(self, run: str | RunHandle) -> Run:
        """Cancel a run and its non-final children (an executing attempt gets on_cancel)."""
        from shipyard.engine.registry import get_engine

        await get_engine().cancel(_run_id(run))
        return await self.retrieve(run)

    async def reschedule(self, run: str | RunHandle, *, delay: Any) -> Run:
        """Move a DELAYED run to ``delay`` (duration from now, datetime or ISO string)."""
        from shipyard.engine.registry import get_engine

        await get_engine().reschedule(_run_id(run), delay)
        return await self.retrieve(run)

    async def replay(self, run: str | RunHandle) -> RunHandle:
        """A new run with the same task, payload and tags."""
        from shipyard.engine.registry import get_engine

        return await get_engine().replay(_run_id(run))

    async def poll(
        self, run: str | RunHandle, *, poll_interval_ms: int = 1000, max_attempts: int = 500
    ) -> Run:
        """Poll until the run is finished (at most ``max_attempts`` polls)."""
        for _ in range(max_attempts):
            current = await self.retrieve(run)
            if current.is_completed:
                return current
            await asyncio.sleep(poll_interval_ms / 1000)
        raise RunTimeoutError(
            f"Run {_run_id(run)} was not finished after {max_attempts} polls.",
            run_id=_run_id(run),
        )


runs = _Runs()
