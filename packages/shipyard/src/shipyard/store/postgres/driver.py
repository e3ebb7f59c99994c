"""Runs a sans-io store procedure (``store/procedures``) on a PostgreSQL connection: each step
it yields becomes a statement of ``queries.sql``, and its answer is sent back in.

``drive`` is the pool's asynchronous path; ``drive_blocking`` the heartbeat's own blocking
connection, which must not wait behind the pool. ``borrow`` lends a pooled connection and
keeps one that may hold unread results from going back to the pool; ``one_trip`` sends a
transaction in one round trip.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import psycopg
from psycopg import pq
from psycopg_pool import AsyncConnectionPool

from shipyard.store.postgres.values import records
from shipyard.store.rows import bulk_chunks
from shipyard.store.sql import load_queries
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
)

T = TypeVar("T")

_Q = load_queries("postgres")


class borrow:
    """A pooled connection; closed instead of returned if its use was cancelled or left it in
    pipeline mode.

    A task cancelled inside a pipeline (``worker.stop(grace=0)`` cancels claims and finishes
    midway) can leave the connection in pipeline mode with results nobody read, while it
    still looks idle to the pool: the next borrower then read those results as its own (seen
    as "Run id collision on batch insert": another statement's row count). Closed, the pool
    opens a fresh connection in its place.

    ``getconn``/``putconn`` rather than ``pool.connection()``: that one is a generator context
    manager that also enters the connection's own (a commit call, a lock and a generator, for
    nothing in autocommit): ~10 µs of client CPU per statement of a one-run trigger. An
    open transaction (INTRANS, INERROR) is rolled back by ``putconn``, as it was by the
    connection's exit; every caller ends its transactions in ``conn.transaction()`` or
    :func:`one_trip` blocks.
    """

    __slots__ = ("_conn", "_pool")

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def __aenter__(self) -> psycopg.AsyncConnection[Any]:
        self._conn = await self._pool.getconn()
        return self._conn

    async def __aexit__(self, kind: type[BaseException] | None, *_: object) -> None:
        conn = self._conn
        assert conn is not None
        self._conn = None
        try:
            if kind is not None and (
                not issubclass(kind, Exception)  # cancelled (or interrupted)
                or conn.pgconn.pipeline_status != pq.PipelineStatus.OFF
            ):
                with contextlib.suppress(Exception):
                    await conn.close()
        finally:
            await self._pool.putconn(conn)


@contextlib.asynccontextmanager
async def one_trip(conn: psycopg.AsyncConnection[Any]) -> AsyncIterator[psycopg.AsyncPipeline]:
    """A transaction sent as one pipeline: ``BEGIN``, the block's statements and ``COMMIT``
    go with one Sync, so one round trip (more only where the block syncs itself).

    Not ``conn.transaction()`` inside ``conn.pipeline()``: that nests pipelines of its own and
    syncs when they open and close, four round trips in all. Two statements took 0.47 ms
    that way against 0.17 ms in one trip, and a claim or finish kept the environment's slot
    row, locked in the second trip, until the ``COMMIT`` of the third: a trip to the worker
    and back with the other workers waiting behind it.

    A statement that fails makes the server skip the rest up to the Sync, ``COMMIT`` with
    them, and an exception in the block leaves ``COMMIT`` unsent: either way nothing commits,
    and the transaction is rolled back here (or, cancelled, with the connection ``borrow``
    closes)."""
    try:
        async with conn.pipeline() as pipe:
            await conn.execute("BEGIN")
            yield pipe
            await conn.execute("COMMIT")
    except Exception:
        await roll_back_open(conn)
        raise


async def roll_back_open(conn: psycopg.AsyncConnection[Any]) -> None:
    """After a failed pipeline: roll back the transaction it left open, if any (a cancelled
    one is closed by ``borrow`` instead)."""
    if (
        conn.pgconn.pipeline_status == pq.PipelineStatus.OFF
        and conn.info.transaction_status != pq.TransactionStatus.IDLE
    ):
        with contextlib.suppress(Exception):
            await conn.execute("ROLLBACK")


async def drive(conn: psycopg.AsyncConnection[Any], procedure: Procedure[T]) -> T:
    """Run every step of ``procedure`` on ``conn``; from its ``begin`` on, in one transaction
    (a savepoint inside a transaction the caller already opened)."""
    async with contextlib.AsyncExitStack() as transaction:
        in_tx = False
        result: Any = None
        while True:
            try:
                kind, name, params = procedure.send(result)
            except StopIteration as done:
                value: T = done.value
                return value
            if kind == BEGIN:
                if not in_tx:
                    await transaction.enter_async_context(conn.transaction())
                    in_tx = True
                result = None
            elif kind == SNAPSHOT:
                if not in_tx:
                    await transaction.enter_async_context(conn.transaction())
                    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    in_tx = True
                result = None
            elif kind == FEED:
                await conn.execute(_Q["feed_notify"])  # delivered at commit
                result = None
            elif kind in (NOTIFY, WANTS):
                # Delivered when (and only if) the transaction commits.
                await conn.execute(_Q[name], {"environment": params.environment})
                result = None
            elif kind == MANY:
                async with conn.cursor() as cursor:
                    await cursor.executemany(_Q[name], params)
                result = None
            elif kind == INSERT_BULK:
                result = 0
                for values in bulk_chunks(*params, pairs=False):
                    cursor = await conn.execute(_Q["run_insert_bulk"], values)
                    result += cursor.rowcount
            elif kind == INSERT_RUNS:
                cursor = await conn.execute(_Q["run_insert"], {"rows": json.dumps(params)})
                result = cursor.rowcount
            else:
                cursor = await conn.execute(_Q[name], params)
                if kind == COUNT:
                    result = cursor.rowcount
                elif kind == LOCK:
                    result = None
                elif kind == ROWS:
                    result = await cursor.fetchall()
                elif kind == ROW:
                    result = await cursor.fetchone()
                elif kind == RUNS:
                    # Rows first: a cursor's result (its column names) is there only once
                    # its results have arrived (in a pipeline, after the fetch).
                    rows = await cursor.fetchall()
                    result = records(cursor, rows)
                else:  # pragma: no cover - every kind is handled above
                    raise ValueError(f"unknown step kind {kind}")


def drive_blocking(conn: psycopg.Connection[Any], procedure: Procedure[T]) -> T:
    """:func:`drive` for the heartbeat's blocking connection (no wake-ups, no bulk steps)."""
    with contextlib.ExitStack() as transaction:
        in_tx = False
        result: Any = None
        while True:
            try:
                kind, name, params = procedure.send(result)
            except StopIteration as done:
                value: T = done.value
                return value
            if kind == BEGIN:
                if not in_tx:
                    transaction.enter_context(conn.transaction())
                    in_tx = True
                result = None
            elif kind in (COUNT, LOCK, ROWS, ROW):
                cursor = conn.execute(_Q[name], params)
                if kind == COUNT:
                    result = cursor.rowcount
                elif kind == ROWS:
                    result = cursor.fetchall()
                elif kind == ROW:
                    result = cursor.fetchone()
                else:
                    result = None
            else:  # pragma: no cover - the heartbeat uses none of the others
                raise ValueError(f"step kind {kind} is not supported on a blocking connection")
