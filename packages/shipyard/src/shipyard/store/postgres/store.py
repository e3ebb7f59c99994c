"""PostgreSQL implementation of the store protocol: the shared core driven with awaits.

Pooled connections run in autocommit: a one-statement operation is its own transaction and
costs one round trip and one commit; a procedure that yields ``begin`` runs the rest in
``conn.transaction()``. The hot paths are one statement each: the common trigger (insert,
its created event, tags and NOTIFY; on a blocking connection when nothing else runs on the
caller's loop, ``inline.py``), the claim (the environment's slot row locked ``FOR UPDATE``,
then one statement that picks and leases the runs, both sent in one pipeline with their
``BEGIN`` and ``COMMIT``: ``driver.one_trip``), a batch of
finishes (``json_to_recordset``, events included), so a worker pays one round trip per batch
rather than per run. Workers are woken by ``NOTIFY shipyard_ready`` (one per trigger call or
batch, never one per row) and keep a backup poll for lost notifications.
Heartbeats use a plain synchronous connection on the heartbeat thread, independent of the
event loop.

Every table, function and trigger lives in the engine's own schema (``shipyard`` unless
``SHIPYARD_DATABASE_SCHEMA`` says otherwise), never ``public``: every connection the store
opens (pool, LISTEN, heartbeat, the inline insert) sets ``search_path`` to that schema once
(with JIT and sequential scans off: see ``session_statement``) right after connecting — a
session setting, which is why a transaction-mode pooler (it hands each transaction to any
server connection) cannot carry the engine. A caller's own connection
(``trigger(..., connection=conn)``) gets the schema only for the insert, inside its
transaction, and its own search path back afterwards. ``migrate`` creates the schema and moves
an install made by an earlier version (everything in ``public``) into it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from shipyard.errors import ClaimAfterFinishError, ShipyardError, StoreUnavailableError
from shipyard.records import RunRecord
from shipyard.store import procedures
from shipyard.store.core import StoreCore
from shipyard.store.params import (
    MigrateParams,
    ReadyNotifyParams,
    RunClaimParams,
    RunFinishManyParams,
    RunInsertParams,
    RunInsertResult,
    RunScheduleParams,
    ScheduledRuns,
    WorkerHeartbeatParams,
)
from shipyard.store.postgres.driver import (
    borrow,
    drive,
    drive_blocking,
    one_trip,
    roll_back_open,
)
from shipyard.store.postgres.inline import InlineInserts
from shipyard.store.postgres.listener import (
    CONNECT_TIMEOUT_SECONDS as CONNECT_TIMEOUT_SECONDS,
)
from shipyard.store.postgres.listener import DEFAULT_SCHEMA as DEFAULT_SCHEMA
from shipyard.store.postgres.listener import FEED_POLL_SECONDS, connect_blocking
from shipyard.store.postgres.listener import PostgresListener as PostgresListener
from shipyard.store.postgres.listener import session_statement as session_statement
from shipyard.store.postgres.schema import (
    adopt_public_install,
    create_schema,
    revoke_api_roles,
)
from shipyard.store.postgres.statistics import refresh_statistics
from shipyard.store.postgres.values import (
    accepted_finishes,
    claim_values,
    ends_runs,
    finish_values,
    locked_metadata,
    needs_read,
    records,
)
from shipyard.store.postgres.waitpoints import PostgresWaitpoints
from shipyard.store.rows import (
    insert_row,
    inserted_record,
)
from shipyard.store.sql import load_queries, migration_files
from shipyard.store.steps import (
    Procedure,
)

T = TypeVar("T")

log = logging.getLogger("shipyard.store")
_HERE = Path(__file__).parent
_Q = load_queries("postgres")

__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "DEFAULT_SCHEMA",
    "PostgresListener",
    "PostgresStore",
    "describe_url",
    "session_statement",
]


# How long one reconnection attempt of the pool lasts before it starts afresh (see __init__).
RECONNECT_SECONDS = 2.0


async def _retry_connecting(pool: AsyncConnectionPool[Any]) -> None:
    """The pool gave up reconnecting: start a fresh attempt (``check`` grows the pool by one
    when it is short, beginning with an immediate try), unless it is closing."""
    if pool.closed:
        return
    try:
        await pool.check()
    except Exception as exc:  # the pool closed meanwhile: nothing to reconnect
        log.debug("pool check after a failed reconnection: %s", exc)


def describe_url(url: str) -> str:
    """``host:port/dbname`` of a PostgreSQL URL, without user or password."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = parts.port or 5432
    return f"{host}:{port}{parts.path or ''}"


