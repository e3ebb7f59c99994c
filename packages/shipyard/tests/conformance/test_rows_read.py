"""No hot statement reads more than a batch's rows, run for real next to a backlog.

The plan check of ``test_claim_plans.py`` lets an index bound by its leading column pass, and
for most indexes on ``runs`` and ``waitpoints`` that column is the environment: a walk of
every queued (or waiting) run of an install with one environment. Here every hot statement is
executed (rolled back) on the same databases, next to 3,000 queued runs, 3,000 runs parked at
tokens and 3,000 runs finished since the last vacuum, and the rows each of its scans read are
counted. Run so, the finish's fence read ``runs_owner`` by a bitmap scan (every entry of a run
claimed since the last vacuum) and its parent checks read every queued run: a drain that slowed
down with its backlog (~8 ms per finish at 30,000 queued, under the environment's slot lock).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from test_claim_plans import (
    BACKLOG,
    DEEP,
    ENV,
    FINISHED,
    FINISHED_SINCE_VACUUM,
    PARKED,
    SETUP,
    WARM_UP,
    pg,
    plan_nodes,
    postgres_statements,
    prepare_as_driver,
    runs_analyzed,
    suspend_statements,
)

from shipyard.store.postgres import PostgresStore
from shipyard.store.postgres.listener import session_statement
from shipyard.store.sql import load_queries
from shipyard.testing.postgres import ENGINE_SCHEMA, databases, require_postgres

__all__ = ["pg"]  # the fixture, shared with test_claim_plans.py

# Not held to it: the resolver's pass over the runs whose waits may be over reads every
# WAITING run by design (only after it settled a waitpoint); retention (a pass every 10 s)
# reads the environment's runs through runs_by_environment on statistics that say it has few.
NOT_CHECKED = {"runs_wake", "retention_due", "retention_runs"}
# The reaper and the adoption read the EXECUTING runs (runs_owner) whole, by design.
READS_RUNS_OWNER = {"run_reap_expired", "run_leased"}
# Rows a statement may read from one table: a batch of 100 and its neighbours, not a backlog.
FEW_ROWS = 300


def rows_read(plan: dict[str, Any]) -> dict[str, int]:
    """Rows each scan of runs or waitpoints in an analyzed ``plan`` read (returned, and
    removed by its filter or recheck), and the entries each bitmap index scan returned (dead
    ones included: a bitmap scan never skips them), summed over their loops."""
    read: dict[str, int] = {}
    for node in plan_nodes(plan):
        if node["Node Type"] == "Bitmap Index Scan":
            key = f"index {node['Index Name']}"
            count = node.get("Actual Rows", 0) * node.get("Actual Loops", 1)
            read[key] = read.get(key, 0) + int(count)
            continue
        table = node.get("Relation Name")
        if table not in ("runs", "waitpoints") or "Scan" not in node["Node Type"]:
            continue
        per_loop = (
            node.get("Actual Rows", 0)
            + node.get("Rows Removed by Filter", 0)
            + node.get("Rows Removed by Index Recheck", 0)
        )
        key = f"{table} ({node.get('Index Name') or node['Node Type']})"
        read[key] = read.get(key, 0) + int(per_loop * node.get("Actual Loops", 1))
    return read


def test_postgres_hot_statements_read_few_rows(pg: psycopg.Connection[Any]) -> None:
    """No hot statement reads more than a batch's rows from runs or waitpoints, nor takes more
    than that from a bitmap index scan (see the module docstring)."""
    queries = load_queries("postgres")
    problems = []
    for name, params in postgres_statements().items():
        if name in NOT_CHECKED:
            continue
        with pg.transaction(force_rollback=True):
            cursor = pg.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {queries[name]}", params)
            plan = cursor.fetchone()[0][0]["Plan"]  # type: ignore[index]
        problems += too_many_rows(name, plan)
    assert problems == [], "\n".join(problems)


def too_many_rows(name: str, plan: dict[str, Any]) -> list[str]:
    """What statement ``name`` read beyond a batch's rows in ``plan`` (see ``rows_read``)."""
    return [
        f"{name}: {count} rows of {scan}"
        for scan, count in rows_read(plan).items()
        if count > FEW_ROWS and not (name in READS_RUNS_OWNER and "runs_owner" in scan)
    ]


