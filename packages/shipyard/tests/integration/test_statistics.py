"""A worker refreshes the planner statistics of the tables that outgrew them (PostgreSQL; see
store/postgres/statistics.py), so plans made while the tables were small do not stay."""

from __future__ import annotations

import psycopg

from shipyard.engine.engine import Engine
from shipyard.store.postgres.statistics import RELEASES_DEAD_ROWS
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


async def test_the_statistics_duty_vacuums_the_slot_releases_it_piled_up(
    engine: Engine, start_worker
):
    """Finishes insert slot_releases rows and claims delete them (0018): without autovacuum
    the dead rows would stay in every page a claim reads. The statistics duty vacuums the table
    once enough have piled up."""
    url = engine.settings.database_url
    if not url.startswith("postgresql"):
        return  # SQLite's finishes change the counters themselves: nothing piles up
    worker = await start_worker()
    duty = worker.service("statistics").duty
    with psycopg.connect(url, autocommit=True, options=ENGINE_OPTIONS) as conn:

        def vacuums() -> int:
            row = conn.execute(
                "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'slot_releases'"
            ).fetchone()
            assert row is not None
            return int(row[0])

        await duty()
        assert vacuums() == 0  # nothing dead yet: not vacuumed
        conn.execute(
            "INSERT INTO slot_releases (environment, queue, concurrency_key, released) "
            "SELECT 'dev', 'task/t', '', 1 FROM generate_series(1, %s)",
            (RELEASES_DEAD_ROWS,),
        )
        conn.execute("DELETE FROM slot_releases WHERE environment = 'dev'")
        conn.execute("SELECT pg_stat_force_next_flush()")  # counted now, not within 10 s
        await duty()
        assert vacuums() == 1