class PostgresStore(PostgresWaitpoints, StoreCore):
    """Store backed by PostgreSQL.

    ``schema`` holds every engine object (see the module docstring); the caller validates it
    (``Settings.database_schema``). With ``async_commit`` the transactions that claim runs
    or finish attempts (a worker's bookkeeping; a claim holds the environment's slot row to its
    commit) commit without waiting for the WAL flush (``SET LOCAL synchronous_commit``; never
    an insert of runs): a database crash may lose the last of them, and those runs are then
    handled as after a worker crash, by their leases (``Settings.postgres_async_commit``).

    Example::

        store = PostgresStore("postgresql://postgres@127.0.0.1:5432/app")
        await store.migrate(MigrateParams(now=clock()))
    """

    writers = 2
    """A worker's two batch writes in flight take two pooled connections and overlap."""

    def __init__(
        self,
        url: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        max_connections: int = 10,
        wait_for_db: bool = False,
        async_commit: bool = False,
    ) -> None:
        self.url = url
        self.async_commit = async_commit
        self.schema = schema
        self._session_setup = session_statement(schema)
        self._where = describe_url(url)
        self._wait_for_db = wait_for_db
        self._pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            open=False,
            # One statement = one transaction, one round trip (see the module docstring).
            kwargs={"autocommit": True},
            configure=self._configure,
            # psycopg_pool retries a lost connection with a backoff that doubles without a cap
            # (1, 2, 4, 8 … s): after an outage of a minute it reconnected about a minute after
            # the server was back. Each attempt gives up after a few seconds instead and starts
            # afresh (_retry_connecting), so the pool tries about once a second until it is.
            reconnect_timeout=RECONNECT_SECONDS,
            reconnect_failed=_retry_connecting,
        )
        self._opened = False
        self._open_lock = asyncio.Lock()
        self._closed = False
        self._heartbeat_conn: psycopg.Connection[Any] | None = None
        self._heartbeat_lock = threading.Lock()
        self._listeners: list[PostgresListener] = []
        self._slot_rows: set[str] = set()
        self._inline = InlineInserts(url, schema, f"{self._pool.name}-")

    # -- plumbing ---------------------------------------------------------------------------

    async def _configure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Every pooled connection, once when it is made: ``session_statement``."""
        await conn.execute(self._session_setup)

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

    async def statistics_refresh(self) -> list[str]:
        """Analyze the growing tables whose statistics they have outgrown (statistics.py)."""
        await self._ensure_open()
        return await refresh_statistics(self._pool)

    async def _run(self, procedure: Procedure[T]) -> T:
        """Drive ``procedure`` on a pooled connection."""
        await self._ensure_open()
        async with borrow(self._pool) as conn:
            return await drive(conn, procedure)

    async def close(self) -> None:
        """Close the pool, listeners and the heartbeat connection. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for listener in list(self._listeners):
            listener.close()
        if self._opened:
            await self._pool.close()
        self._inline.close()
        with self._heartbeat_lock:
            if self._heartbeat_conn is not None:
                self._heartbeat_conn.close()
                self._heartbeat_conn = None

    # -- migrations ---------------------------------------------------------------------------

    async def migrate(self, params: MigrateParams) -> list[str]:
        """Apply pending migrations under an advisory lock (safe when processes race).

        First the schema: created when missing, and an install an earlier version made in
        ``public`` is moved into it (``schema.py``), bookkeeping table included, so the
        numbered migrations then continue where that install stopped.
        """
        await self._ensure_open()
        async with borrow(self._pool) as conn, conn.transaction():
            await conn.execute(_Q["migrate_lock"])
            await create_schema(conn, self.schema)
            moved = await adopt_public_install(conn, self.schema, _HERE / "migrations")
            if moved:
                log.warning(
                    "moved the engine's %d tables and functions from schema public to %s",
                    len(moved),
                    self.schema,
                )
            await conn.execute(_Q["migrations_table"])
            cursor = await conn.execute(_Q["migrations_applied"])
            done = {row[0] for row in await cursor.fetchall()}
            applied = []
            for file in migration_files(_HERE / "migrations"):
                if file.name in done:
                    continue
                await conn.execute(file.read_text().encode())
                await conn.execute(
                    _Q["migration_record"], {"name": file.name, "applied_at": params.now}
                )
                applied.append(file.name)
            # Nothing of the engine is anyone else's business (Supabase's API roles get
            # grants in public by default; a database may grant new objects by default too).
            await revoke_api_roles(conn, self.schema)
            return applied

    # -- the hot paths, one statement each ------------------------------------------------------

    async def run_insert(self, params: RunInsertParams) -> RunInsertResult:
        """Create a run, or return the live run holding the same idempotency key.

        With ``params.connection`` the insert joins the caller's transaction: the run exists
        only if that transaction commits (and workers are notified only then).
        """
        if params.connection is not None:
            return await self._drive_caller(params.connection, procedures.run_insert(params))
        await self._ensure_open()
        # Fast path: insert, event, tags and NOTIFY in one autocommit statement; on a blocking
        # connection when nothing else runs on this loop (inline.py).
        values = insert_row(params)
        query, bound = _Q["run_insert_notify"], values
        if params.tags:
            query, bound = _Q["run_insert_notify_tags"], {**values, "tag_list": list(params.tags)}
        done = self._inline.insert(query, bound)
        if done:
            return RunInsertResult(inserted_record(values), cached=False)
        async with borrow(self._pool) as conn:
            if done is None:
                cursor = await conn.execute(query, bound)
                if await cursor.fetchone() is not None:
                    return RunInsertResult(inserted_record(values), cached=False)
            # A key is held: resolve it in a transaction.
            return await drive(conn, procedures.run_insert(params))

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
        values = claim_values(params)
        async with borrow(self._pool) as conn:
            # Peek outside the lock: an idle poll must not queue behind every completion.
            if params.peek:
                peek = {**values, "task_ids": json.dumps(values["task_ids"])}
                cursor = await conn.execute(_Q["run_ready_exists"], peek)
                if await cursor.fetchone() is None:
                    return []
            await self._ensure_slot_row(conn, params.environment)
            async with one_trip(conn):
                await self._bookkeeping(conn)
                lock = await conn.execute(_Q["environment_slot_lock"], env, prepare=True)
                claim = await conn.execute(_Q["run_claim_limited"], values, prepare=True)
            if await lock.fetchone() is None:  # pragma: no cover - the row was ensured
                raise ShipyardError(f"No slot row for environment {params.environment!r}.")
            return records(claim, await claim.fetchall())

    async def run_finish_many(self, params: RunFinishManyParams) -> list[bool]:
        """Record the end of attempts in one statement; False where the fence rejected one."""
        if not params.finishes:
            return []
        await self._ensure_open()
        async with borrow(self._pool) as conn:
            if needs_read(params):
                accepted, _ = await self._finish_locked(conn, params, None)
                return accepted
            if not ends_runs(params):
                cursor = await conn.execute(_Q["run_finish_many"], finish_values(params))
            else:
                async with one_trip(conn):
                    cursor = await conn.execute(_Q["run_finish_many"], finish_values(params))
                    await _wake_parents(conn, params)
            accepted = accepted_finishes(len(params.finishes), await cursor.fetchall())
            return await self._finish_conflicts(conn, params, accepted)

    async def run_finish_and_claim(
        self, finish: RunFinishManyParams, claim: RunClaimParams
    ) -> tuple[list[bool], list[RunRecord]]:
        """Record the end of attempts, then claim with the slots they freed: two transactions
        sent in one round trip (a pipeline). The finish commits without the environment's
        slot row (its freed slots wait in slot_releases, 0018), so only the claim holds that
        row, and another worker's finish never waits behind it; the claim, right after,
        moves the freed slots in and reuses them. A claim that fails after the finish
        committed raises :class:`~shipyard.errors.ClaimAfterFinishError` with the finish's
        answer."""
        if not finish.finishes:
            return [], await self.run_claim(claim)
        if claim.limit <= 0 or not claim.task_ids:
            return await self.run_finish_many(finish), []
        await self._ensure_open()
        env = {"environment": claim.environment}
        finish_params, claim_params = finish_values(finish), claim_values(claim)
        async with borrow(self._pool) as conn:
            await self._ensure_slot_row(conn, claim.environment)
            if needs_read(finish):
                return await self._finish_locked(conn, finish, claim)
            committed = None
            try:
                async with conn.pipeline():
                    await conn.execute("BEGIN")
                    await self._bookkeeping(conn)
                    finished = await conn.execute(
                        _Q["run_finish_many"], finish_params, prepare=True
                    )
                    # Parents waiting for these runs are woken without a NOTIFY: the claim
                    # below takes them when they are this worker's (their parked coroutine
                    # continues), and wakes the workers for those it leaves.
                    await _wake_parents(conn, finish, claiming=True)
                    committed = await conn.execute("COMMIT")
                    await conn.execute("BEGIN")
                    await self._bookkeeping(conn)
                    lock = await conn.execute(_Q["environment_slot_lock"], env, prepare=True)
                    claimed = await conn.execute(
                        _Q["run_claim_limited"], claim_params, prepare=True
                    )
                    await _notify_unclaimed_parents(conn, finish)
                    await conn.execute("COMMIT")
            except Exception as exc:
                await roll_back_open(conn)
                if committed is None or committed.statusmessage != "COMMIT":
                    raise  # nothing was written, or what was is unknown: the fence decides
                accepted = accepted_finishes(len(finish.finishes), await finished.fetchall())
                raise ClaimAfterFinishError(accepted) from exc
            if await lock.fetchone() is None:  # pragma: no cover - the row was ensured
                raise ShipyardError(f"No slot row for environment {claim.environment!r}.")
            accepted = accepted_finishes(len(finish.finishes), await finished.fetchall())
            accepted = await self._finish_conflicts(conn, finish, accepted)
            return accepted, records(claimed, await claimed.fetchall())

    async def _finish_conflicts(
        self,
        conn: psycopg.AsyncConnection[Any],
        params: RunFinishManyParams,
        accepted: list[bool],
    ) -> list[bool]:
        """Finishes whose metadata compare-and-set found the row changed (someone else wrote
        the run's metadata meanwhile, e.g. a child's ``metadata.parent``), written again with
        the row read and locked. A finish the fence rejected is rejected again (no run is
        finished twice: the fence requires EXECUTING). Rare: the claim made with the first
        statement counted their slots as freed, so the worker holds that many more runs than
        its concurrency until this returns (the environment's limits are the database's)."""
        again = [
            i
            for i, (f, ok) in enumerate(zip(params.finishes, accepted, strict=True))
            if not ok and f.metadata is not None
        ]
        if not again:
            return accepted
        retry = RunFinishManyParams(
            environment=params.environment,
            finishes=[
                replace(params.finishes[i], metadata=locked_metadata(params.finishes[i]))
                for i in again
            ],
        )
        redone, _ = await self._finish_locked(conn, retry, None)
        for i, ok in zip(again, redone, strict=True):
            accepted[i] = ok
        return accepted

    async def _finish_locked(
        self,
        conn: psycopg.AsyncConnection[Any],
        finish: RunFinishManyParams,
        claim: RunClaimParams | None,
    ) -> tuple[list[bool], list[RunRecord]]:
        """The finish (and claim) of a batch with metadata operations to apply to the stored
        metadata: one transaction, two round trips (not one write per run): the slot lock and
        the stored metadata of those runs, locked; then, mutated here, the finish and the
        claim."""
        await self._ensure_slot_row(conn, finish.environment)
        ids = [f.run_id for f in finish.finishes if f.metadata is not None]
        claimed = None
        async with one_trip(conn) as pipe:
            await self._bookkeeping(conn)
            lock = await conn.execute(
                _Q["environment_slot_lock"], {"environment": finish.environment}
            )
            read = await conn.execute(
                _Q["run_finish_metadata_get"],
                {"environment": finish.environment, "ids": json.dumps(ids)},
            )
            await pipe.sync()
            if await lock.fetchone() is None:  # pragma: no cover - the row was ensured
                raise ShipyardError(f"No slot row for environment {finish.environment!r}.")
            stored = {str(r[0]): str(r[1]) for r in await read.fetchall()}
            values = finish_values(finish, stored)
            finished = await conn.execute(_Q["run_finish_many"], values)
            await _wake_parents(conn, finish, claiming=claim is not None)
            if claim is not None:
                # Again (the row is held already): moves in the slots this finish just freed.
                await conn.execute(_Q["environment_slot_lock"], {"environment": finish.environment})
                claimed = await conn.execute(_Q["run_claim_limited"], claim_values(claim))
                await _notify_unclaimed_parents(conn, finish)
        accepted = accepted_finishes(len(finish.finishes), await finished.fetchall())
        if claimed is None:
            return accepted, []
        return accepted, records(claimed, await claimed.fetchall())

    async def _bookkeeping(
        self, conn: psycopg.AsyncConnection[Any], *, triggers: bool = False
    ) -> None:
        """First statement of a claim or finish transaction: its statements use their generic
        plan from the first execution, and with ``async_commit`` its commit does not wait for
        the WAL flush (this transaction only; the slot row is locked to the commit, so the
        flush, ~2.5 ms on a stock server, was every worker's wait). ``triggers``: the
        transaction also creates runs (a suspend's children), so it always waits for the flush.

        Generic plans: the claim and the finish are also prepared at their first execution
        (``prepare=True``). Left to the defaults, each pooled connection planned them about
        eleven times (five unprepared executions, five custom plans, then the generic plan
        PostgreSQL keeps for them anyway), and again after every ``ANALYZE``: in a 20,000-run
        two-process drain, 95 plans of the claim at ~2.4 ms each. Now 25, and the drain's
        planning went from 318 to 114 ms (``pg_stat_statements``).
        """
        await conn.execute(_Q["bookkeeping_generic_plans"])
        if self.async_commit and not triggers:
            await conn.execute(_Q["bookkeeping_async_commit"])

    async def _ensure_slot_row(self, conn: psycopg.AsyncConnection[Any], environment: str) -> None:
        """Create the environment's slot row once per process, before a claim locks it: were
        it missing, the claim statement could see a row created in between and claim without
        the lock. Rows are never deleted, so once (committed) is enough."""
        if environment not in self._slot_rows:
            await conn.execute(_Q["environment_slot_ensure"], {"environment": environment})
            self._slot_rows.add(environment)

    async def run_schedule_due(self, params: RunScheduleParams) -> ScheduledRuns:
        """Expire, promote, wake and report the next due time in one statement (a worker's
        scheduler runs this at every due time: its round trips are lateness)."""
        await self._ensure_open()
        async with borrow(self._pool) as conn:
            cursor = await conn.execute(
                _Q["run_schedule_pass"],
                {
                    "environment": params.environment,
                    "now": params.now,
                    "expired_error": params.expired_error,
                },
            )
            found = await cursor.fetchall()
        times = [int(r[2]) for r in found if r[0] == "next" and r[2] is not None]
        return ScheduledRuns(
            promoted=[r[1] for r in found if r[0] == "promoted"],
            expired=[r[1] for r in found if r[0] == "expired"],
            next_due=min(times) if times else None,
        )

    async def _drive_caller(self, conn: psycopg.AsyncConnection[Any], procedure: Procedure[T]) -> T:
        """Drive ``procedure`` in the caller's own connection and transaction: the engine's
        schema is set for the procedure only (``set_config(..., true)``: this transaction),
        and the caller's search path is given back, so their own names resolve as before."""
        async with conn.transaction():
            cursor = await conn.execute("SELECT current_setting('search_path')")
            found = await cursor.fetchone()
            before = found[0] if found else ""
            await conn.execute(
                "SELECT set_config('search_path', %s, true)",
                (f'"{self.schema}"',),  # a plain identifier (Settings validates it)
            )
            try:
                return await drive(conn, procedure)
            finally:
                with contextlib.suppress(psycopg.Error):
                    await conn.execute("SELECT set_config('search_path', %s, true)", (before,))

    def worker_heartbeat(self, params: WorkerHeartbeatParams) -> int:
        """Blocking, callable from any thread: extend the worker's leases; return how many."""
        with self._heartbeat_lock:
            if self._closed:
                return 0
            if self._heartbeat_conn is None or self._heartbeat_conn.closed:
                self._heartbeat_conn = connect_blocking(self.url, self.schema)
            conn = self._heartbeat_conn
            try:
                return drive_blocking(conn, procedures.worker_heartbeat(params))
            except psycopg.OperationalError:
                conn.close()
                self._heartbeat_conn = None
                raise

    # -- wake-ups -----------------------------------------------------------------------------

    async def ready_listen(self) -> PostgresListener:
        """LISTEN for "runs are ready" on a dedicated connection (reconnects by itself)."""
        listener = PostgresListener(self.url, self._listeners, self.schema)
        await listener.start()
        self._listeners.append(listener)
        return listener

    async def feed_listen(self) -> PostgresListener:
        """LISTEN for feed changes (status, metadata, tags, input, stream chunks) and new runs,
        on a dedicated connection (reconnects by itself)."""
        listener = PostgresListener(
            self.url,
            self._listeners,
            self.schema,
            channels=("shipyard_feed", "shipyard_ready"),
            poll_interval=FEED_POLL_SECONDS,
        )
        await listener.start()
        self._listeners.append(listener)
        return listener

    async def ready_notify(self, params: ReadyNotifyParams) -> None:
        """NOTIFY the environment's workers: runs are ready to claim."""
        await self._ensure_open()
        async with borrow(self._pool) as conn:
            await conn.execute(_Q["ready_notify"], {"environment": params.environment})