def test_postgres_rows_read_check_catches_a_walk(pg: psycopg.Connection[Any]) -> None:
    """The check counts what a walk reads: the parent check as it was written before (status
    tested with "="), once statistics say few runs are queued, reads every queued run."""
    if not runs_analyzed(pg):
        return  # never analyzed: the planner happens to probe the primary key either way
    query = load_queries("postgres")["parents_queued_notify"]
    fixed = "status IS NOT DISTINCT FROM 'QUEUED'"
    assert fixed in query
    before = query.replace(fixed, "status = 'QUEUED'").replace(
        "environment IS NOT DISTINCT FROM :environment\n", "environment = :environment\n"
    )
    ids = json.dumps([f"run_exec{i:06d}" for i in range(100)])
    plan = pg.execute(
        f"EXPLAIN (ANALYZE, FORMAT JSON) {before}", {"environment": ENV, "ids": ids}
    ).fetchone()[0][0]["Plan"]  # type: ignore[index]
    read = rows_read(plan)
    assert any(count >= DEEP for count in read.values()), read


# The database, the session, and each hot statement's EXECUTE by statement name.
Planned = tuple[str, psycopg.Connection[Any], dict[str, str]]


@pytest.fixture
def small_then_deep() -> Iterator[Planned]:
    """An engine session whose prepared statements made their generic plans while the tables
    were small (and analyzed so), on tables since filled with the backlog, not analyzed
    since: what a worker that started on a new install runs once it is busy, when nothing
    else analyzes (autovacuum off or behind). Yields the database, the session and the
    EXECUTE of each hot statement."""
    require_postgres()
    url = asyncio.run(databases.create())
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(session_statement(ENGINE_SCHEMA))
            for statement in SETUP + WARM_UP:
                conn.execute(statement.encode())
            conn.execute("ANALYZE")
            queries = load_queries("postgres")
            statements = {**postgres_statements(), **suspend_statements()}
            executes = {}
            conn.execute("SET plan_cache_mode = force_generic_plan")
            for name, params in statements.items():
                if name in NOT_CHECKED:
                    continue
                execute = prepare_as_driver(conn, f"small_{name}", queries[name], params)
                conn.execute(sql.SQL("EXPLAIN ") + execute)  # its generic plan, made and kept
                executes[name] = execute.as_string(conn)
            for statement in FINISHED + BACKLOG + PARKED + FINISHED_SINCE_VACUUM:
                conn.execute(statement.encode())
            # The row counts the refresh reads, published now rather than within 10 s.
            conn.execute("SELECT pg_stat_force_next_flush()")
            yield url, conn, executes
    finally:
        asyncio.run(databases.drop(url))


def test_postgres_plans_made_on_small_tables_are_remade_when_the_tables_outgrow_them(
    small_then_deep: Planned,
) -> None:
    """Plans made on small tables are kept as the tables grow: once the backlog was in, hot
    statements read runs or waitpoints whole (the claim every run; with sequential scans on,
    the heartbeat's lease extension 124 million rows). The workers' statistics refresh
    analyzes the tables that outgrew their statistics (store/postgres/statistics.py), which
    makes every session plan them again."""
    url, conn, executes = small_then_deep
    # Which statements read whole tables depends on the small tables' exact sizes (a fresh
    # or a recycled database); the claim read every run in every state seen.
    assert problems_of(conn, executes), "plans made on small tables read few rows: no test"

    async def refresh() -> tuple[list[str], list[str]]:
        store = PostgresStore(url)
        try:
            return await store.statistics_refresh(), await store.statistics_refresh()
        finally:
            await store.close()

    analyzed, again = asyncio.run(refresh())
    assert {"runs", "waitpoints"} <= set(analyzed) and again == []
    assert problems_of(conn, executes) == []


def problems_of(conn: psycopg.Connection[Any], executes: dict[str, str]) -> list[str]:
    """The statements (``EXECUTE``s of prepared ones) that read more than a batch's rows, and
    what; a statement still running after 5 s counts as one."""
    problems = []
    conn.execute("SET statement_timeout = '5s'")
    for name, execute in executes.items():
        try:
            with conn.transaction(force_rollback=True):
                found = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {execute}".encode())
                plan = found.fetchone()[0][0]["Plan"]  # type: ignore[index]
        except psycopg.errors.QueryCanceled:
            problems.append(f"{name}: still running after 5 s")
            continue
        problems += too_many_rows(name, plan)
    conn.execute("RESET statement_timeout")
    return problems
