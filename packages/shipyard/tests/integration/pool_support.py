"""Reading one value through a connection pool, as the store lends its connections."""

from __future__ import annotations

from typing import LiteralString

from psycopg_pool import AsyncConnectionPool

from shipyard.store.postgres.driver import borrow


async def scalar(pool: AsyncConnectionPool, sql: LiteralString) -> int:
    """The integer in the first column of ``sql``'s first row, on a connection ``borrow`` lends."""
    async with borrow(pool) as conn:
        cursor = await conn.execute(sql)
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0])