def _reason(exc: BaseException) -> str:
    """The gist of a connection error: "Connection refused", "password authentication…"."""
    if isinstance(exc, PoolTimeout):
        return f"no connection within {CONNECT_TIMEOUT_SECONDS:.0f} s"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return first.rsplit(" failed: ", 1)[-1].strip() or first


async def _wake_parents(
    conn: psycopg.AsyncConnection[Any], params: RunFinishManyParams, *, claiming: bool = False
) -> None:
    """After the finish statement, in its transaction (each statement sees the ones before):
    settle the run/batch waitpoints of the runs it ended and wake their parents (NOTIFY), as
    the shared procedure does. A finish the fence rejected changed nothing: harmless here.
    ``claiming``: a claim follows in the transaction; workers are woken only for the parents
    it leaves (:func:`_notify_unclaimed_parents`), not for those it takes (the NOTIFY woke
    this worker's own claimer, whose empty claim then held the slot-row lock against the
    resumed parent's next suspend)."""
    if not ends_runs(params):
        return
    wake = _wake_values(params)
    await conn.execute(_Q["waitpoint_settle_finished"], wake)
    await conn.execute(_Q["runs_wake_parents_quiet" if claiming else "runs_wake_parents"], wake)


async def _notify_unclaimed_parents(
    conn: psycopg.AsyncConnection[Any], params: RunFinishManyParams
) -> None:
    """After the claim that follows :func:`_wake_parents` (``claiming``): NOTIFY if a parent
    it woke is still queued."""
    if ends_runs(params):
        await conn.execute(_Q["parents_queued_notify"], _wake_values(params))


def _wake_values(params: RunFinishManyParams) -> dict[str, Any]:
    return {
        "environment": params.environment,
        "ids": json.dumps([f.run_id for f in params.finishes if f.settles]),
        "now": max(f.now for f in params.finishes),
    }
