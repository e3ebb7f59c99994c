"""PostgreSQL implementation of the store protocol (psycopg 3, async, pooled).

Pooled connections run in autocommit: a one-statement operation (claim, completion batch,
common trigger) is its own transaction and costs one round trip and one commit — no separate
BEGIN/COMMIT round trips. Multi-statement operations use ``conn.transaction()``.
Claims are one statement (``FOR UPDATE SKIP LOCKED`` in a CTE), completions one statement per
batch (``unnest`` arrays, events included), so a worker pays one round trip per batch rather
than per run.
Workers are woken by ``NOTIFY shipyard_ready`` (one per trigger call or batch, never one per
row) and keep a backup poll for lost notifications. Heartbeats use a plain synchronous
connection on the heartbeat thread, independent of the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from shipyard.errors import RunNotFoundError, ShipyardError
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
from shipyard.store.doorbell import WakeSignal
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

log = logging.getLogger("shipyard.store")
_HERE = Path(__file__).parent
_Q = load_queries(_HERE / "queries.sql")
CONNECT_TIMEOUT_SECONDS = 10.0


class StoreUnavailableError(ShipyardError):
    """The database could not be reached."""

    code = "STORE_UNAVAILABLE"


def describe_url(url: str) -> str:
    """``host:port/dbname`` of a PostgreSQL URL, without user or password."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = parts.port or 5432
    return f"{host}:{port}{parts.path or ''}"


