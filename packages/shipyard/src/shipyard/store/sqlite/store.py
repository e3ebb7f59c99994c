"""SQLite implementation of the store protocol.

One connection lives on one dedicated thread; every async method hops to that thread, so the
event loop never blocks on disk and calls from one process are serialised without locks.
Writers across processes take the database lock with ``BEGIN IMMEDIATE``. SQLite's built-in
busy handler sleeps in coarse steps (1, 2, 5, 10 … 100 ms), which ruins tail latency, so the
busy timeout is 0 and :meth:`_write` retries with sub-millisecond sleeps instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from shipyard.errors import ShipyardError
from shipyard.records import (
    AttemptRecord,
    BatchRecord,
    NewEvent,
    Page,
    QueueRecord,
    RunEventRecord,
    RunRecord,
    TaskRecord,
    WaitpointRecord,
    WorkerRecord,
)
from shipyard.store.claims import GroupState, environment_capacity, group_capacity, pick
from shipyard.store.doorbell import Doorbell, DoorbellListener
from shipyard.store.protocol import (
    BatchInsertParams,
    QueueUpdateParams,
    QueueUpsertParams,
    RateTakeParams,
    ReapedRun,
    RecordedCall,
    RunCancelParams,
    RunClaimParams,
    RunFinishParams,
    RunInsertParams,
    RunInsertResult,
    RunListParams,
    RunMetadataParams,
    RunOwnership,
    RunReapParams,
    RunReleaseParams,
    RunRescheduleParams,
    RunScheduleParams,
    RunTagsAddParams,
    ScheduledRuns,
    TaskRegisterParams,
    WaitpointBlockParams,
    WaitpointBlockResult,
    WaitpointCompleteParams,
    WaitpointCreateParams,
    WaitpointListParams,
    WaitpointResolveParams,
    WorkerHeartbeatParams,
)
from shipyard.store.queries import load_queries, migration_files
from shipyard.store.rows import (
    debounce_overflows,
    debounce_push_row,
    event_row,
    filter_waitpoints,
    idempotency_key_released,
    insert_row,
    take_tokens,
    waitpoint_values,
)

T = TypeVar("T")

_HERE = Path(__file__).parent
_Q = load_queries(_HERE / "queries.sql")
# run_insert with ? placeholders, and the parameter name of each (for executemany).
_RUN_INSERT_NAMES = re.findall(r":(\w+)", _Q["run_insert"])
_RUN_INSERT_POSITIONAL = re.sub(r":(\w+)", "?", _Q["run_insert"])
_LOCK_WAIT_SECONDS = 30.0


class DatabaseBusyError(ShipyardError):
    """The SQLite database stayed locked by another process for too long."""

    code = "DATABASE_BUSY"


class SqliteStore:
    """Store backed by one SQLite file.

    Example::

        store = SqliteStore(Path(".shipyard/shipyard.db"))
        await store.migrate()
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._thread = _StoreThread()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._doorbell = Doorbell()
        self._live_ports: tuple[float, list[int]] = (0.0, [])
        # The heartbeat thread has a connection of its own: it must not queue behind the
        # store thread, which may be busy with a large batch.
        self._heartbeat_conn: sqlite3.Connection | None = None
        self._heartbeat_lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0)
        conn.execute("PRAGMA busy_timeout = 0")
        _retry_busy(lambda: conn.execute("PRAGMA journal_mode = WAL"))
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = OFF")
        return conn

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise ShipyardError("The store is closed.")
        return await self._thread.call(lambda: fn(self._db()))

    def _write(self, conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``body`` in one ``BEGIN IMMEDIATE`` transaction, waiting for the lock."""
        _retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            result = body(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        _retry_busy(lambda: conn.execute("COMMIT"))
        return result

    async def close(self) -> None:
        """Close connections and the store thread. Safe to call twice."""
        if self._closed:
            return
        self._closed = True

        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self._thread.call(_close)
        self._thread.shutdown()
        with self._heartbeat_lock:
            if self._heartbeat_conn is not None:
                self._heartbeat_conn.close()
                self._heartbeat_conn = None
        self._doorbell.close()

    # -- migrations ---------------------------------------------------------------------------

    async def migrate(self) -> list[str]:
        """Apply pending numbered migrations in one write transaction each."""

        def _migrate(conn: sqlite3.Connection) -> list[str]:
            def _apply(conn: sqlite3.Connection) -> list[str]:
                conn.execute(_Q["migrations_table"])
                done = {row[0] for row in conn.execute(_Q["migrations_applied"])}
                applied = []
                for file in migration_files(_HERE / "migrations"):
                    if file.name in done:
                        continue
                    for statement in _split_statements(file.read_text()):
                        conn.execute(statement)
                    conn.execute(
                        _Q["migration_record"],
                        {"name": file.name, "applied_at": int(time.time() * 1000)},
                    )
                    applied.append(file.name)
                return applied

            return self._write(conn, _apply)

        return await self._run(_migrate)

    # -- runs ---------------------------------------------------------------------------------

    def _insert_one(self, conn: sqlite3.Connection, params: RunInsertParams) -> RunInsertResult:
        row = insert_row(params)
        values = [row[n] for n in _RUN_INSERT_NAMES]
        # A conflict is an idempotency key or a debounce key already held; each round settles
        # one of them, so three rounds always suffice.
        for _ in range(3):
            if conn.execute(_RUN_INSERT_POSITIONAL, values).rowcount == 1:
                for tag in params.tags:
                    conn.execute(_Q["run_tag_insert"], {"run_id": params.id, "tag": tag})
                # The new row is exactly its insert values plus the column defaults.
                return RunInsertResult(_inserted_record(row), cached=False)
            if params.idempotency_key is not None:
                existing = _fetch_run(
                    conn,
                    _Q["run_get_by_idempotency_key"],
                    {
                        "environment": params.environment,
                        "task_id": params.task_id,
                        "idempotency_key": params.idempotency_key,
                    },
                )
                if existing is not None:
                    if not idempotency_key_released(existing, params):
                        return RunInsertResult(existing, cached=True)
                    conn.execute(
                        _Q["run_clear_idempotency_key"],
                        {"id": existing.id, "now": params.created_at},
                    )
                    continue
            if params.debounce_key is not None:
                debounced = _fetch_run(
                    conn,
                    _Q["run_get_debounced"],
                    {
                        "environment": params.environment,
                        "task_id": params.task_id,
                        "debounce_key": params.debounce_key,
                    },
                )
                if debounced is not None:
                    if debounce_overflows(debounced, params):
                        conn.execute(
                            _Q["run_debounce_release"],
                            {"id": debounced.id, "now": params.created_at},
                        )
                        continue
                    conn.execute(_Q["run_debounce_push"], debounce_push_row(debounced, params))
                    if params.debounce_trailing:
                        conn.execute(_Q["run_tags_delete"], {"run_id": debounced.id})
                        for tag in params.tags:
                            conn.execute(_Q["run_tag_insert"], {"run_id": debounced.id, "tag": tag})
                    return RunInsertResult(_run_by_id(conn, debounced.id), cached=False)
        raise ShipyardError(f"Could not insert run {params.id}: its id or keys kept conflicting.")

    async def run_insert(
        self, params: RunInsertParams, connection: Any | None = None
    ) -> RunInsertResult:
        """Create a run, or return the live run holding the same idempotency key."""
        if connection is not None:
            from shipyard.errors import ValidationError

            raise ValidationError(
                "trigger(..., connection=conn) joins the caller's PostgreSQL transaction; "
                "the SQLite store has no shared connection to join."
            )
        result = await self._run(lambda c: self._write(c, lambda c: self._insert_one(c, params)))
        if not result.cached:
            await self.ready_notify(params.environment)
        return result

    async def run_insert_many(
        self, params: Sequence[RunInsertParams], batch: BatchInsertParams | None = None
    ) -> list[RunInsertResult]:
        """Create many runs (and their batch) in one transaction, in order."""

        def _body(conn: sqlite3.Connection) -> list[RunInsertResult]:
            if batch is not None:
                conn.execute(
                    _Q["batch_insert"],
                    {
                        "id": batch.id,
                        "environment": batch.environment,
                        "run_count": len(params),
                        "idempotency_key": batch.idempotency_key,
                        "created_at": batch.created_at,
                    },
                )
            plain = [p for p in params if p.idempotency_key is None and not p.tags]
            if len(plain) == len(params):
                # The common bulk case: no keys to resolve, so one executemany suffices.
                rows = [insert_row(p) for p in params]
                # Positional binding: a third cheaper than 29 named look-ups per row.
                cursor = conn.executemany(
                    _RUN_INSERT_POSITIONAL, [[row[n] for n in _RUN_INSERT_NAMES] for row in rows]
                )
                if cursor.rowcount != len(rows):
                    raise ShipyardError("Run id collision on batch insert.")
                # No key, no conflict: each new row is exactly its insert values plus the
                # column defaults, so the records are built without reading them back.
                results = [RunInsertResult(_inserted_record(row), cached=False) for row in rows]
            else:
                results = [self._insert_one(conn, item) for item in params]
            if batch is not None:
                conn.execute(
                    _Q["batch_set_run_ids"],
                    {"id": batch.id, "run_ids": json.dumps([r.run.id for r in results])},
                )
            return results

        results = await self._run(lambda c: self._write(c, _body))
        if params:
            await self.ready_notify(params[0].environment)
        return results

    async def run_get(self, environment: str, run_id: str) -> RunRecord | None:
        """One run by id, or None."""
        return await self._run(
            lambda c: _fetch_run(c, _Q["run_get"], {"environment": environment, "id": run_id})
        )

    async def run_list(self, params: RunListParams) -> Page:
        """Runs newest first, filtered, one page at a time."""

        def _list(conn: sqlite3.Connection) -> Page:
            cursor = conn.execute(
                _Q["run_list"],
                {
                    "environment": params.environment,
                    "cursor": params.cursor,
                    "statuses": json.dumps(list(params.statuses)) if params.statuses else None,
                    "task_ids": json.dumps(list(params.task_ids)) if params.task_ids else None,
                    "tag": params.tag,
                    "batch_id": params.batch_id,
                    "created_from": params.created_from,
                    "created_to": params.created_to,
                    "limit": params.limit + 1,
                },
            )
            names = [d[0] for d in cursor.description]
            items = [RunRecord.from_row(names, row) for row in cursor.fetchall()]
            more = len(items) > params.limit
            items = items[: params.limit]
            return Page(items=items, next_cursor=items[-1].id if more and items else None)

        return await self._run(_list)

    async def run_claim(self, params: RunClaimParams) -> list[RunRecord]:
        """Atomically take up to ``limit`` ready runs, oldest priority-adjusted first."""
        if params.limit <= 0 or not params.task_ids:
            return []
        task_ids = json.dumps(list(params.task_ids))

        def _body(conn: sqlite3.Connection) -> list[RunRecord]:
            env = {"environment": params.environment}
            row = conn.execute(_Q["environment_running"], env).fetchone()
            free = min(
                params.limit,
                environment_capacity(
                    row[0] if row else 0, params.environment_limit, params.burst_factor
                ),
            )
            if free <= 0:
                return []
            candidates: list[tuple[int, str]] = []
            group = conn.execute(_Q["ready_group_first"], env).fetchone()
            while group is not None:
                key = {**env, "queue": group[0], "concurrency_key": group[1]}
                limit, override, paused, running = conn.execute(_Q["group_state"], key).fetchone()
                state = GroupState(group[0], group[1], limit, override, bool(paused), running)
                room = min(group_capacity(state, params.environment_limit), free)
                if room > 0:
                    candidates.extend(
                        (sort_key, run_id)
                        for run_id, sort_key in conn.execute(
                            _Q["group_ready_runs"],
                            {**key, "now": params.now, "task_ids": task_ids, "limit": room},
                        )
                    )
                group = conn.execute(_Q["ready_group_next"], key).fetchone()
            chosen = pick(candidates, free)
            if not chosen:
                return []
            cursor = conn.execute(
                _Q["run_claim_ids"],
                {
                    "ids": json.dumps(chosen),
                    "worker_id": params.worker_id,
                    "now": params.now,
                    "lease_expires_at": params.lease_expires_at,
                },
            )
            runs = _records(cursor)(cursor.fetchall())
            # A run resuming from a durable wait continues its attempt row.
            conn.executemany(
                _Q["attempt_insert"],
                [
                    {
                        "run_id": r.id,
                        "number": r.attempt_number,
                        "worker_id": params.worker_id,
                        "now": params.now,
                    }
                    for r in runs
                    if r.resume_state != "RESUMED"
                ],
            )
            conn.executemany(
                _Q["attempt_resume"],
                [
                    {"run_id": r.id, "number": r.attempt_number, "worker_id": params.worker_id}
                    for r in runs
                    if r.resume_state == "RESUMED"
                ],
            )
            runs.sort(key=lambda r: r.sort_key)
            return runs

        def _claim(conn: sqlite3.Connection) -> list[RunRecord]:
            # Peek without the write lock first: an idle poll must not serialise every writer.
            if not _has_ready(conn, params.environment, params.now, task_ids):
                return []
            return self._write(conn, _body)

        return await self._run(_claim)

    async def run_finish_many(self, params: Sequence[RunFinishParams]) -> list[bool]:
        """Record the end of attempts; False where the fence rejected a stale attempt."""
        if not params:
            return []

        def _body(conn: sqlite3.Connection) -> list[bool]:
            accepted: list[bool] = []
            events: list[dict[str, Any]] = []
            for p in params:
                values = {
                    "run_id": p.run_id,
                    "attempt_number": p.attempt_number,
                    "worker_id": p.worker_id,
                    "status": p.status,
                    "attempt_status": p.attempt_status,
                    "now": p.now,
                    "output": p.output,
                    "error": p.error,
                    "retry_at": p.retry_at,
                }
                ok = conn.execute(_Q["run_finish"], values).rowcount == 1
                accepted.append(ok)
                if not ok:
                    continue
                conn.execute(_Q["attempt_finish"], values)
                events.extend(event_row(e) for e in p.events)
            if events:
                conn.executemany(_Q["run_event_insert"], events)
            return accepted

        return await self._run(lambda c: self._write(c, _body))

    async def run_release(self, params: RunReleaseParams) -> bool:
        """Give a claimed run back to the queue without counting the attempt."""

        def _body(conn: sqlite3.Connection) -> bool:
            values = {
                "run_id": params.run_id,
                "attempt_number": params.attempt_number,
                "worker_id": params.worker_id,
                "now": params.now,
            }
            if conn.execute(_Q["run_release"], values).rowcount != 1:
                return False
            conn.execute(_Q["attempt_release"], values)
            return True

        return await self._run(lambda c: self._write(c, _body))

    async def run_reap_expired(self, params: RunReapParams) -> list[ReapedRun]:
        """Take back runs whose worker stopped heartbeating."""

        def _body(conn: sqlite3.Connection) -> list[ReapedRun]:
            rows = conn.execute(
                _Q["run_reap_expired"],
                {
                    "environment": params.environment,
                    "now": params.now,
                    "crash_error": params.crash_error,
                },
            ).fetchall()
            reaped = [ReapedRun(run_id=r[0], attempt_number=r[1], status=r[2]) for r in rows]
            conn.executemany(
                _Q["attempt_crash"],
                [
                    {
                        "run_id": r.run_id,
                        "attempt_number": r.attempt_number,
                        "now": params.now,
                        "crash_error": params.crash_error,
                    }
                    for r in reaped
                ],
            )
            return reaped

        return await self._run(lambda c: self._write(c, _body))

    async def run_cancel(self, params: RunCancelParams) -> list[str]:
        """Cancel a non-final run and its non-final descendants; return the ids canceled."""

        def _body(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                _Q["run_cancel"],
                {
                    "environment": params.environment,
                    "run_id": params.run_id,
                    "now": params.now,
                    "error": params.error,
                    "final_statuses": json.dumps(sorted(params.final_statuses)),
                },
            ).fetchall()
            ids = [r[0] for r in rows]
            conn.executemany(_Q["attempt_cancel"], [{"run_id": i, "now": params.now} for i in ids])
            conn.executemany(
                _Q["run_event_insert"],
                [
                    event_row(NewEvent(run_id=i, ts=params.now, kind="status", message="CANCELED"))
                    for i in ids
                ],
            )
            return ids

        return await self._run(lambda c: self._write(c, _body))

    async def run_ownership(self, run_ids: Sequence[str]) -> list[RunOwnership]:
        """Status, attempt and owner of the given runs (for a worker's fence check)."""
        ids = json.dumps(list(run_ids))

        def _get(conn: sqlite3.Connection) -> list[RunOwnership]:
            rows = conn.execute(_Q["run_ownership"], {"ids": ids}).fetchall()
            return [RunOwnership(r[0], r[1], r[2], r[3]) for r in rows]

        return await self._run(_get)

    async def run_metadata_update(self, params: RunMetadataParams) -> str:
        """Read-modify-write a run's metadata in one transaction; return the new JSON."""

        def _body(conn: sqlite3.Connection) -> str:
            row = conn.execute(_Q["run_metadata_get"], {"run_id": params.run_id}).fetchone()
            if row is None:
                from shipyard.errors import RunNotFoundError

                raise RunNotFoundError(f"Run {params.run_id} not found.", run_id=params.run_id)
            new = params.mutate(row[0])
            conn.execute(
                _Q["run_metadata_set"],
                {"run_id": params.run_id, "metadata": new, "now": params.now},
            )
            if params.event is not None:
                conn.execute(_Q["run_event_insert"], event_row(params.event))
            return new

        return await self._run(lambda c: self._write(c, _body))

    async def run_tags_add(self, params: RunTagsAddParams) -> list[str]:
        """Add tags to a run (deduplicated, capped); return its tags."""

        def _body(conn: sqlite3.Connection) -> list[str]:
            row = conn.execute(_Q["run_tags_get"], {"run_id": params.run_id}).fetchone()
            if row is None:
                return []
            tags: list[str] = json.loads(row[0])
            added: list[str] = []
            for tag in params.tags:
                if tag not in tags and len(tags) < params.max_tags:
                    tags.append(tag)
                    added.append(tag)
            if added:
                conn.execute(
                    _Q["run_tags_set"],
                    {"run_id": params.run_id, "tags": json.dumps(tags), "now": params.now},
                )
                for tag in added:
                    conn.execute(_Q["run_tag_insert"], {"run_id": params.run_id, "tag": tag})
                conn.execute(
                    _Q["run_event_insert"],
                    event_row(
                        NewEvent(
                            run_id=params.run_id,
                            ts=params.now,
                            kind="tag",
                            message=",".join(added),
                        )
                    ),
                )
            return tags

        return await self._run(lambda c: self._write(c, _body))

    async def run_events_append(self, events: Sequence[NewEvent]) -> None:
        """Append logs, spans and other events in order."""
        if not events:
            return
        rows = [event_row(e) for e in events]
        await self._run(
            lambda c: self._write(c, lambda c: c.executemany(_Q["run_event_insert"], rows))
        )

    async def run_events_list(
        self, run_id: str, after_id: int = 0, limit: int = 1000
    ) -> list[RunEventRecord]:
        """A run's events after ``after_id``, oldest first."""

        def _get(conn: sqlite3.Connection) -> list[RunEventRecord]:
            rows = conn.execute(
                _Q["run_events_list"], {"run_id": run_id, "after_id": after_id, "limit": limit}
            ).fetchall()
            return [RunEventRecord(*row) for row in rows]

        return await self._run(_get)

    async def attempt_list(self, run_id: str) -> list[AttemptRecord]:
        """A run's attempts, in order."""

        def _get(conn: sqlite3.Connection) -> list[AttemptRecord]:
            rows = conn.execute(_Q["attempt_list"], {"run_id": run_id}).fetchall()
            return [AttemptRecord(*row) for row in rows]

        return await self._run(_get)

    # -- batches, keys, tasks, workers --------------------------------------------------------

    async def batch_get(self, environment: str, batch_id: str) -> BatchRecord | None:
        """One batch by id, or None."""

        def _get(conn: sqlite3.Connection) -> BatchRecord | None:
            row = conn.execute(
                _Q["batch_get"], {"environment": environment, "id": batch_id}
            ).fetchone()
            return BatchRecord(*row) if row else None

        return await self._run(_get)

    async def batch_runs(self, batch_id: str) -> list[RunRecord]:
        """A batch's runs in input order."""

        def _get(conn: sqlite3.Connection) -> list[RunRecord]:
            cursor = conn.execute(_Q["batch_runs"], {"batch_id": batch_id})
            names = [d[0] for d in cursor.description]
            return [RunRecord.from_row(names, row) for row in cursor.fetchall()]

        return await self._run(_get)

    async def idempotency_key_reset(self, environment: str, task_id: str, key: str) -> int:
        """Clear a key on every run of a task that holds it; return how many."""
        now = int(time.time() * 1000)
        values = {"environment": environment, "task_id": task_id, "key": key, "now": now}
        return await self._run(
            lambda c: self._write(
                c, lambda c: c.execute(_Q["idempotency_key_reset"], values).rowcount
            )
        )

    # -- queues, schedules of runs, rate limits ------------------------------------------------

    async def queue_upsert(self, params: Sequence[QueueUpsertParams]) -> None:
        """Register queues as code defines them (limits only; never un-pauses)."""
        if not params:
            return
        rows = [_queue_row(p) for p in params]
        await self._run(lambda c: self._write(c, lambda c: c.executemany(_Q["queue_upsert"], rows)))

    async def queue_list(self, environment: str) -> list[QueueRecord]:
        """Every queue of the environment with its running and queued counts."""

        def _get(conn: sqlite3.Connection) -> list[QueueRecord]:
            rows = conn.execute(_Q["queue_list"], {"environment": environment}).fetchall()
            return [QueueRecord(*row) for row in rows]

        return await self._run(_get)

    async def queue_update(self, params: QueueUpdateParams) -> QueueRecord | None:
        """Pause, resume or override a queue's limit; None if there is no such queue."""
        values = {
            "environment": params.environment,
            "name": params.name,
            "now": params.now,
            "paused": None if params.paused is None else int(params.paused),
            "limit_override": params.limit_override,
            "clear_override": int(params.clear_override),
        }
        changed = await self._run(
            lambda c: self._write(c, lambda c: c.execute(_Q["queue_update"], values).rowcount)
        )
        if not changed:
            return None
        found = [q for q in await self.queue_list(params.environment) if q.name == params.name]
        return found[0] if found else None

    async def run_schedule_due(self, params: RunScheduleParams) -> ScheduledRuns:
        """DELAYED → QUEUED when due; QUEUED/DELAYED → EXPIRED when the TTL passed unstarted."""
        values = {
            "environment": params.environment,
            "now": params.now,
            "expired_error": params.expired_error,
        }

        def _body(conn: sqlite3.Connection) -> ScheduledRuns:
            expired = [r[0] for r in conn.execute(_Q["run_expire_due"], values).fetchall()]
            promoted = [r[0] for r in conn.execute(_Q["run_promote_due"], values).fetchall()]
            conn.executemany(
                _Q["run_event_insert"],
                [
                    event_row(NewEvent(run_id, params.now, "status", status))
                    for ids, status in ((expired, "EXPIRED"), (promoted, "QUEUED"))
                    for run_id in ids
                ],
            )
            return ScheduledRuns(promoted=promoted, expired=expired)

        def _schedule(conn: sqlite3.Connection) -> ScheduledRuns:
            if not _has_due(conn, params.environment, params.now):
                return ScheduledRuns(promoted=[], expired=[])
            return self._write(conn, _body)

        result = await self._run(_schedule)
        if result.promoted:
            await self.ready_notify(params.environment)
        return result

    async def run_reschedule(self, params: RunRescheduleParams) -> RunRecord | None:
        """Change a DELAYED run's time; None if the run is not DELAYED."""
        values = {
            "environment": params.environment,
            "run_id": params.run_id,
            "delay_until": params.delay_until,
            "now": params.now,
        }

        def _body(conn: sqlite3.Connection) -> RunRecord | None:
            if conn.execute(_Q["run_reschedule"], values).rowcount != 1:
                return None
            return _run_by_id(conn, params.run_id)

        return await self._run(lambda c: self._write(c, _body))

    async def environment_rate_take(self, params: RateTakeParams) -> int:
        """Take tokens; 0 if taken, else the milliseconds until enough have refilled."""

        def _body(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                _Q["environment_rate_get"], {"environment": params.environment}
            ).fetchone()
            tokens, wait_ms = take_tokens(row[0] if row else None, row[1] if row else None, params)
            if wait_ms == 0:
                conn.execute(
                    _Q["environment_rate_set"],
                    {"environment": params.environment, "tokens": tokens, "now": params.now},
                )
            return wait_ms

        return await self._run(lambda c: self._write(c, _body))

    async def task_register(self, params: TaskRegisterParams) -> None:
        """Record a worker and the tasks it can execute."""
        w = params.worker

        def _body(conn: sqlite3.Connection) -> None:
            conn.execute(
                _Q["worker_upsert"],
                {
                    "id": w.id,
                    "environment": w.environment,
                    "host": w.host,
                    "pid": w.pid,
                    "doorbell_port": w.doorbell_port,
                    "started_at": w.started_at,
                    "heartbeat_at": w.heartbeat_at,
                },
            )
            conn.executemany(_Q["queue_upsert"], [_queue_row(q) for q in params.queues])
            conn.executemany(
                _Q["task_upsert"],
                [
                    {
                        "environment": t.environment,
                        "id": t.id,
                        "file_path": t.file_path,
                        "queue": t.queue,
                        "max_attempts": t.max_attempts,
                        "retry": t.retry,
                        "max_duration_s": t.max_duration_s,
                        "machine": t.machine,
                        "description": t.description,
                        "payload_schema": t.payload_schema,
                        "worker_id": t.worker_id,
                        "updated_at": t.updated_at,
                        "ttl_ms": t.ttl_ms,
                    }
                    for t in params.tasks
                ],
            )

        await self._run(lambda c: self._write(c, _body))

    async def task_list(self, environment: str) -> list[TaskRecord]:
        """Every task any worker of the environment registered."""

        def _get(conn: sqlite3.Connection) -> list[TaskRecord]:
            rows = conn.execute(_Q["task_list"], {"environment": environment}).fetchall()
            return [TaskRecord(*row) for row in rows]

        return await self._run(_get)

    async def worker_list_live(self, environment: str, since: int) -> list[WorkerRecord]:
        """Workers that heartbeated at or after ``since`` and have not stopped."""

        def _get(conn: sqlite3.Connection) -> list[WorkerRecord]:
            rows = conn.execute(
                _Q["worker_list_live"], {"environment": environment, "since": since}
            ).fetchall()
            return [WorkerRecord(*row) for row in rows]

        return await self._run(_get)

    async def worker_stop(self, worker_id: str, now: int) -> None:
        """Mark a worker as stopped."""
        values = {"worker_id": worker_id, "now": now}
        await self._run(lambda c: self._write(c, lambda c: c.execute(_Q["worker_stop"], values)))

    # -- waitpoints ---------------------------------------------------------------------------

    def _waitpoint_create(
        self, conn: sqlite3.Connection, params: WaitpointCreateParams
    ) -> tuple[WaitpointRecord, bool]:
        values = waitpoint_values(params)
        for _ in range(3):
            if params.idempotency_key is not None:
                row = conn.execute(_Q["waitpoint_get_by_key"], values).fetchone()
                if row is not None:
                    found = WaitpointRecord(*row)
                    expires = found.idempotency_key_expires_at
                    if expires is None or expires > params.now:
                        return found, True
                    conn.execute(_Q["waitpoint_clear_key"], {"id": found.id})
            row = conn.execute(_Q["waitpoint_insert"], values).fetchone()
            if row is not None:
                return WaitpointRecord(*row), False
        raise ShipyardError(f"Could not create waitpoint {params.id}: its key kept conflicting.")

    async def waitpoint_create(self, params: WaitpointCreateParams) -> tuple[WaitpointRecord, bool]:
        """Create a waitpoint, or return the live one holding its idempotency key (True)."""
        return await self._run(
            lambda c: self._write(c, lambda conn: self._waitpoint_create(conn, params))
        )

    async def waitpoint_get(self, environment: str, waitpoint_id: str) -> WaitpointRecord | None:
        """One waitpoint by id, or None."""

        def _get(conn: sqlite3.Connection) -> WaitpointRecord | None:
            row = conn.execute(
                _Q["waitpoint_get"], {"environment": environment, "id": waitpoint_id}
            ).fetchone()
            return WaitpointRecord(*row) if row else None

        return await self._run(_get)

    async def waitpoint_list(self, params: WaitpointListParams) -> list[WaitpointRecord]:
        """Tokens (MANUAL waitpoints) newest first, filtered by status and tags (all of)."""

        def _get(conn: sqlite3.Connection) -> list[WaitpointRecord]:
            rows = conn.execute(_Q["waitpoint_list"], {"environment": params.environment})
            return [WaitpointRecord(*r) for r in rows]

        return filter_waitpoints(await self._run(_get), params)

    async def waitpoint_recorded(
        self, run_id: str, attempt_number: int, seq: int
    ) -> RecordedCall | None:
        """The durable call an attempt recorded at ``seq``, or None."""

        def _get(conn: sqlite3.Connection) -> RecordedCall | None:
            row = conn.execute(
                _Q["waitpoint_recorded"],
                {"run_id": run_id, "attempt_number": attempt_number, "seq": seq},
            ).fetchone()
            return RecordedCall(row[0], WaitpointRecord(*row[1:])) if row else None

        return await self._run(_get)

    async def waitpoint_block(self, params: WaitpointBlockParams) -> WaitpointBlockResult:
        """Link the attempt's call ``seq`` to a waitpoint; suspend the run if it is pending."""

        def _body(conn: sqlite3.Connection) -> WaitpointBlockResult:
            if params.create is not None:
                waitpoint_id = self._waitpoint_create(conn, params.create)[0].id
            else:
                assert params.waitpoint_id is not None
                waitpoint_id = params.waitpoint_id
            values = {
                "run_id": params.run_id,
                "attempt_number": params.attempt_number,
                "worker_id": params.worker_id,
                "seq": params.seq,
                "call": params.call,
                "now": params.now,
                "waitpoint_id": waitpoint_id,
                "id": waitpoint_id,
            }
            conn.execute(_Q["waitpoint_link"], values)
            conn.execute(_Q["waitpoint_settle_one"], values)
            row = conn.execute(_Q["waitpoint_get_by_id"], values).fetchone()
            if row is None:
                raise ShipyardError(f"Waitpoint {waitpoint_id} not found.")
            waitpoint = WaitpointRecord(*row)
            if waitpoint.status != "PENDING":
                return WaitpointBlockResult(waitpoint, suspended=False, owned=True)
            owned = conn.execute(_Q["run_suspend"], values).rowcount == 1
            if owned:
                conn.execute(
                    _Q["run_event_insert"],
                    event_row(
                        NewEvent(
                            run_id=params.run_id, ts=params.now, kind="status", message="WAITING"
                        )
                    ),
                )
            return WaitpointBlockResult(waitpoint, suspended=owned, owned=owned)

        return await self._run(lambda c: self._write(c, _body))

    def _wake(self, conn: sqlite3.Connection, environment: str, now: int) -> list[str]:
        rows = conn.execute(_Q["runs_wake"], {"environment": environment, "now": now}).fetchall()
        ids = [r[0] for r in rows]
        if ids:
            conn.executemany(
                _Q["run_event_insert"],
                [
                    event_row(NewEvent(run_id=i, ts=now, kind="status", message="QUEUED"))
                    for i in ids
                ],
            )
        return ids

    async def waitpoint_resolve_due(self, params: WaitpointResolveParams) -> list[str]:
        """Complete due waitpoints; WAITING → QUEUED for runs no longer blocked (their ids)."""
        values = {
            "environment": params.environment,
            "now": params.now,
            "timeout_error": params.timeout_error,
        }

        def _body(conn: sqlite3.Connection) -> list[str]:
            conn.execute(_Q["waitpoint_timeout_due"], values)
            conn.execute(_Q["waitpoint_settle_due"], values)
            return self._wake(conn, params.environment, params.now)

        def _resolve(conn: sqlite3.Connection) -> list[str]:
            if conn.execute(_Q["waitpoint_due_exists"], values).fetchone() is None:
                return []
            return self._write(conn, _body)

        woken = await self._run(_resolve)
        if woken:
            await self.ready_notify(params.environment)
        return woken

    async def waitpoint_complete(self, params: WaitpointCompleteParams) -> WaitpointRecord | None:
        """Complete a token (first output wins) and re-queue the runs it released."""
        values = {
            "environment": params.environment,
            "id": params.waitpoint_id,
            "output": params.output,
            "now": params.now,
        }

        def _body(conn: sqlite3.Connection) -> tuple[WaitpointRecord | None, list[str]]:
            changed = conn.execute(_Q["waitpoint_complete"], values).rowcount == 1
            woken = self._wake(conn, params.environment, params.now) if changed else []
            row = conn.execute(_Q["waitpoint_get"], values).fetchone()
            return (WaitpointRecord(*row) if row else None), woken

        found, woken = await self._run(lambda c: self._write(c, _body))
        if woken:
            await self.ready_notify(params.environment)
        return found

    def worker_heartbeat(self, params: WorkerHeartbeatParams) -> int:
        """Blocking, callable from any thread: extend the worker's leases; return how many."""
        values = {
            "worker_id": params.worker_id,
            "now": params.now,
            "lease_expires_at": params.lease_expires_at,
            "run_ids": json.dumps(list(params.run_ids)),
        }
        with self._heartbeat_lock:
            if self._closed:
                return 0
            if self._heartbeat_conn is None:
                self._heartbeat_conn = self._connect()
            conn = self._heartbeat_conn

            def _body(conn: sqlite3.Connection) -> int:
                conn.execute(_Q["worker_heartbeat"], values)
                return conn.execute(_Q["worker_heartbeat_runs"], values).rowcount

            return self._write(conn, _body)

    # -- wake-ups -----------------------------------------------------------------------------

    async def ready_listen(self) -> DoorbellListener:
        """Start listening for "runs are ready" rings; the listener's port goes in workers."""
        return await DoorbellListener.start()

    async def ready_notify(self, environment: str) -> None:
        """Ring every live worker of the environment: runs are ready to claim."""
        checked_at, ports = self._live_ports
        now = time.monotonic()
        if now - checked_at > 1.0:
            since = int(time.time() * 1000) - 60_000
            workers = await self.worker_list_live(environment, since)
            ports = [w.doorbell_port for w in workers if w.doorbell_port]
            self._live_ports = (now, ports)
        self._doorbell.ring(ports)


class _StoreThread:
    """The one thread that owns the store's connection.

    A bare queue and ``call_soon_threadsafe`` instead of ``run_in_executor``: the hop is on
    every store call, and this halves its cost (one queue put and one loop wake-up).
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    thread = threading.Thread(
                        target=self._main, name="shipyard-sqlite", daemon=True
                    )
                    thread.start()
                    self._thread = thread

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the store thread; in submission order."""
        self._ensure_started()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, future, loop))
        return await future

    def _main(self) -> None:
        get = self._queue.get
        while True:
            job = get()
            if job is None:
                return
            fn, future, loop = job
            if future.cancelled():
                continue
            try:
                result = fn()
            except BaseException as exc:
                _deliver(loop, future, None, exc)
            else:
                _deliver(loop, future, result, None)

    def shutdown(self) -> None:
        """Finish queued work and stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            if self._thread is not threading.current_thread():
                self._thread.join()


_Job = tuple[Callable[[], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


def _deliver(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
) -> None:
    # RuntimeError: the loop closed while the call ran, so nobody is waiting.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_set_future, future, result, error)


def _set_future(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        if isinstance(error, StopIteration):  # a future cannot carry StopIteration
            error = RuntimeError(f"StopIteration raised on the store thread: {error}")
        future.set_exception(error)
    else:
        future.set_result(result)


# -- module helpers (pure functions over a connection) -----------------------------------------


def _retry_busy(fn: Callable[[], T]) -> T:
    deadline = time.monotonic() + _LOCK_WAIT_SECONDS
    pause = 0.0002
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            message = str(exc)
            if "locked" not in message and "busy" not in message:
                raise
            if time.monotonic() > deadline:
                raise DatabaseBusyError(
                    f"The SQLite database stayed locked for {_LOCK_WAIT_SECONDS:.0f} s; "
                    "another process holds a long write transaction."
                ) from exc
            time.sleep(pause)
            pause = min(pause * 1.5, 0.005)


def _split_statements(script: str) -> list[str]:
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            if statement and not all(
                part.strip().startswith("--") or not part.strip() for part in statement.splitlines()
            ):
                statements.append(statement)
            buffer = ""
    return statements


def _queue_row(p: QueueUpsertParams) -> dict[str, Any]:
    return {
        "environment": p.environment,
        "name": p.name,
        "concurrency_limit": p.concurrency_limit,
        "now": p.now,
    }


def _has_due(conn: sqlite3.Connection, environment: str, now: int) -> bool:
    row = conn.execute(_Q["run_due_exists"], {"environment": environment, "now": now}).fetchone()
    return row is not None


def _fetch_run(conn: sqlite3.Connection, sql: str, values: dict[str, Any]) -> RunRecord | None:
    cursor = conn.execute(sql, values)
    row = cursor.fetchone()
    if row is None:
        return None
    return _records(cursor)([row])[0]


_RUN_FIELDS = tuple(RunRecord.__dataclass_fields__)
_RECORD_BUILDERS: dict[tuple[str, ...], Callable[[list[Any]], list[RunRecord]]] = {}
_BUILDER_BY_SHAPE: dict[tuple[int, int], Callable[[list[Any]], list[RunRecord]]] = {}
_BUILDER_NAMES: dict[tuple[int, int], Any] = {}


def _records(cursor: sqlite3.Cursor) -> Callable[[list[Any]], list[RunRecord]]:
    """A fast row → RunRecord builder for this cursor's columns (same as RunRecord.from_row)."""
    description = cursor.description
    key = (id(description[0][0]), len(description))
    builder = _BUILDER_BY_SHAPE.get(key)
    if builder is not None and _BUILDER_NAMES[key] == description:
        return builder
    names = tuple(d[0] for d in description)
    builder = _RECORD_BUILDERS.get(names)
    if builder is None:
        if len(set(names)) != len(names) or not set(_RUN_FIELDS) <= set(names):
            # Unusual column lists keep the general (checking) path.
            name_list = list(names)

            def builder(rows: list[Any]) -> list[RunRecord]:
                return [RunRecord.from_row(name_list, row) for row in rows]
        elif names[: len(_RUN_FIELDS)] == _RUN_FIELDS:
            width = len(_RUN_FIELDS)

            def builder(rows: list[Any]) -> list[RunRecord]:
                return [RunRecord(*row[:width]) for row in rows]
        else:
            index = [names.index(f) for f in _RUN_FIELDS]

            def builder(rows: list[Any]) -> list[RunRecord]:
                return [RunRecord(*[row[i] for i in index]) for row in rows]

        _RECORD_BUILDERS[names] = builder
    _BUILDER_BY_SHAPE[key] = builder
    _BUILDER_NAMES[key] = description
    return builder


