"""SQLite implementation of the store protocol: the shared core driven on one thread.

One connection lives on one dedicated thread; every async method hops to that thread once
and runs its whole procedure there (``store/steps.py``), so the event loop never waits on
disk or on a lock, calls from one process are serialised without locks, and a procedure's
statements pay no thread hop each. One exception, for the single trigger (a hop costs about
as much CPU as the insert itself): when the store thread has nothing queued, ``run_insert``
runs on the caller's thread with a second connection, if the database's write lock is free
at once (else it hops as usual). That connection never checkpoints the WAL — the only step of
a commit that waits on the disk with ``synchronous=NORMAL`` — the store thread does, posted
every ``INLINE_CHECKPOINT_EVERY`` inline commits.

Writers across processes take the database lock with ``BEGIN IMMEDIATE``. SQLite's built-in
busy handler sleeps in coarse steps (1, 2, 5, 10 … 100 ms), which ruins tail latency, so the
busy timeout is 0 and :func:`~shipyard.store.sqlite.errors.retry_busy` retries with
sub-millisecond sleeps instead.

The file, its ``-wal``/``-shm`` files (SQLite gives them the database's mode) and a folder it
creates are private to the user (0600/0700). A read-only, damaged or full database raises a
:class:`~shipyard.errors.StoreError` that says what to do; reading works on a read-only file.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from shipyard.errors import (
    DatabaseReadOnlyError,
    ShipyardError,
    ValidationError,
)
from shipyard.records import RunRecord
from shipyard.store import procedures
from shipyard.store.core import StoreCore
from shipyard.store.doorbell import READY, Doorbell, DoorbellListener, WakeSignal
from shipyard.store.doorbell import WANTS as WANTS_RING
from shipyard.store.params import (
    MigrateParams,
    ReadyNotifyParams,
    RunClaimParams,
    RunFinishManyParams,
    RunInsertParams,
    RunInsertResult,
    WaitpointBlockManyParams,
    WaitpointBlockResult,
    WorkerHeartbeatParams,
    WorkerListLiveParams,
)
from shipyard.store.rows import bulk_chunks, run_builder
from shipyard.store.sql import load_queries, migration_files
from shipyard.store.sqlite.claim import run_claim
from shipyard.store.sqlite.errors import _Busy, once, primary_code, retry_busy, store_error
from shipyard.store.sqlite.finish import run_finish_many
from shipyard.store.sqlite.thread import StoreThread
from shipyard.store.steps import (
    BEGIN,
    COUNT,
    FEED,
    INSERT_BULK,
    INSERT_RUNS,
    LOCK,
    MANY,
    NOTIFY,
    ROW,
    ROWS,
    RUNS,
    SNAPSHOT,
    WANTS,
    Procedure,
    notify,
)

T = TypeVar("T")

_HERE = Path(__file__).parent
_Q = load_queries("sqlite")
# run_insert with ? placeholders, and the value name of each: positional binding is a third
# cheaper than 30 named look-ups per row.
_RUN_INSERT_NAMES = tuple(re.findall(r":(\w+)", _Q["run_insert"]))
_RUN_INSERT_POSITIONAL = re.sub(r":(\w+)", "?", _Q["run_insert"])
_RUN_INSERT_VALUES = operator.itemgetter(*_RUN_INSERT_NAMES)
# A worker whose last heartbeat is older than this is not rung.
_LIVE_WORKER_MS = 60_000
# How long the doorbell ports of an environment's live workers are reused (a cache policy,
# measured on the monotonic clock, not a domain time).
_PORTS_TTL_SECONDS = 1.0
# "No live worker" is read again sooner: a worker that just started must hear the next ring,
# not wait for its backup poll.
_EMPTY_PORTS_TTL_SECONDS = 0.05
# A passive WAL checkpoint is posted to the store thread after this many inline inserts (a
# single trigger writes ~10 WAL pages: about SQLite's own 1,000-page auto-checkpoint).
INLINE_CHECKPOINT_EVERY = 100
# How often a feed reader looks for what other processes committed: SQLite cannot tell it.
# One cheap indexed read per tick per process, whatever the number of subscribers.
FEED_POLL_SECONDS = 0.025


class SqliteStore(StoreCore):
    """Store backed by one SQLite file.

    ``read_only`` opens the file read-only (what SQLite does by itself when the file is
    write-protected): reads work, a write raises :class:`DatabaseReadOnlyError`.

    Example::

        store = SqliteStore(Path(".shipyard/shipyard.db"))
        await store.migrate(MigrateParams(now=clock()))
    """

    writers = 1
    """One writer at a time: a second batch write in flight would only wait for the first
    (a one-process drain measured ~15 % slower with two)."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self.read_only = read_only
        self._thread = StoreThread()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._doorbell = Doorbell()
        self._live_ports: dict[str, tuple[float, list[int]]] = {}
        # The heartbeat thread has a connection of its own: it must not queue behind the
        # store thread, which may be busy with a large batch.
        self._heartbeat_conn: sqlite3.Connection | None = None
        self._heartbeat_lock = threading.Lock()
        # This process's feed readers, woken after each write this store commits.
        self._feed_signals: list[FeedSignal] = []
        # The caller-thread connection of run_insert (see the module docstring).
        self._inline_conn: sqlite3.Connection | None = None
        self._inline_lock = threading.Lock()
        self._inline_commits = 0

    # -- plumbing ---------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            target = f"{self.path.resolve().as_uri()}?mode=ro"
            conn = sqlite3.connect(
                target, uri=True, isolation_level=None, check_same_thread=False, timeout=0
            )
        else:
            self._create_private()
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=0
            )
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            retry_busy(conn.execute, "PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            # A read-only database keeps the journal mode it has; anything else is an error.
            if primary_code(exc) != sqlite3.SQLITE_READONLY:
                raise
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = OFF")
        return conn

    def _create_private(self) -> None:
        """Create the folder (0700) and the file (0600) if missing; SQLite gives the WAL and
        shared-memory files the database file's mode."""
        folder = self.path.parent
        if not folder.exists():
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.path.exists():
            with contextlib.suppress(FileExistsError):
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    async def _run(self, procedure: Procedure[T]) -> T:
        """Drive ``procedure`` on the store thread's connection (one hop)."""
        if self._closed:
            raise ShipyardError("The store is closed.")
        return await self._thread.call(
            lambda: self._guard(lambda: self._drive(self._db(), procedure))
        )

    def _guard(self, body: Callable[[], T]) -> T:
        """Run ``body``, turning SQLite's file-level failures into errors that say what to do."""
        try:
            return body()
        except sqlite3.Error as exc:
            raise store_error(exc, self.path) from exc
        except PermissionError as exc:
            raise DatabaseReadOnlyError(
                f"Cannot create the SQLite database {self.path}: {exc.strerror}. Make its "
                "folder writable by this user, or set SHIPYARD_DATABASE_URL to another file.",
                where=str(self.path),
            ) from exc

    def _drive(self, conn: sqlite3.Connection, procedure: Procedure[T], *, wait: bool = True) -> T:
        """Run every step of ``procedure`` on ``conn``; commit (or roll back) its transaction
        and ring the workers it woke once committed. ``wait=False``: a locked database raises
        :class:`_Busy` (rolled back, nothing written) instead of being waited for."""
        retry = retry_busy if wait else once
        in_tx = False
        read_only = False
        fed = False
        wake: ReadyNotifyParams | None = None
        wants: ReadyNotifyParams | None = None
        result: Any = None
        try:
            while True:
                try:
                    kind, name, params = procedure.send(result)
                except StopIteration as done:
                    value: T = done.value
                    break
                if kind == BEGIN:
                    if not in_tx:
                        retry(conn.execute, "BEGIN IMMEDIATE")
                        in_tx = True
                    result = None
                elif kind == SNAPSHOT:
                    if not in_tx:
                        # A deferred transaction: its first read fixes the snapshot (WAL).
                        conn.execute("BEGIN")
                        in_tx = read_only = True
                    result = None
                elif kind == LOCK:
                    result = None  # BEGIN IMMEDIATE already holds the whole database
                elif kind == NOTIFY:
                    wake = params
                    result = None
                elif kind == WANTS:
                    wants = params
                    result = None
                elif kind == FEED:
                    fed = True
                    result = None
                elif kind == MANY:
                    conn.executemany(_Q[name], params)
                    result = None
                elif kind == INSERT_BULK:
                    result = sum(
                        conn.execute(_Q[name], values).rowcount
                        for values in bulk_chunks(*params, pairs=True)
                    )
                elif kind == INSERT_RUNS:
                    if len(params) == 1:  # a single trigger: no executemany iterator
                        result = conn.execute(
                            _RUN_INSERT_POSITIONAL, _RUN_INSERT_VALUES(params[0])
                        ).rowcount
                    else:
                        result = conn.executemany(
                            _RUN_INSERT_POSITIONAL, [_RUN_INSERT_VALUES(v) for v in params]
                        ).rowcount
                else:
                    sql = _Q[name]
                    if in_tx and not read_only:
                        cursor = conn.execute(sql, params)
                    else:
                        cursor = retry(conn.execute, sql, params)
                    if kind == COUNT:
                        result = cursor.rowcount
                    elif kind == ROWS:
                        result = cursor.fetchall()
                    elif kind == ROW:
                        result = cursor.fetchone()
                    elif kind == RUNS:
                        result = _records(cursor)
                    else:  # pragma: no cover - every kind is handled above
                        raise ValueError(f"unknown step kind {kind}")
            if in_tx:
                retry(conn.execute, "COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        if wake is not None:
            self._ring_from_thread(conn, wake)
        if wants is not None:
            self._ring_from_thread(conn, wants, WANTS_RING)
        if (fed or (in_tx and not read_only)) and self._feed_signals:
            for signal in list(self._feed_signals):
                signal.poke_threadsafe()
        return value

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
        with self._inline_lock:
            if self._inline_conn is not None:
                self._inline_conn.close()
                self._inline_conn = None
        with self._heartbeat_lock:
            if self._heartbeat_conn is not None:
                self._heartbeat_conn.close()
                self._heartbeat_conn = None
        self._doorbell.close()

    # -- migrations ---------------------------------------------------------------------------

    async def migrate(self, params: MigrateParams) -> list[str]:
        """Apply pending numbered migrations in one write transaction.

        Reads first: an up-to-date database (a read-only file too) takes no write lock.
        """

        def _migrate(conn: sqlite3.Connection) -> list[str]:
            files = migration_files(_HERE / "migrations")
            if {f.name for f in files} <= _applied(conn):
                return []
            retry_busy(conn.execute, "BEGIN IMMEDIATE")
            try:
                conn.execute(_Q["migrations_table"])
                done = {r[0] for r in conn.execute(_Q["migrations_applied"])}
                applied = []
                for file in files:
                    if file.name in done:
                        continue
                    for statement in _split_statements(file.read_text()):
                        conn.execute(statement)
                    conn.execute(
                        _Q["migration_record"], {"name": file.name, "applied_at": params.now}
                    )
                    applied.append(file.name)
                retry_busy(conn.execute, "COMMIT")
            except BaseException:
                _rollback(conn)
                raise
            return applied

        if self._closed:
            raise ShipyardError("The store is closed.")
        return await self._thread.call(lambda: self._guard(lambda: _migrate(self._db())))

    # -- what SQLite does its own way ----------------------------------------------------------

    async def run_insert(self, params: RunInsertParams) -> RunInsertResult:
        """Create a run, or return the live run holding the same idempotency key."""
        if params.connection is not None:
            raise ValidationError(
                "trigger(..., connection=conn) joins the caller's PostgreSQL transaction; "
                "the SQLite store has no shared connection to join."
            )
        if self._thread.idle() and not self._closed:
            inserted = self._insert_inline(params)
            if inserted is not None:
                return inserted
        return await self._run(procedures.run_insert(params))

    def _insert_inline(self, params: RunInsertParams) -> RunInsertResult | None:
        """``run_insert`` on the caller's thread, or None when it must hop: another thread
        is inserting inline, or the database is locked (by another process or the store
        thread). No wait of any kind: the caller's event loop is not held up."""
        if not self._inline_lock.acquire(blocking=False):
            return None
        try:
            if self._closed:
                return None
            conn = self._inline_conn
            if conn is None:
                conn = self._inline_conn = self._guard(self._connect_inline)
            try:
                result = self._guard(
                    lambda: self._drive(conn, procedures.run_insert(params), wait=False)
                )
            except _Busy:
                return None
            self._inline_commits += 1
            if self._inline_commits >= INLINE_CHECKPOINT_EVERY:
                self._inline_commits = 0
                self._thread.post(self._checkpoint)
            return result
        finally:
            self._inline_lock.release()

    def _connect_inline(self) -> sqlite3.Connection:
        conn = self._connect()
        # Its commits never checkpoint (the fsyncs): the store thread does, when posted.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        return conn

    def _checkpoint(self) -> None:
        """A passive WAL checkpoint on the store thread (posted; waits for no lock). A
        failure is left to the next one, or to any commit's auto-checkpoint."""
        if self._closed:
            return
        with contextlib.suppress(sqlite3.Error):
            self._db().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    async def run_claim(self, params: RunClaimParams) -> list[RunRecord]:
        """Atomically take up to ``limit`` ready runs, oldest priority-adjusted first."""
        if params.limit <= 0 or not params.task_ids:
            return []
        return await self._run(run_claim(params))

    async def run_finish_many(self, params: RunFinishManyParams) -> list[bool]:
        """Record the end of attempts; False where the fence rejected a stale attempt."""
        if not params.finishes:
            return []
        return await self._run(run_finish_many(params))

    async def run_finish_and_claim(
        self, finish: RunFinishManyParams, claim: RunClaimParams
    ) -> tuple[list[bool], list[RunRecord]]:
        """Record the end of attempts, then claim with the slots they freed: one transaction."""
        if not finish.finishes:
            return [], await self.run_claim(claim)
        if claim.limit <= 0 or not claim.task_ids:
            return await self.run_finish_many(finish), []
        return await self._run(_finish_and_claim(finish, claim))

    async def waitpoint_block_and_claim(
        self, block: WaitpointBlockManyParams, claim: RunClaimParams
    ) -> tuple[list[WaitpointBlockResult], list[RunRecord]]:
        """Block, then claim with the slots the suspended runs gave back: one transaction."""
        if not block.blocks:
            return [], await self.run_claim(claim)
        if not claim.task_ids:
            return await self.waitpoint_block_many(block), []
        return await self._run(_block_and_claim(block, claim))

    def worker_heartbeat(self, params: WorkerHeartbeatParams) -> int:
        """Blocking, callable from any thread: extend the worker's leases; return how many."""
        with self._heartbeat_lock:
            if self._closed:
                return 0

            def _beat() -> int:
                if self._heartbeat_conn is None:
                    self._heartbeat_conn = self._connect()
                return self._drive(self._heartbeat_conn, procedures.worker_heartbeat(params))

            return self._guard(_beat)

    # -- wake-ups -----------------------------------------------------------------------------

    async def feed_listen(self) -> FeedSignal:
        """Wake-ups for this process's feed readers: after every write this store commits;
        other processes' writes are found by polling every ``FEED_POLL_SECONDS``."""
        signal = FeedSignal(asyncio.get_running_loop(), self._feed_signals)
        self._feed_signals.append(signal)
        return signal

    async def ready_listen(self) -> DoorbellListener:
        """Start listening for "runs are ready" rings; the listener's port goes in workers."""
        return await DoorbellListener.start()

    async def ready_notify(self, params: ReadyNotifyParams) -> None:
        """Ring every live worker of the environment: runs are ready to claim."""
        ports = self._fresh_ports(params.environment)
        if ports is None:
            workers = await self.worker_list_live(
                WorkerListLiveParams(params.environment, params.now - _LIVE_WORKER_MS)
            )
            ports = [w.doorbell_port for w in workers if w.doorbell_port]
            self._live_ports[params.environment] = (time.monotonic(), ports)
        self._doorbell.ring(ports)

    def _fresh_ports(self, environment: str) -> list[int] | None:
        checked_at, ports = self._live_ports.get(environment, (None, []))
        ttl = _PORTS_TTL_SECONDS if ports else _EMPTY_PORTS_TTL_SECONDS
        if checked_at is None or time.monotonic() - checked_at > ttl:
            return None
        return ports

    def _ring_from_thread(
        self, conn: sqlite3.Connection, params: ReadyNotifyParams, message: bytes = READY
    ) -> None:
        """Ring (``message``: :data:`~shipyard.store.doorbell.READY` or ``WANTS``) after a
        commit, on the store thread. A failure is not the operation's: the workers' backup poll
        covers a lost ring."""
        ports = self._fresh_ports(params.environment)
        if ports is None:
            try:
                found = conn.execute(
                    _Q["worker_list_live"],
                    {"environment": params.environment, "since": params.now - _LIVE_WORKER_MS},
                ).fetchall()
            except sqlite3.Error:
                return
            ports = [r[4] for r in found if r[4]]
            self._live_ports[params.environment] = (time.monotonic(), ports)
        self._doorbell.ring(ports, message)


class FeedSignal(WakeSignal):
    """A feed reader's wake-up, poked from the store thread after a commit (at most one
    pending call into the event loop at a time, however many commits)."""

    poll_interval = FEED_POLL_SECONDS

    def __init__(self, loop: asyncio.AbstractEventLoop, registry: list[FeedSignal]) -> None:
        super().__init__()
        self._loop = loop
        self._registry = registry
        self._pending = False

    def poke_threadsafe(self) -> None:
        """Wake the reader from any thread."""
        if self._pending:
            return
        self._pending = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody reads
            self._loop.call_soon_threadsafe(self._fire)

    def _fire(self) -> None:
        self._pending = False
        self.poke()

    def close(self) -> None:
        """Stop receiving wake-ups."""
        if self in self._registry:
            self._registry.remove(self)


# -- module helpers -----------------------------------------------------------------------------


def _records(cursor: sqlite3.Cursor) -> list[RunRecord]:
    found = cursor.fetchall()
    if not found:
        return []
    build = run_builder(tuple([d[0] for d in cursor.description]))
    return [build(r) for r in found]


def _rollback(conn: sqlite3.Connection) -> None:
    """End a failed transaction; a failed COMMIT (disk full) may have ended it already."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _applied(conn: sqlite3.Connection) -> set[str]:
    """The migrations already applied, read without a write lock (none on a fresh file)."""
    try:
        return {r[0] for r in conn.execute(_Q["migrations_applied"])}
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return set()
        raise


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


def _finish_and_claim(
    finish: RunFinishManyParams, claim: RunClaimParams
) -> Procedure[tuple[list[bool], list[RunRecord]]]:
    accepted = yield from run_finish_many(finish)
    claimed = yield from run_claim(claim)
    return accepted, claimed


def _block_and_claim(
    block: WaitpointBlockManyParams, claim: RunClaimParams
) -> Procedure[tuple[list[WaitpointBlockResult], list[RunRecord]]]:
    results = yield from procedures.waitpoint_block_many(block, wake=False)
    wanted = procedures.with_freed_slots(claim, results)
    claimed = (yield from run_claim(wanted)) if wanted.limit > 0 else []
    taken = {r.id for r in claimed}
    if any(c not in taken for c in procedures.children(block.blocks)):
        # Children left to other workers (this one had no slot or not their task).
        yield notify(block.environment, max(b.now for b in block.blocks))
    return results, claimed
