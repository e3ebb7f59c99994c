"""Every connection the PostgreSQL store opens is set up the same way: the engine's schema on
its search path, JIT compilation off and sequential scans only where no index serves
(store/postgres/listener.py ``session_statement``, which says why).
"""

from __future__ import annotations

from typing import Any

import psycopg

from shipyard.store.postgres import PostgresStore
from shipyard.store.postgres.driver import borrow
from shipyard.store.protocol import WorkerHeartbeatParams

SETTINGS = (
    "SELECT current_setting('search_path'), current_setting('jit'), "
    "current_setting('enable_seqscan')"
)


def settings(conn: psycopg.Connection[Any]) -> tuple[str, str, str]:
    row = conn.execute(SETTINGS).fetchone()
    assert row is not None
    return str(row[0]), str(row[1]), str(row[2])


async def test_pooled_heartbeat_and_inline_connections_share_one_setup(
    postgres_store: PostgresStore,
) -> None:
    store = postgres_store
    expected = ('"shipyard"', "off", "off")
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
