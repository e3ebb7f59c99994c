"""A PostgreSQL transaction in one round trip (``store/postgres/driver.py`` ``one_trip``).

The claim and the finish lock the environment's slot row with their first statement and keep
it to the commit; psycopg's ``conn.transaction()`` inside a pipeline syncs when its nested
pipelines open and close, so the lock was held across round trips to the worker and back.
``one_trip`` sends ``BEGIN``, the statements and ``COMMIT`` behind one Sync. libpq's trace of
the connection counts the Syncs the client sent. (That the claim and the finish go this way:
``conformance/test_postgres_drain.py``.)
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from pool_support import scalar
from psycopg import pq
from psycopg_pool import AsyncConnectionPool

from shipyard.store.postgres.driver import borrow, one_trip


@pytest.fixture
async def pool(pool_of_one: AsyncConnectionPool) -> AsyncConnectionPool:
    """A pool of one connection, its database holding a table ``t`` of one row."""
    async with borrow(pool_of_one) as conn:
        await conn.execute("CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL)")
        await conn.execute("INSERT INTO t VALUES (1, 0)")
    return pool_of_one


@contextlib.contextmanager
def traced(conn: psycopg.AsyncConnection[Any]) -> Iterator[list[str]]:
    """The protocol messages the client sends on ``conn`` meanwhile (libpq's trace, "F" lines
    only), filled in when the block ends."""
    sent: list[str] = []
    with tempfile.TemporaryFile("w+") as trace:
        conn.pgconn.trace(trace.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            yield sent
        finally:
            conn.pgconn.untrace()
            trace.seek(0)
            sent.extend(line.split("\t")[2].strip() for line in trace if line.startswith("F\t"))


async def value(pool: AsyncConnectionPool) -> int:
    return await scalar(pool, "SELECT n FROM t WHERE id = 1")


async def test_a_transaction_goes_in_one_round_trip_and_commits(
    pool: AsyncConnectionPool,
) -> None:
    async with borrow(pool) as conn:
        with traced(conn) as sent:
            async with one_trip(conn):
                locked = await conn.execute("SELECT n FROM t WHERE id = 1 FOR UPDATE")
                changed = await conn.execute("UPDATE t SET n = n + 1 WHERE id = 1 RETURNING n")
        assert await locked.fetchone() == (0,)
        assert await changed.fetchone() == (1,)
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE
    assert sent.count("Sync") == 1
    assert await value(pool) == 1  # committed: another use of the connection sees it


async def three_statements(conn: psycopg.AsyncConnection[Any], middle: str | None) -> None:
    """An update, then ``middle`` (None: the block raises LookupError instead), then another
    update, in one trip."""
    async with one_trip(conn):
        await conn.execute("UPDATE t SET n = n + 1 WHERE id = 1")
        if middle is None:
            raise LookupError("the caller changed its mind")
        await conn.execute(middle)
        await conn.execute("UPDATE t SET n = n + 100 WHERE id = 1")


async def test_a_failed_statement_commits_nothing(pool: AsyncConnectionPool) -> None:
    async with borrow(pool) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero):
            await three_statements(conn, "SELECT 1 / 0")
        # Rolled back here, not left for the pool: the connection is usable at once.
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE
    assert await value(pool) == 0


async def test_an_exception_in_the_block_commits_nothing(pool: AsyncConnectionPool) -> None:
    async with borrow(pool) as conn:
        with pytest.raises(LookupError):
            await three_statements(conn, None)
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE
    assert await value(pool) == 0
