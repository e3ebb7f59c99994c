"""Every connection the PostgreSQL store opens is set up the same way: the engine's schema on
its search path and JIT compilation off (store/postgres/listener.py ``session_statement``).

JIT is why: PL/pgSQL keeps a trigger statement's plan for the session, costed for the rows of
its first call. A session whose first status change touched 30,000 runs kept a plan over
``jit_above_cost``, and every later claim and finish of 100 runs compiled it again (~10 ms).
"""

from __future__ import annotations

from typing import Any

import psycopg

from shipyard.store.postgres import PostgresStore
from shipyard.store.postgres.driver import borrow
from shipyard.store.protocol import WorkerHeartbeatParams

SETTINGS = "SELECT current_setting('search_path'), current_setting('jit')"


def settings(conn: psycopg.Connection[Any]) -> tuple[str, str]:
    row = conn.execute(SETTINGS).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


async def test_pooled_heartbeat_and_inline_connections_share_one_setup(
    postgres_store: PostgresStore,
) -> None:
    store = postgres_store
    expected = ('"shipyard"', "off")
    async with borrow(store._pool) as conn:
        cursor = await conn.execute(SETTINGS)
        assert await cursor.fetchone() == expected
    store.worker_heartbeat(
        WorkerHeartbeatParams(environment="test", worker_id="w", now=0, lease_expires_at=1)
    )
    assert store._heartbeat_conn is not None
    assert settings(store._heartbeat_conn) == expected
    assert store._inline.insert("SELECT 1", {}) is not None
    assert store._inline._conn is not None
    assert settings(store._inline._conn) == expected