class PostgresStore:
    """Store backed by PostgreSQL.

    Example::

        store = PostgresStore("postgresql://postgres@127.0.0.1:5432/app")
        await store.migrate()
    """

    def __init__(self, url: str, *, max_connections: int = 10, wait_for_db: bool = False) -> None:
        self.url = url
        self._where = describe_url(url)
        self._wait_for_db = wait_for_db
        self._pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            open=False,
            # One statement = one transaction, one round trip (see the module docstring).
            kwargs={"autocommit": True},
        )
        self._opened = False
        self._open_lock = asyncio.Lock()
        self._closed = False
        self._heartbeat_conn: psycopg.Connection[Any] | None = None
        self._heartbeat_lock = threading.Lock()
        self._listeners: list[PostgresListener] = []
        self._slot_rows: set[str] = set()

    # -- plumbing ---------------------------------------------------------------------------

    async def _ensure_open(self) -> None:
        if self._opened:
            return
        async with self._open_lock:
            if self._opened:
                return
            delay = 0.2
            warned = False
            while True:
                try:
                    # One direct connection first: a refused or misconfigured database fails
                    # at once with its reason, instead of the pool retrying (and logging each
                    # retry) until its timeout.
                    probe = await psycopg.AsyncConnection.connect(
                        self.url, connect_timeout=int(CONNECT_TIMEOUT_SECONDS)
                    )
                    await probe.close()
                    await self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
                    break
                except (psycopg.OperationalError, PoolTimeout) as exc:
                    message = (
                        f"Cannot reach PostgreSQL at {self._where} ({_reason(exc)}); is it "
                        "running, and is SHIPYARD_DATABASE_URL right?"
                    )
                    if not self._wait_for_db:
                        with contextlib.suppress(Exception):
                            await self._pool.close()
                        raise StoreUnavailableError(message, where=self._where) from exc
                    if not warned:
                        log.warning("%s Waiting for it (--wait-for-db)…", message)
                        warned = True
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
            if warned:
                log.warning("PostgreSQL at %s is reachable; starting", self._where)
            self._opened = True

    async def close(self) -> None:
        """Close the pool, listeners and the heartbeat connection. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for listener in list(self._listeners):
            listener.close()
        if self._opened:
            await self._pool.close()
        with self._heartbeat_lock:
            if self._heartbeat_conn is not None:
                self._heartbeat_conn.close()
                self._heartbeat_conn = None

    async def _fetch_runs(self, sql: str, values: dict[str, Any]) -> list[RunRecord]:
        await self._ensure_open()
        async with self._pool.connection() as conn:
            cursor = await conn.execute(sql, values)
            return _runs(cursor.description, await cursor.fetchall())

    async def _fetchall(self, sql: str, values: dict[str, Any]) -> list[tuple[Any, ...]]:
        await self._ensure_open()
        async with self._pool.connection() as conn:
            cursor = await conn.execute(sql, values)
            return await cursor.fetchall()

    async def _execute(self, sql: str, values: dict[str, Any]) -> int:
        await self._ensure_open()
        async with self._pool.connection() as conn:
            cursor = await conn.execute(sql, values)
            return cursor.rowcount

    # -- migrations ---------------------------------------------------------------------------

    async def migrate(self) -> list[str]:
        """Apply pending migrations under an advisory lock (safe when processes race)."""
        await self._ensure_open()
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(_Q["migrate_lock"])
            await conn.execute(_Q["migrations_table"])
            cursor = await conn.execute(_Q["migrations_applied"])
            done = {row[0] for row in await cursor.fetchall()}
            applied = []
            for file in migration_files(_HERE / "migrations"):
                if file.name in done:
                    continue
                await conn.execute(file.read_text().encode())
                await conn.execute(
                    _Q["migration_record"],
                    {"name": file.name, "applied_at": int(time.time() * 1000)},
                )
                applied.append(file.name)
            return applied

    # -- runs ---------------------------------------------------------------------------------

    async def _insert_one(
        self, conn: psycopg.AsyncConnection[Any], params: RunInsertParams
    ) -> RunInsertResult:
        row = insert_row(params)
        # A conflict is an idempotency key or a debounce key already held; a racing trigger
        # can take a key between rounds, so a few rounds settle any interleaving.
        for _ in range(4):
            cursor = await conn.execute(_Q["run_insert"], row)
            inserted = await cursor.fetchone()
            if inserted is not None:
                for tag in params.tags:
                    await conn.execute(_Q["run_tag_insert"], {"run_id": params.id, "tag": tag})
                return RunInsertResult(_builder(cursor.description)(inserted), cached=False)
            if params.idempotency_key is not None:
                cursor = await conn.execute(
                    _Q["run_get_by_idempotency_key"],
                    {
                        "environment": params.environment,
                        "task_id": params.task_id,
                        "idempotency_key": params.idempotency_key,
                    },
                )
                found = _runs(cursor.description, await cursor.fetchall())
                if found:
                    if not idempotency_key_released(found[0], params):
                        return RunInsertResult(found[0], cached=True)
                    await conn.execute(
                        _Q["run_clear_idempotency_key"],
                        {"id": found[0].id, "now": params.created_at},
                    )
                    continue
            if params.debounce_key is not None:
                cursor = await conn.execute(
                    _Q["run_get_debounced"],
                    {
                        "environment": params.environment,
                        "task_id": params.task_id,
                        "debounce_key": params.debounce_key,
                    },
                )
                found = _runs(cursor.description, await cursor.fetchall())
                if found:
                    debounced = found[0]
                    if debounce_overflows(debounced, params):
                        await conn.execute(
                            _Q["run_debounce_release"],
                            {"id": debounced.id, "now": params.created_at},
                        )
                        continue
                    cursor = await conn.execute(
                        _Q["run_debounce_push"], debounce_push_row(debounced, params)
                    )
                    pushed = _runs(cursor.description, await cursor.fetchall())
                    if not pushed:
                        continue  # it started meanwhile: a new run is due
                    if params.debounce_trailing:
                        await conn.execute(_Q["run_tags_delete"], {"run_id": debounced.id})
                        for tag in params.tags:
                            await conn.execute(
                                _Q["run_tag_insert"], {"run_id": debounced.id, "tag": tag}
                            )
                    return RunInsertResult(pushed[0], cached=False)
        raise ShipyardError(f"Could not insert run {params.id}: its keys kept conflicting.")

    async def run_insert(
        self, params: RunInsertParams, connection: psycopg.AsyncConnection[Any] | None = None
    ) -> RunInsertResult:
        """Create a run, or return the live run holding the same idempotency key.

        With ``connection`` the insert joins the caller's transaction: the run exists only if
        that transaction commits.
        """
        if connection is not None:
            async with connection.transaction():
                return await self._insert_notify(connection, params)
        await self._ensure_open()
        async with self._pool.connection() as conn:
            # Fast path: insert + tags + NOTIFY in one autocommit statement.
            row = insert_row(params)
            row["tag_list"] = list(params.tags)
            cursor = await conn.execute(_Q["run_insert_notify"], row)
            inserted = await cursor.fetchone()
            if inserted is not None:
                return RunInsertResult(_builder(cursor.description)(inserted), cached=False)
            # The idempotency key is held: resolve it in a transaction.
            async with conn.transaction():
                return await self._insert_notify(conn, params)

    async def _insert_notify(
        self, conn: psycopg.AsyncConnection[Any], params: RunInsertParams
    ) -> RunInsertResult:
        result = await self._insert_one(conn, params)
        if not result.cached:
            # NOTIFY is delivered when (and only if) the transaction commits, and costs no
            # extra commit of its own.
            await conn.execute(_Q["ready_notify"], {"environment": params.environment})
        return result

    async def run_insert_many(
        self, params: Sequence[RunInsertParams], batch: BatchInsertParams | None = None
    ) -> list[RunInsertResult]:
        """Create many runs (and their batch) in one transaction, in order."""
        await self._ensure_open()
        async with self._pool.connection() as conn, conn.transaction():
            if batch is not None:
                await conn.execute(
                    _Q["batch_insert"],
                    {
                        "id": batch.id,
                        "environment": batch.environment,
                        "run_count": len(params),
                        "idempotency_key": batch.idempotency_key,
                        "created_at": batch.created_at,
                    },
                )
            if all(
                p.idempotency_key is None and p.debounce_key is None and not p.tags for p in params
            ):
                rows = [insert_row(p) for p in params]
                cursor = await conn.execute(_Q["run_insert_bulk"], {"rows": json.dumps(rows)})
                records = {r.id: r for r in _runs(cursor.description, await cursor.fetchall())}
                results = [RunInsertResult(records[p.id], cached=False) for p in params]
            else:
                results = [await self._insert_one(conn, p) for p in params]
            if batch is not None:
                await conn.execute(
                    _Q["batch_set_run_ids"],
                    {"id": batch.id, "run_ids": json.dumps([r.run.id for r in results])},
                )
            if params:
                await conn.execute(_Q["ready_notify"], {"environment": params[0].environment})
            return results

    async def run_get(self, environment: str, run_id: str) -> RunRecord | None:
        """One run by id, or None."""
        found = await self._fetch_runs(_Q["run_get"], {"environment": environment, "id": run_id})
        return found[0] if found else None

    async def run_list(self, params: RunListParams) -> Page:
        """Runs newest first, filtered, one page at a time."""
        items = await self._fetch_runs(
            _Q["run_list"],
            {
                "environment": params.environment,
                "cursor": params.cursor,
                "statuses": list(params.statuses) or None,
                "task_ids": list(params.task_ids) or None,
                "tag": params.tag,
                "batch_id": params.batch_id,
                "created_from": params.created_from,
                "created_to": params.created_to,
                "limit": params.limit + 1,
            },
        )
        more = len(items) > params.limit
        items = items[: params.limit]
        return Page(items=items, next_cursor=items[-1].id if more and items else None)

    async def run_claim(self, params: RunClaimParams) -> list[RunRecord]:
        """Atomically take up to ``limit`` ready runs within every concurrency limit.

        Two statements in one transaction, sent in one round trip (a pipeline): lock the
        environment's slot row, then choose and lease the runs (``run_claim_limited``, which
        applies the rules of ``store/claims.py``) with a snapshot taken after the lock.
        """
        if params.limit <= 0 or not params.task_ids:
            return []
        await self._ensure_open()
        env = {"environment": params.environment}
        values = {
            **env,
            "worker_id": params.worker_id,
            "task_ids": list(params.task_ids),
            "limit": params.limit,
            "now": params.now,
            "lease_expires_at": params.lease_expires_at,
            "environment_limit": params.environment_limit,
            "burst_factor": params.burst_factor,
        }
        async with self._pool.connection() as conn:
            # Peek outside the lock: an idle poll must not queue behind every completion.
            cursor = await conn.execute(_Q["run_ready_exists"], values)
            if await cursor.fetchone() is None:
                return []
            if params.environment not in self._slot_rows:
                # The lock below must find the row: were it missing, the claim statement could
                # see a row created in between and claim without the lock. Rows are never
                # deleted, so creating it once per process (committed) is enough.
                await conn.execute(_Q["environment_slot_ensure"], env)
                self._slot_rows.add(params.environment)
            async with conn.pipeline(), conn.transaction():
                lock = await conn.execute(_Q["environment_slot_lock"], env)
                claim = await conn.execute(_Q["run_claim_limited"], values)
            if await lock.fetchone() is None:  # pragma: no cover - the row was ensured
                raise ShipyardError(f"No slot row for environment {params.environment!r}.")
            return _runs(claim.description, await claim.fetchall())

    async def run_finish_many(self, params: Sequence[RunFinishParams]) -> list[bool]:
        """Record the end of attempts; False where the fence rejected a stale attempt."""
        if not params:
            return []
        await self._ensure_open()
        inputs: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for i, p in enumerate(params, 1):
            inputs.append(
                {
                    "ord": i,
                    "run_id": p.run_id,
                    "attempt_number": p.attempt_number,
                    "worker_id": p.worker_id,
                    "status": p.status,
                    "attempt_status": p.attempt_status,
                    "output": p.output,
                    "error": p.error,
                    "retry_at": p.retry_at,
                    "now": p.now,
                }
            )
            for e in p.events:
                events.append(
                    {
                        "seq": len(events),
                        "owner": i,
                        "run_id": e.run_id,
                        "ts": e.ts,
                        "kind": e.kind,
                        "level": e.level,
                        "message": e.message,
                        "attributes": e.attributes,
                    }
                )
        values = {
            "input": json.dumps(inputs),
            "events": json.dumps(events),
            "first_run_id": params[0].run_id,
        }
        # One statement: runs, attempts and the accepted inputs' events in one transaction.
        async with self._pool.connection() as conn:
            cursor = await conn.execute(_Q["run_finish_many"], values)
            # ORDINALITY is 1-based; a row updated twice in one batch matches one input only.
            accepted = {row[0] - 1 for row in await cursor.fetchall()}
        return [i in accepted for i in range(len(params))]

    async def run_release(self, params: RunReleaseParams) -> bool:
        """Give a claimed run back to the queue without counting the attempt."""
        await self._ensure_open()
        values = {
            "run_id": params.run_id,
            "attempt_number": params.attempt_number,
            "worker_id": params.worker_id,
            "now": params.now,
        }
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(_Q["environment_slot_lock_for_run"], values)
            cursor = await conn.execute(_Q["run_release"], values)
            if cursor.rowcount != 1:
                return False
            await conn.execute(_Q["attempt_release"], values)
            return True

    async def run_reap_expired(self, params: RunReapParams) -> list[ReapedRun]:
        """Take back runs whose worker stopped heartbeating."""
        rows = await self._fetchall(
            _Q["run_reap_expired"],
            {
                "environment": params.environment,
                "now": params.now,
                "crash_error": params.crash_error,
            },
        )
        return [ReapedRun(run_id=r[0], attempt_number=r[1], status=r[2]) for r in rows]

    async def run_cancel(self, params: RunCancelParams) -> list[str]:
        """Cancel a non-final run and its non-final descendants; return the ids canceled."""
        rows = await self._fetchall(
            _Q["run_cancel"],
            {
                "environment": params.environment,
                "run_id": params.run_id,
                "now": params.now,
                "error": params.error,
                "final_statuses": sorted(params.final_statuses),
            },
        )
        return [r[0] for r in rows]

    async def run_ownership(self, run_ids: Sequence[str]) -> list[RunOwnership]:
        """Status, attempt and owner of the given runs (for a worker's fence check)."""
        rows = await self._fetchall(_Q["run_ownership"], {"ids": list(run_ids)})
        return [RunOwnership(r[0], r[1], r[2], r[3]) for r in rows]

    async def run_metadata_update(self, params: RunMetadataParams) -> str:
        """Read-modify-write a run's metadata in one transaction; return the new JSON."""
        await self._ensure_open()
        async with self._pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(_Q["run_metadata_lock"], {"run_id": params.run_id})
            row = await cursor.fetchone()
            if row is None:
                raise RunNotFoundError(f"Run {params.run_id} not found.", run_id=params.run_id)
            new = params.mutate(row[0])
            await conn.execute(
                _Q["run_metadata_set"],
                {"run_id": params.run_id, "metadata": new, "now": params.now},
            )
            if params.event is not None:
                await conn.execute(_Q["run_event_insert"], event_row(params.event))
            return new

    async def run_tags_add(self, params: RunTagsAddParams) -> list[str]:
        """Add tags to a run (deduplicated, capped); return its tags."""
        await self._ensure_open()
        async with self._pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(_Q["run_tags_lock"], {"run_id": params.run_id})
            row = await cursor.fetchone()
            if row is None:
                return []
            tags: list[str] = json.loads(row[0])
            added = []
            for tag in params.tags:
                if tag not in tags and len(tags) < params.max_tags:
                    tags.append(tag)
                    added.append(tag)
            if added:
                await conn.execute(
                    _Q["run_tags_set"],
                    {"run_id": params.run_id, "tags": json.dumps(tags), "now": params.now},
                )
                for tag in added:
                    await conn.execute(_Q["run_tag_insert"], {"run_id": params.run_id, "tag": tag})
                await conn.execute(
                    _Q["run_event_insert"],
                    event_row(NewEvent(params.run_id, params.now, "tag", ",".join(added))),
                )
            return tags

    async def run_events_append(self, events: Sequence[NewEvent]) -> None:
        """Append logs, spans and other events in order."""
        if not events:
            return
        await self._ensure_open()
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.executemany(_Q["run_event_insert"], [event_row(e) for e in events])

    async def run_events_list(
        self, run_id: str, after_id: int = 0, limit: int = 1000
    ) -> list[RunEventRecord]:
        """A run's events after ``after_id``, oldest first."""
        rows = await self._fetchall(
            _Q["run_events_list"], {"run_id": run_id, "after_id": after_id, "limit": limit}
        )
        return [RunEventRecord(*row) for row in rows]

    async def attempt_list(self, run_id: str) -> list[AttemptRecord]:
        """A run's attempts, in order."""
        rows = await self._fetchall(_Q["attempt_list"], {"run_id": run_id})
        return [AttemptRecord(*row) for row in rows]

    # -- batches, keys, tasks, workers --------------------------------------------------------

    async def batch_get(self, environment: str, batch_id: str) -> BatchRecord | None:
        """One batch by id, or None."""
        rows = await self._fetchall(_Q["batch_get"], {"environment": environment, "id": batch_id})
        return BatchRecord(*rows[0]) if rows else None

    async def batch_runs(self, batch_id: str) -> list[RunRecord]:
        """A batch's runs in input order."""
        return await self._fetch_runs(_Q["batch_runs"], {"batch_id": batch_id})

    async def idempotency_key_reset(self, environment: str, task_id: str, key: str) -> int:
        """Clear a key on every run of a task that holds it; return how many."""
        values = {
            "environment": environment,
            "task_id": task_id,
            "key": key,
            "now": int(time.time() * 1000),
        }
        return await self._execute(_Q["idempotency_key_reset"], values)

    # -- queues, schedules of runs, rate limits ------------------------------------------------

    async def queue_upsert(self, params: Sequence[QueueUpsertParams]) -> None:
        """Register queues as code defines them (limits only; never un-pauses)."""
        if not params:
            return
        await self._ensure_open()
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.executemany(_Q["queue_upsert"], [_queue_row(p) for p in params])

    async def queue_list(self, environment: str) -> list[QueueRecord]:
        """Every queue of the environment with its running and queued counts."""
        rows = await self._fetchall(_Q["queue_list"], {"environment": environment})
        return [QueueRecord(*row) for row in rows]

    async def queue_update(self, params: QueueUpdateParams) -> QueueRecord | None:
        """Pause, resume or override a queue's limit; None if there is no such queue."""
        changed = await self._execute(
            _Q["queue_update"],
            {
                "environment": params.environment,
                "name": params.name,
                "now": params.now,
                "paused": None if params.paused is None else int(params.paused),
                "limit_override": params.limit_override,
                "clear_override": int(params.clear_override),
            },
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
        await self._ensure_open()
        async with self._pool.connection() as conn:
            cursor = await conn.execute(_Q["run_due_exists"], values)
            if await cursor.fetchone() is None:
                await conn.rollback()
                return ScheduledRuns(promoted=[], expired=[])
            async with conn.transaction():
                cursor = await conn.execute(_Q["run_schedule_due"], values)
                rows = await cursor.fetchall()
                promoted = [r[1] for r in rows if r[0] == "promoted"]
                if promoted:
                    await conn.execute(_Q["ready_notify"], {"environment": params.environment})
        return ScheduledRuns(promoted=promoted, expired=[r[1] for r in rows if r[0] == "expired"])

    async def run_reschedule(self, params: RunRescheduleParams) -> RunRecord | None:
        """Change a DELAYED run's time; None if the run is not DELAYED."""
        found = await self._fetch_runs(
            _Q["run_reschedule"],
            {
                "environment": params.environment,
                "run_id": params.run_id,
                "delay_until": params.delay_until,
                "now": params.now,
            },
        )
        return found[0] if found else None

    async def environment_rate_take(self, params: RateTakeParams) -> int:
        """Take tokens; 0 if taken, else the milliseconds until enough have refilled."""
        env = {"environment": params.environment}
        await self._ensure_open()
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(_Q["environment_slot_ensure"], env)
            cursor = await conn.execute(_Q["environment_rate_lock"], env)
            row = await cursor.fetchone()
            tokens, wait_ms = take_tokens(row[0] if row else None, row[1] if row else None, params)
            if wait_ms == 0:
                await conn.execute(
                    _Q["environment_rate_set"], {**env, "tokens": tokens, "now": params.now}
                )
            return wait_ms

    async def task_register(self, params: TaskRegisterParams) -> None:
        """Record a worker and the tasks it can execute."""
        w = params.worker
        await self._ensure_open()
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
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
            if params.queues:
                async with conn.cursor() as cur:
                    await cur.executemany(
                        _Q["queue_upsert"], [_queue_row(q) for q in params.queues]
                    )
            if params.tasks:
                async with conn.cursor() as cur:
                    await cur.executemany(
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

    async def task_list(self, environment: str) -> list[TaskRecord]:
        """Every task any worker of the environment registered."""
        rows = await self._fetchall(_Q["task_list"], {"environment": environment})
        return [TaskRecord(*row) for row in rows]

    async def worker_list_live(self, environment: str, since: int) -> list[WorkerRecord]:
        """Workers that heartbeated at or after ``since`` and have not stopped."""
        rows = await self._fetchall(
            _Q["worker_list_live"], {"environment": environment, "since": since}
        )
        return [WorkerRecord(*row) for row in rows]

    async def worker_stop(self, worker_id: str, now: int) -> None:
        """Mark a worker as stopped."""
        await self._execute(_Q["worker_stop"], {"worker_id": worker_id, "now": now})

    # -- waitpoints ---------------------------------------------------------------------------

    async def _waitpoint_create(
        self, conn: psycopg.AsyncConnection[Any], params: WaitpointCreateParams
    ) -> tuple[WaitpointRecord, bool]:
        values = waitpoint_values(params)
        for _ in range(3):
            if params.idempotency_key is not None:
                cursor = await conn.execute(_Q["waitpoint_get_by_key"], values)
                row = await cursor.fetchone()
                if row is not None:
                    found = WaitpointRecord(*row)
                    expires = found.idempotency_key_expires_at
                    if expires is None or expires > params.now:
                        return found, True
                    await conn.execute(_Q["waitpoint_clear_key"], {"id": found.id})
            cursor = await conn.execute(_Q["waitpoint_insert"], values)
            row = await cursor.fetchone()
            if row is not None:
                return WaitpointRecord(*row), False
        raise ShipyardError(f"Could not create waitpoint {params.id}: its key kept conflicting.")

    async def waitpoint_create(self, params: WaitpointCreateParams) -> tuple[WaitpointRecord, bool]:
        """Create a waitpoint, or return the live one holding its idempotency key (True)."""
        await self._ensure_open()
        async with self._pool.connection() as conn, conn.transaction():
            return await self._waitpoint_create(conn, params)

    async def waitpoint_get(self, environment: str, waitpoint_id: str) -> WaitpointRecord | None:
        """One waitpoint by id, or None."""
        rows = await self._fetchall(
            _Q["waitpoint_get"], {"environment": environment, "id": waitpoint_id}
        )
        return WaitpointRecord(*rows[0]) if rows else None

    async def waitpoint_list(self, params: WaitpointListParams) -> list[WaitpointRecord]:
        """Tokens (MANUAL waitpoints) newest first, filtered by status and tags (all of)."""
        rows = await self._fetchall(_Q["waitpoint_list"], {"environment": params.environment})
        return filter_waitpoints([WaitpointRecord(*r) for r in rows], params)

    async def waitpoint_recorded(
        self, run_id: str, attempt_number: int, seq: int
    ) -> RecordedCall | None:
        """The durable call an attempt recorded at ``seq``, or None."""
        rows = await self._fetchall(
            _Q["waitpoint_recorded"],
            {"run_id": run_id, "attempt_number": attempt_number, "seq": seq},
        )
        return RecordedCall(rows[0][0], WaitpointRecord(*rows[0][1:])) if rows else None

    async def waitpoint_block(self, params: WaitpointBlockParams) -> WaitpointBlockResult:
        """Link the attempt's call ``seq`` to a waitpoint; suspend the run if it is pending.

        EXECUTING → WAITING gives the run's slot back, so the environment's slot row is
        locked first (lock order: see run_finish_many in queries.sql).
        """
        await self._ensure_open()
        values: dict[str, Any] = {
            "run_id": params.run_id,
            "attempt_number": params.attempt_number,
            "worker_id": params.worker_id,
            "seq": params.seq,
            "call": params.call,
            "now": params.now,
        }
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(_Q["environment_slot_lock_for_run"], values)
            if params.create is not None:
                waitpoint_id = (await self._waitpoint_create(conn, params.create))[0].id
            else:
                assert params.waitpoint_id is not None
                waitpoint_id = params.waitpoint_id
            values["waitpoint_id"] = values["id"] = waitpoint_id
            await conn.execute(_Q["waitpoint_link"], values)
            await conn.execute(_Q["waitpoint_settle_one"], values)
            cursor = await conn.execute(_Q["waitpoint_get_by_id"], values)
            row = await cursor.fetchone()
            if row is None:
                raise ShipyardError(f"Waitpoint {waitpoint_id} not found.")
            waitpoint = WaitpointRecord(*row)
            if waitpoint.status != "PENDING":
                return WaitpointBlockResult(waitpoint, suspended=False, owned=True)
            cursor = await conn.execute(_Q["run_suspend"], values)
            owned = cursor.rowcount == 1
            if owned:
                await conn.execute(
                    _Q["run_event_insert"],
                    event_row(
                        NewEvent(
                            run_id=params.run_id, ts=params.now, kind="status", message="WAITING"
                        )
                    ),
                )
            return WaitpointBlockResult(waitpoint, suspended=owned, owned=owned)

    async def _wake(
        self, conn: psycopg.AsyncConnection[Any], environment: str, now: int
    ) -> list[str]:
        cursor = await conn.execute(_Q["runs_wake"], {"environment": environment, "now": now})
        ids = [r[0] for r in await cursor.fetchall()]
        if ids:
            async with conn.cursor() as cur:
                await cur.executemany(
                    _Q["run_event_insert"],
                    [
                        event_row(NewEvent(run_id=i, ts=now, kind="status", message="QUEUED"))
                        for i in ids
                    ],
                )
            await conn.execute(_Q["ready_notify"], {"environment": environment})
        return ids

    async def waitpoint_resolve_due(self, params: WaitpointResolveParams) -> list[str]:
        """Complete due waitpoints; WAITING → QUEUED for runs no longer blocked (their ids)."""
        values = {
            "environment": params.environment,
            "now": params.now,
            "timeout_error": params.timeout_error,
        }
        await self._ensure_open()
        async with self._pool.connection() as conn:
            cursor = await conn.execute(_Q["waitpoint_due_exists"], values)
            if await cursor.fetchone() is None:
                return []
            cursor = await conn.execute(_Q["waitpoint_resolve_due"], values)
            return [r[0] for r in await cursor.fetchall()]

    async def waitpoint_complete(self, params: WaitpointCompleteParams) -> WaitpointRecord | None:
        """Complete a token (first output wins) and re-queue the runs it released."""
        values = {
            "environment": params.environment,
            "id": params.waitpoint_id,
            "output": params.output,
            "now": params.now,
        }
        await self._ensure_open()
        async with self._pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(_Q["waitpoint_complete"], values)
            if cursor.rowcount == 1:
                await self._wake(conn, params.environment, params.now)
            cursor = await conn.execute(_Q["waitpoint_get"], values)
            row = await cursor.fetchone()
            return WaitpointRecord(*row) if row else None

    def worker_heartbeat(self, params: WorkerHeartbeatParams) -> int:
        """Blocking, callable from any thread: extend the worker's leases; return how many."""
        values = {
            "worker_id": params.worker_id,
            "now": params.now,
            "lease_expires_at": params.lease_expires_at,
            "run_ids": list(params.run_ids),
        }
        with self._heartbeat_lock:
            if self._closed:
                return 0
            if self._heartbeat_conn is None or self._heartbeat_conn.closed:
                self._heartbeat_conn = psycopg.connect(
                    self.url, connect_timeout=int(CONNECT_TIMEOUT_SECONDS)
                )
            conn = self._heartbeat_conn
            try:
                with conn.transaction():
                    conn.execute(_Q["worker_heartbeat"], values)
                    return conn.execute(_Q["worker_heartbeat_runs"], values).rowcount
            except psycopg.OperationalError:
                conn.close()
                self._heartbeat_conn = None
                raise

    # -- wake-ups -----------------------------------------------------------------------------

    async def ready_listen(self) -> PostgresListener:
        """LISTEN for "runs are ready" on a dedicated connection (reconnects by itself)."""
        listener = PostgresListener(self.url, self._listeners)
        await listener.start()
        self._listeners.append(listener)
        return listener

    async def ready_notify(self, environment: str) -> None:
        """NOTIFY the environment's workers: runs are ready to claim."""
        await self._execute(_Q["ready_notify"], {"environment": environment})


class PostgresListener(WakeSignal):
    """A worker's LISTEN connection. A lost connection is re-established with backoff; the
    worker's backup poll covers notifications missed meanwhile."""

    port: int | None = None

    def __init__(self, url: str, registry: list[PostgresListener]) -> None:
        super().__init__()
        self._url = url
        self._task: asyncio.Task[None] | None = None
        self._registry = registry

    async def start(self) -> None:
        """Start listening in the background."""
        self._task = asyncio.create_task(self._run(), name="shipyard-listen")

    async def _run(self) -> None:
        delay = 0.2
        failing = False
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT_SECONDS)
                )
                async with conn:
                    await conn.execute("LISTEN shipyard_ready")
                    if failing:
                        log.warning("LISTEN connection to PostgreSQL is back")
                        failing = False
                    delay = 0.2
                    self._event.set()  # anything may have happened while we were away
                    async for _ in conn.notifies():
                        self._event.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing:
                    log.error("LISTEN connection to PostgreSQL lost: %s (reconnecting)", exc)
                    failing = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def close(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self in self._registry:
            self._registry.remove(self)


def _reason(exc: BaseException) -> str:
    """The gist of a connection error: "Connection refused", "password authentication…"."""
    if isinstance(exc, PoolTimeout):
        return f"no connection within {CONNECT_TIMEOUT_SECONDS:.0f} s"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return first.rsplit(" failed: ", 1)[-1].strip() or first


_RUN_FIELDS = tuple(RunRecord.__dataclass_fields__)
_RUN_DEFAULTS = {
    name
    for name, f in RunRecord.__dataclass_fields__.items()
    if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
}
_BUILDERS: dict[tuple[str, ...], Callable[[Sequence[Any]], RunRecord]] = {}


def _builder(description: Any) -> Callable[[Sequence[Any]], RunRecord]:
    """A row → RunRecord function for these columns (what RunRecord.from_row does, positionally:
    from_row's two dicts per row were ~20 µs of every claimed or batch-inserted run)."""
    names = tuple(d.name for d in description or ())
    builder = _BUILDERS.get(names)
    if builder is None:
        # Fields with a default that these columns lack (a newer RunRecord than this schema)
        # keep their default.
        present = [f for f in _RUN_FIELDS if f in names]
        missing = _RUN_FIELDS[len(present) :]
        if (
            len(set(names)) == len(names)
            and tuple(present) == _RUN_FIELDS[: len(present)]
            and all(f in _RUN_DEFAULTS for f in missing)
        ):
            index = [names.index(f) for f in present]
            if index == list(range(len(present))):
                width = len(present)

                def builder(row: Sequence[Any]) -> RunRecord:
                    return RunRecord(*row[:width])

            else:

                def builder(row: Sequence[Any]) -> RunRecord:
                    return RunRecord(*[row[i] for i in index])

        else:
            name_list = list(names)

            def builder(row: Sequence[Any]) -> RunRecord:
                return RunRecord.from_row(name_list, tuple(row))

        _BUILDERS[names] = builder
    return builder


def _queue_row(p: QueueUpsertParams) -> dict[str, Any]:
    return {
        "environment": p.environment,
        "name": p.name,
        "concurrency_limit": p.concurrency_limit,
        "now": p.now,
    }


def _runs(description: Any, rows: list[tuple[Any, ...]]) -> list[RunRecord]:
    build = _builder(description)
    return [build(row) for row in rows]
