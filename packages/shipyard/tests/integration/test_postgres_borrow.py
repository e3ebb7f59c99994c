"""A pooled PostgreSQL connection whose use was cancelled is closed, never lent again.

A task cancelled inside a pipeline (``worker.stop(grace=0)`` cancels claims and finishes
midway) could leave results unread on a connection that still looked idle, and the next
borrower read them as its own ("Run id collision on batch insert": another statement's row
count, seen after a worker stopped abruptly).
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from pool_support import scalar
from psycopg_pool import AsyncConnectionPool

from shipyard.store.postgres.driver import borrow


@pytest.fixture
def pool(pool_of_one: AsyncConnectionPool) -> AsyncConnectionPool:
    """A pool of one connection: whatever is lent next is what came back."""
    return pool_of_one


async def backend(pool: AsyncConnectionPool) -> int:
    return await scalar(pool, "SELECT pg_backend_pid()")


async def test_a_cancelled_use_closes_the_connection(pool: AsyncConnectionPool) -> None:
    first = await backend(pool)
    assert await backend(pool) == first  # an ordinary use gives it back

    inside = asyncio.Event()

    async def cancelled() -> None:
        async with borrow(pool) as conn, conn.pipeline():
            await conn.execute("SELECT 1")
            inside.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(cancelled())
    await inside.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await backend(pool) != first  # a fresh connection took its place


async def test_an_error_in_a_finished_pipeline_gives_the_connection_back(
    pool: AsyncConnectionPool,
) -> None:
    first = await backend(pool)

    async def failing() -> None:
        async with borrow(pool) as conn:
            async with conn.pipeline():
                await conn.execute("SELECT 1")
            raise ValueError("an ordinary error, every result read")

    with pytest.raises(ValueError, match="ordinary error"):
        await failing()
    assert await backend(pool) == first


async def test_an_error_inside_a_transaction_gives_the_connection_back_rolled_back(
    pool: AsyncConnectionPool,
) -> None:
    # borrow returns the connection with putconn, not through the connection's own exit: the
    # pool rolls back what the error left open, and the next borrower starts clean.
    first = await backend(pool)

    async def failing() -> None:
        async with borrow(pool) as conn:
            await conn.execute("BEGIN")
            await conn.execute("CREATE TABLE left_open (x int)")
            raise ValueError("an error with a transaction open")

    with pytest.raises(ValueError, match="transaction open"):
        await failing()
    async with borrow(pool) as conn:
        cursor = await conn.execute("SELECT pg_backend_pid(), to_regclass('left_open')")
        assert await cursor.fetchone() == (first, None)