def _inserted_record(row: dict[str, Any]) -> RunRecord:
    """The record of a freshly inserted run: its insert values plus the column defaults."""
    return RunRecord(
        id=row["id"],
        environment=row["environment"],
        task_id=row["task_id"],
        status=row["status"],
        payload=row["payload"],
        output=None,
        error=None,
        metadata=row["metadata"],
        tags=row["tags"],
        queue=row["queue"],
        concurrency_key=row["concurrency_key"],
        priority_ms=row["priority_ms"],
        queued_at=row["queued_at"],
        sort_key=row["sort_key"],
        available_at=row["available_at"],
        delay_until=row["delay_until"],
        ttl_ms=row["ttl_ms"],
        attempt_number=0,
        max_attempts=row["max_attempts"],
        lease_owner=None,
        lease_expires_at=None,
        idempotency_key=row["idempotency_key"],
        idempotency_key_expires_at=row["idempotency_key_expires_at"],
        debounce_key=row["debounce_key"],
        parent_run_id=row["parent_run_id"],
        root_run_id=row["root_run_id"],
        depth=row["depth"],
        batch_id=row["batch_id"],
        batch_index=row["batch_index"],
        schedule_id=None,
        completion_waitpoint_id=None,
        machine=row["machine"],
        max_duration_s=row["max_duration_s"],
        version=None,
        trigger_function=row["trigger_function"],
        is_test=row["is_test"],
        created_at=row["created_at"],
        updated_at=row["created_at"],
        started_at=None,
        finished_at=None,
        expired_at=None,
        ttl_expires_at=row["ttl_expires_at"],
    )


def _run_by_id(conn: sqlite3.Connection, run_id: str) -> RunRecord:
    run = _fetch_run(conn, _Q["run_get_by_id"], {"id": run_id})
    assert run is not None
    return run


def _has_ready(conn: sqlite3.Connection, environment: str, now: int, task_ids: str) -> bool:
    row = conn.execute(
        _Q["run_ready_exists"], {"environment": environment, "now": now, "task_ids": task_ids}
    ).fetchone()
    return row is not None
