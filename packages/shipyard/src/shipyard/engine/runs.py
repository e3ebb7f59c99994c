"""Reading and steering runs: retrieve, list, events, cancel, reschedule, replay, tags,
idempotency key reset, batches and registered tasks.

Every read the SDK, the CLI, the HTTP server and the MCP server make goes through here and
returns the neutral models (:mod:`shipyard.models`), never store rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shipyard.durations import resolve_time
from shipyard.engine.options import MAX_TAGS, check_text, validate_tags
from shipyard.engine.triggers import TriggerOps
from shipyard.errors import BatchNotFoundError, ValidationError
from shipyard.jsonutil import dumps, loads
from shipyard.models.batches import BatchInfo
from shipyard.models.handles import RunHandle
from shipyard.models.runs import Run, RunEvent, RunPage, RunStats, to_datetime
from shipyard.models.tasks import RegisteredTask, RegisteredVersion
from shipyard.records import NewEvent, RunEventRecord, TaskRecord, WorkerRecord
from shipyard.statuses import FINAL_STATUSES, RunStatus
from shipyard.store.params import (
    AttemptListParams,
    BatchGetParams,
    BatchListParams,
    IdempotencyKeyResetParams,
    ReadyNotifyParams,
    RunCancelParams,
    RunEventsAppendParams,
    RunEventsListParams,
    RunListParams,
    RunRescheduleParams,
    RunStatsParams,
    RunTagsAddParams,
    TaskListParams,
    VersionListParams,
    WorkerListLiveParams,
)

__all__ = ["LIST_LIMIT_MAX", "RunOps"]

LIST_LIMIT_MAX = 1000
_NON_FINAL = frozenset(RunStatus) - FINAL_STATUSES
_CANCELED_ERROR = {"name": "TaskRunCanceled", "message": "The run was canceled.", "stack": ""}


class RunOps(TriggerOps):
    """Runs as readers see them, and the operations that steer them."""

    async def retrieve_run(self, run_id: str) -> Run:
        """The full run, with payload, output, error and attempts."""
        record = await self.get_run(run_id)
        attempts = await self.store.attempt_list(
            AttemptListParams(environment=self.environment, run_id=record.id)
        )
        return Run.from_record(record, attempts, self.now())

    async def list_runs(
        self,
        *,
        statuses: Sequence[str] = (),
        task_ids: Sequence[str] = (),
        tag: str | None = None,
        batch_id: str | None = None,
        created_from: int | None = None,
        created_to: int | None = None,
        parent_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        schedule_id: str | None = None,
    ) -> RunPage:
        """One page of runs, newest first (``cursor``: the previous page's ``next_cursor``;
        ``schedule_id``: only the runs that schedule created; ``parent_id``: only the runs that
        run triggered, its children)."""
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise ValidationError(
                f"limit must be between 1 and {LIST_LIMIT_MAX}; got {limit}.", limit=limit
            )
        for status in statuses:
            try:
                RunStatus(status)
            except ValueError:
                raise ValidationError(
                    f"Unknown status {status!r}; one of {', '.join(RunStatus)}.", status=status
                ) from None
        for value, what in (
            *((t, "task id") for t in task_ids),
            (tag, "tag"),
            (batch_id, "batch id"),
            (parent_id, "parent run id"),
            (cursor, "cursor"),
            (schedule_id, "schedule id"),
        ):
            if value is not None:
                check_text(value, what)
        await self.start()
        page = await self.store.run_list(
            RunListParams(
                environment=self.environment,
                limit=limit,
                cursor=cursor,
                statuses=list(statuses),
                task_ids=list(task_ids),
                tag=tag,
                batch_id=batch_id,
                schedule_id=schedule_id,
                created_from=created_from,
                created_to=created_to,
                parent_run_id=parent_id,
            )
        )
        now = self.now()
        return RunPage(
            items=tuple(Run.from_record(r, now_ms=now) for r in page.items),
            next_cursor=page.next_cursor,
        )

    async def run_stats(self, *, period_ms: int, buckets: int) -> RunStats:
        """How many runs were created in each of ``buckets`` equal windows of the last
        ``period_ms``, by status (their status now)."""
        if not 1 <= buckets <= 1000 or period_ms < buckets:
            raise ValidationError(
                f"Give 1 to 1000 buckets over a period of at least that many ms; got {buckets} "
                f"over {period_ms} ms.",
                buckets=buckets,
            )
        await self.start()
        bucket_ms = -(-period_ms // buckets)
        start = self.now() - bucket_ms * buckets
        found = await self.store.run_stats(
            RunStatsParams(environment=self.environment, created_from=start, bucket_ms=bucket_ms)
        )
        counts: list[dict[str, int]] = [{} for _ in range(buckets)]
        for bucket, status, runs in found:
            if 0 <= bucket < buckets:  # a run created "in the future" of a skewed clock
                counts[bucket][status] = counts[bucket].get(status, 0) + runs
        return RunStats(
            start=to_datetime(start) or to_datetime(0),  # type: ignore[arg-type]
            bucket_ms=bucket_ms,
            counts=tuple(counts),
        )

    async def run_events(
        self, run_id: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[RunEvent]:
        """A run's events (logs, spans, metadata, tag and status changes) after ``after_id``."""
        found = await self.run_event_records(run_id, after_id=after_id, limit=limit)
        return [RunEvent.from_record(e) for e in found]

    async def run_event_records(
        self, run_id: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[RunEventRecord]:
        """:meth:`run_events` as stored rows (epoch-ms times, attributes as JSON text)."""
        if not 1 <= limit <= 10_000:
            raise ValidationError("limit must be between 1 and 10000.", limit=limit)
        record = await self.get_run(run_id)
        return await self.store.run_events_list(
            RunEventsListParams(
                environment=self.environment, run_id=record.id, after_id=after_id, limit=limit
            )
        )

    async def cancel_run(self, run_id: str) -> Run:
        """Cancel a run and its non-final children. A final run is returned unchanged."""
        run = await self.get_run(run_id)
        if not RunStatus(run.status).is_final:
            self.transitions.check(_NON_FINAL, RunStatus.CANCELED, "cancel", [run_id])
            canceled = await self.store.run_cancel(
                RunCancelParams(
                    environment=self.environment,
                    run_id=run_id,
                    now=self.now(),
                    final_statuses=frozenset(str(s) for s in FINAL_STATUSES),
                    error=dumps(_CANCELED_ERROR),
                )
            )
            # Executing workers notice on their next ownership check; ring so it is soon.
            await self.store.ready_notify(
                ReadyNotifyParams(environment=self.environment, now=self.now())
            )
            self.run_finished(canceled)
        return await self.retrieve_run(run_id)

    async def reschedule_run(self, run_id: str, delay: Any) -> Run:
        """Move a DELAYED run to a new time (a duration from now, a datetime or ISO string)."""
        run = await self.get_run(run_id)
        if run.status != RunStatus.DELAYED:
            raise ValidationError(
                f"Only DELAYED runs can be rescheduled; run {run_id} is {run.status}.",
                run_id=run_id,
                status=run.status,
            )
        now = self.now()
        updated = await self.store.run_reschedule(
            RunRescheduleParams(
                environment=self.environment,
                run_id=run_id,
                delay_until=max(resolve_time(delay, now), now),
                now=now,
            )
        )
        if updated is None:
            current = await self.get_run(run_id)
            raise ValidationError(
                f"Only DELAYED runs can be rescheduled; run {run_id} is {current.status}.",
                run_id=run_id,
                status=current.status,
            )
        return await self.retrieve_run(run_id)

    async def replay_run(self, run_id: str, *, payload: Any = ...) -> RunHandle:
        """A new run of the same task with the same payload (or ``payload``) and options:
        tags, metadata, queue, concurrency key, machine, max attempts, max duration and TTL."""
        run = await self.get_run(run_id)
        options: dict[str, Any] = {
            "tags": loads(run.tags) or [],
            "metadata": loads(run.metadata) or {},
            "queue": run.queue,
            # The original TTL, or none at all: a replay must not pick up a default TTL the
            # original did not have.
            "ttl": (run.ttl_ms or 0) / 1000,
        }
        if run.concurrency_key is not None:
            options["concurrency_key"] = run.concurrency_key
        if run.machine:
            options["machine"] = run.machine
        if run.max_attempts is not None:
            options["max_attempts"] = run.max_attempts
        if run.max_duration_s:
            options["max_duration"] = run.max_duration_s
        body = loads(run.payload) if payload is ... else payload
        return await self.trigger(run.task_id, body, options)

    async def add_tags(self, run_id: str, tags: str | Sequence[str]) -> list[str]:
        """Add tags to a run (at most 10 in all; extra ones are ignored); its tags after."""
        items = [tags] if isinstance(tags, str) else list(tags)
        new: list[str] = []
        for item in items:
            new.extend(t for t in validate_tags([item]) if t not in new)
        record = await self.get_run(run_id)
        now = self.now()
        return await self.store.run_tags_add(
            RunTagsAddParams(
                environment=self.environment,
                run_id=record.id,
                tags=new,
                max_tags=MAX_TAGS,
                now=now,
            )
        )

    async def append_events(self, events: Sequence[NewEvent]) -> None:
        """Append events (logs, spans) to runs' event logs, in order."""
        if events:
            await self.store.run_events_append(
                RunEventsAppendParams(environment=self.environment, events=events)
            )

    async def reset_idempotency_key(self, task_id: str, key: str) -> int:
        """Clear a (hashed) key on every run of ``task_id`` holding it; how many runs."""
        check_text(task_id, "task id", max_length=128)
        check_text(key, "idempotency key", max_length=2048)
        await self.start()
        return await self.store.idempotency_key_reset(
            IdempotencyKeyResetParams(
                environment=self.environment, task_id=task_id, key=key, now=self.now()
            )
        )

    async def retrieve_batch(self, batch_id: str) -> BatchInfo:
        """A batch and its run ids in input order."""
        check_text(batch_id, "batch id")
        await self.start()
        record = await self.store.batch_get(
            BatchGetParams(environment=self.environment, batch_id=batch_id)
        )
        if record is None:
            raise BatchNotFoundError(f"Batch {batch_id} not found.", batch_id=batch_id)
        return BatchInfo(
            id=record.id,
            status=record.status,
            run_count=record.run_count,
            runs=tuple(loads(record.run_ids) or ()),
            created_at=to_datetime(record.created_at) or to_datetime(0),  # type: ignore[arg-type]
            completed_at=to_datetime(record.completed_at),
        )

    async def list_batches(
        self, *, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[BatchInfo], str | None]:
        """One page of batches, newest first (their ``runs`` left empty: see
        :meth:`retrieve_batch`), and the cursor of the next page (None on the last)."""
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise ValidationError(
                f"limit must be between 1 and {LIST_LIMIT_MAX}; got {limit}.", limit=limit
            )
        if cursor is not None:
            check_text(cursor, "cursor")
        await self.start()
        records, next_cursor = await self.store.batch_list(
            BatchListParams(environment=self.environment, limit=limit, cursor=cursor)
        )
        return [
            BatchInfo(
                id=r.id,
                status=r.status,
                run_count=r.run_count,
                runs=(),
                created_at=to_datetime(r.created_at) or to_datetime(0),  # type: ignore[arg-type]
                completed_at=to_datetime(r.completed_at),
            )
            for r in records
        ], next_cursor

    async def task_records(self) -> list[TaskRecord]:
        """Every task a worker of this environment registered, as stored rows."""
        await self.start()
        records = await self.store.task_list(TaskListParams(environment=self.environment))
        self._registered = {r.id: r for r in records}
        return records

    async def live_workers(self, within_ms: int = 30_000) -> list[WorkerRecord]:
        """Workers of this environment that heartbeated in the last ``within_ms`` and run."""
        await self.start()
        return await self.store.worker_list_live(
            WorkerListLiveParams(environment=self.environment, since=self.now() - within_ms)
        )

    async def list_versions(self) -> list[RegisteredVersion]:
        """Every version of the task code this environment's workers registered, newest first,
        with how many of its workers are live."""
        await self.start()
        records = await self.store.version_list(
            VersionListParams(environment=self.environment, since=self.now() - self.live_window_ms)
        )
        return [
            RegisteredVersion(
                version=r.version,
                task_ids=tuple(loads(r.task_ids) or ()),
                live_workers=r.live_workers,
                registered_at=to_datetime(r.created_at) or to_datetime(0),  # type: ignore[arg-type]
                updated_at=to_datetime(r.updated_at) or to_datetime(0),  # type: ignore[arg-type]
                last_heartbeat_at=to_datetime(r.last_heartbeat_at),
            )
            for r in records
        ]

    async def list_tasks(self) -> list[RegisteredTask]:
        """Every task a worker of this environment registered, by id."""
        records = await self.task_records()
        return [
            RegisteredTask(
                id=r.id,
                file_path=r.file_path,
                queue=r.queue,
                max_attempts=r.max_attempts,
                retry=loads(r.retry) or {},
                max_duration=r.max_duration_s,
                machine=r.machine,
                description=r.description,
                payload_schema=loads(r.payload_schema) or {},
                ttl_ms=r.ttl_ms,
            )
            for r in sorted(records, key=lambda r: r.id)
        ]
