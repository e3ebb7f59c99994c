"""A worker refreshes the planner statistics of the tables that outgrew them (PostgreSQL; see
store/postgres/statistics.py), so plans made while the tables were small do not stay."""

from __future__ import annotations

import psycopg

from shipyard.engine.engine import Engine
from shipyard.testing.postgres import ENGINE_OPTIONS

GROWN = 1_500


def reltuples(url: str, table: str) -> float:
    with psycopg.connect(url, options=ENGINE_OPTIONS) as conn:
        row = conn.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (table,))
        found = row.fetchone()
        assert found is not None
        return float(found[0])


async def test_the_statistics_duty_analyzes_tables_that_outgrew_their_statistics(
    engine: Engine, start_worker
):
    worker = await start_worker()
    duty = worker.service("statistics").duty  # every 2 s; called here instead of waited for
    url = engine.settings.database_url
    if not url.startswith("postgresql"):
        assert await engine.refresh_statistics() == []  # SQLite keeps no plans to outgrow
        await duty()
        return
    with psycopg.connect(url, autocommit=True, options=ENGINE_OPTIONS) as conn:
        conn.execute(
            "INSERT INTO runs (id, environment, task_id, status, payload, queue, queued_at, "
            "sort_key, available_at, created_at, updated_at) "
            "SELECT 'run_grown' || g, 'dev', 't', 'COMPLETED', '{}', 'task/t', 0, 0, 0, 0, 0 "
            "FROM generate_series(1, %s) AS g",
            (GROWN,),
        )
        conn.execute("SELECT pg_stat_force_next_flush()")  # counted now, not within 10 s
    assert reltuples(url, "runs") < GROWN
    await duty()
    assert reltuples(url, "runs") == GROWN
    assert await engine.refresh_statistics() == []  # no longer outgrown: not analyzed again
