"""The claim path stays on its indexes however deep the backlog, without ANALYZE.

A worker's hot statements (claim, peek, finish, scheduler pass, reaper, heartbeat, adoption,
the waits service's checks) are planned here on real databases right after a bulk insert of
queued runs onto a paused queue — a table never analyzed, and one analyzed while it held only
finished runs (statistics that say no run is queued) — with the parameters the stores send.
Every access to ``runs`` must be an index probe: no sequential scan, and no index walked whole
for a condition on a later column (the planner may do that when it believes an index tiny; at
10⁶ queued runs each such walk reads every one of them). On PostgreSQL both the custom plan
and the generic plan a prepared statement settles on are checked. No timing: plans only.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.adapt import Transformer

from shipyard.store.params import RunClaimParams, RunFinishManyParams, RunFinishParams
from shipyard.store.postgres.values import claim_values, finish_values
from shipyard.store.sql import load_queries
from shipyard.testing.postgres import ENGINE_OPTIONS, databases, require_postgres

ENV = "development"
NOW = 1_800_000_000_000
DEEP = 3_000  # queued runs on the paused queue: enough for the planner to care
TASKS = ["drain-task", "deep-task"]


def claim_params() -> RunClaimParams:
    return RunClaimParams(
        environment=ENV,
        worker_id="w1",
        task_ids=TASKS,
        limit=100,
        now=NOW,
        lease_expires_at=NOW + 30_000,
        environment_limit=100,
        burst_factor=1.0,
        version="v1",
        live_since=NOW - 30_000,
    )


def finish_params() -> RunFinishManyParams:
    return RunFinishManyParams(
        environment=ENV,
        finishes=[
            RunFinishParams(
                run_id=f"run_exec{i:06d}",
                attempt_number=1,
                worker_id="w1",
                status="COMPLETED",
                attempt_status="COMPLETED",
                output=None,
                error=None,
                retry_at=None,
                now=NOW,
                events=[],
            )
            for i in range(100)
        ],
    )


def postgres_statements() -> dict[str, dict[str, Any]]:
    """The worker's statements on PostgreSQL and the parameters it sends them."""
    ids = json.dumps([f"run_exec{i:06d}" for i in range(100)])
    env = {"environment": ENV}
    return {
        "run_ready_exists": {
            **claim_values(claim_params()),
            "task_ids": json.dumps(claim_params().task_ids),
        },
        "run_claim_limited": claim_values(claim_params()),
        "run_finish_many": finish_values(finish_params()),
        "run_schedule_pass": {**env, "now": NOW, "expired_error": "{}"},
        "run_reap_expired": {**env, "now": NOW, "crash_error": "{}"},
        "worker_heartbeat_runs": {
            **env,
            "lease_expires_at": NOW,
            "worker_id": "w1",
            "run_ids": ids,
        },
        "run_leased": {**env, "worker_id": "w1"},
        "run_next_due": env,
        "waitpoint_due_exists": {**env, "now": NOW},
        "runs_wake": {**env, "now": NOW},
        "runs_wake_waitpoint": {**env, "id": "waitpoint_park000001", "now": NOW},
        "runs_wake_waitpoint_notify": {**env, "id": "waitpoint_park000001", "now": NOW},
        # A finish that ends runs a parent waits for (trigger_and_wait), then claims.
        "waitpoint_settle_finished": {**env, "ids": ids, "now": NOW},
        "runs_wake_parents": {**env, "ids": ids, "now": NOW},
        "runs_wake_parents_quiet": {**env, "ids": ids, "now": NOW},
        "parents_queued_notify": {**env, "ids": ids},
        "run_pending_exists": {**env, "task_ids": json.dumps(TASKS)},
        "run_ownership": {**env, "ids": ids},
        "retention_due": {**env, "before": NOW - 86_400_000},
        "retention_runs": {**env, "before": NOW - 86_400_000, "limit": 100},
    }


ROWS = """
INSERT INTO runs (id, environment, task_id, status, payload, queue, queued_at, sort_key,
                  available_at, created_at, updated_at, lease_owner, lease_expires_at,
                  attempt_number, started_at, finished_at, delay_until, ttl_expires_at)
SELECT {prefix} || lpad(g::text, 6, '0'), 'development', {task}, {status}, '{{"i": 1}}',
       {queue}, {base} + g, {base} + g, {base}, {base}, {base}, {owner}, {lease}, {attempt},
       {started}, {finished}, {delay}, {ttl}
FROM generate_series(1, {count}) AS g
"""


def rows(count: int, prefix: str, status: str, queue: str, **extra: str) -> str:
    """``count`` runs in one statement (a bulk insert: the planner sees no statistics)."""
    values = {
        "task": "'deep-task'" if queue == "deep" else "'drain-task'",
        "owner": "NULL",
        "lease": "NULL",
        "attempt": "0",
        "started": "NULL",
        "finished": "NULL",
        "delay": "NULL",
        "ttl": "NULL",
        **extra,
    }
    return ROWS.format(
        prefix=f"'{prefix}'",
        status=f"'{status}'",
        queue=f"'{queue}'",
        base=str(NOW - 1_000_000),
        count=count,
        **values,
    )


WARM_UP = [rows(1, "run_warm", "COMPLETED", "drain", finished=str(NOW - 600_000))]
FINISHED = [rows(2_000, "run_done", "COMPLETED", "drain", finished=str(NOW - 500_000))]
# When the table is analyzed: never; after one finished run (statistics say the environment has
# one run); after 2,000 finished runs (they say none is queued). The backlog comes after.
STATES = ["never-analyzed", "analyzed-when-short", "analyzed-before-backlog"]
BACKLOG = [
    rows(DEEP, "run_deep", "QUEUED", "deep"),
    rows(20, "run_ready", "QUEUED", "drain"),
    rows(
        100,
        "run_exec",
        "EXECUTING",
        "drain",
        owner="'w1'",
        lease=str(NOW + 30_000),
        attempt="1",
        started=str(NOW - 1_000),
    ),
    rows(10, "run_later", "DELAYED", "drain", delay=str(NOW + 60_000)),
    rows(10, "run_ttl", "QUEUED", "drain", ttl=str(NOW + 60_000)),
]
# Runs parked at tokens (PostgreSQL only): WAITING runs, each with a pending waitpoint.
PARKED = [
    rows(DEEP, "run_park", "WAITING", "deep", attempt="1", started=str(NOW - 1_000)),
    "INSERT INTO waitpoints (id, environment, kind, status, created_at) "
    f"SELECT 'waitpoint_park' || lpad(g::text, 6, '0'), 'development', 'MANUAL', 'PENDING', {NOW} "
    f"FROM generate_series(1, {DEEP}) AS g",
    "INSERT INTO run_waitpoints (run_id, attempt_number, seq, waitpoint_id, call, created_at) "
    "SELECT 'run_park' || lpad(g::text, 6, '0'), 1, 1, 'waitpoint_park' || lpad(g::text, 6, '0'), "
    f"'wait.for_token', {NOW} FROM generate_series(1, {DEEP}) AS g",
]
# Runs claimed and finished since the last vacuum (PostgreSQL only): their EXECUTING row
# versions are dead, but runs_owner keeps an entry for each until vacuum; a bitmap scan of it
# visits them all. The slot counters their finish moved are put back.
FINISHED_SINCE_VACUUM = [
    rows(
        DEEP,
        "run_gone",
        "EXECUTING",
        "drain",
        owner="'w1'",
        lease=str(NOW + 30_000),
        attempt="1",
        started=str(NOW - 2_000),
    ),
    f"UPDATE runs SET status = 'COMPLETED', lease_owner = NULL, finished_at = {NOW - 1_000} "
    "WHERE id LIKE 'run_gone%'",
    "UPDATE environment_slots SET running = 100",
    "DELETE FROM concurrency_slots",
]
SETUP = [
    "INSERT INTO environment_slots (environment, running) VALUES ('development', 100)",
    "INSERT INTO queues (environment, name, concurrency_limit, paused, created_at, updated_at) "
    "VALUES ('development', 'deep', NULL, 1, 0, 0), ('development', 'drain', NULL, 0, 0, 0)",
    "INSERT INTO workers (id, environment, host, pid, started_at, heartbeat_at) "
    f"VALUES ('w1', 'development', 'h', 1, {NOW}, {NOW})",
]


# --- PostgreSQL ---------------------------------------------------------------------------


@pytest.fixture(params=STATES)
def pg(request: pytest.FixtureRequest) -> Iterator[psycopg.Connection[Any]]:
    """A migrated database holding the backlog (see the module docstring)."""
    require_postgres()
    import asyncio

    url = asyncio.run(databases.create())
    try:
        with psycopg.connect(url, autocommit=True, options=ENGINE_OPTIONS) as conn:
            for statement in SETUP + WARM_UP:
                conn.execute(statement.encode())
            if request.param == "analyzed-when-short":
                conn.execute("ANALYZE runs")
            for statement in FINISHED:
                conn.execute(statement.encode())
            if request.param == "analyzed-before-backlog":
                conn.execute("ANALYZE runs")
            for statement in BACKLOG + PARKED + FINISHED_SINCE_VACUUM:
                conn.execute(statement.encode())
            yield conn
    finally:
        asyncio.run(databases.drop(url))


def runs_indexes(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """Each index on runs and its leading column (or expression)."""
    found = conn.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid, 1, true) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = 'runs'::regclass"
    ).fetchall()
    return {name: leading for name, leading in found}


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


# Indexes a statement may read whole: runs_owner holds the EXECUTING runs only, as many as the
# concurrency limits allow (the reaper and the finish read it so, by design).
BOUNDED = {"runs_owner"}


def check_plan(name: str, plan: dict[str, Any], indexes: dict[str, str]) -> list[str]:
    """What is wrong with the accesses to runs in ``plan`` (nothing: an empty list)."""
    problems = []
    for node in plan_nodes(plan):
        if node.get("Relation Name") == "runs" and node["Node Type"] == "Seq Scan":
            problems.append(f"{name}: Seq Scan on runs")
        index = node.get("Index Name")
        if index in indexes and index not in BOUNDED:
            leading = indexes[index]
            cond = node.get("Index Cond", "")
            # Bound by the leading column: a probe, not a walk of the whole index.
            if not re.search(rf"(^|[(\s]){re.escape(leading)} (=|<|>|<=|>=|IS)", cond):
                problems.append(f"{name}: {index} walked whole (Index Cond: {cond or 'none'})")
    return problems


def explain_custom(conn: psycopg.Connection[Any], query: str, params: dict[str, Any]) -> Any:
    cursor = conn.execute(f"EXPLAIN (FORMAT JSON) {query}", params)
    return cursor.fetchone()[0][0]["Plan"]  # type: ignore[index]


def prepare_as_driver(
    conn: psycopg.Connection[Any], name: str, query: str, params: dict[str, Any]
) -> sql.Composed:
    """Prepare ``query`` as the driver prepares it (its parameter types) under ``name``; the
    ``EXECUTE`` of it with ``params``."""
    from psycopg._queries import PostgresQuery

    converted = PostgresQuery(Transformer(conn))
    converted.convert(query, params)
    result = conn.pgconn.prepare(name.encode(), converted.query, converted.types)
    assert result.status == psycopg.pq.ExecStatus.COMMAND_OK, result.error_message
    order = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", query)))
    args = sql.SQL(", ").join(sql.Literal(params[k]) for k in order)
    return sql.SQL("EXECUTE {}({})").format(sql.Identifier(name), args)


def explain_generic(
    conn: psycopg.Connection[Any], name: str, query: str, params: dict[str, Any]
) -> Any:
    """The plan a prepared statement settles on (PostgreSQL 15 has no EXPLAIN GENERIC_PLAN):
    prepared as the driver prepares it, explained under force_generic_plan."""
    statement = f"plan_{name}"
    execute = prepare_as_driver(conn, statement, query, params)
    conn.execute("SET plan_cache_mode = force_generic_plan")
    try:
        found = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) ") + execute).fetchone()
    finally:
        conn.execute("RESET plan_cache_mode")
        conn.execute(sql.SQL("DEALLOCATE {}").format(sql.Identifier(statement)))
    return found[0][0]["Plan"]  # type: ignore[index]


def test_postgres_hot_statements_probe_indexes(pg: psycopg.Connection[Any]) -> None:
    queries = load_queries("postgres")
    indexes = runs_indexes(pg)
    problems = []
    for name, params in postgres_statements().items():
        problems += check_plan(name, explain_custom(pg, queries[name], params), indexes)
        problems += check_plan(
            f"{name} (generic)", explain_generic(pg, name, queries[name], params), indexes
        )
    assert problems == [], "\n".join(problems)


def trigger_plans(
    conn: psycopg.Connection[Any], first: str, statement: str
) -> list[dict[str, Any]]:
    """The plans of the statements the runs triggers ran for ``statement``, after ``first``
    in the same session (both rolled back), from auto_explain (LOAD: this session only)."""
    with conn.transaction(force_rollback=True):
        conn.execute(first.encode())
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
    conn.execute("LOAD 'auto_explain'")
    for name, value in [
        ("log_min_duration", "0"),
        ("log_nested_statements", "on"),
        ("log_format", "json"),
        ("log_level", "notice"),
    ]:
        conn.execute(f"SET auto_explain.{name} = '{value}'")
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(statement.encode())
    finally:
        conn.execute("SET auto_explain.log_min_duration = -1")
    found = [json.loads(n.split("plan:", 1)[1]) for n in notices if "plan:" in n]
    return [f["Plan"] for f in found if "_runs" in f["Query Text"]]


def test_postgres_slot_counters_join_no_transition_tables(pg: psycopg.Connection[Any]) -> None:
    """The slot counter trigger of a status change reads each transition table once: a nested
    loop over both compared every old row with every new one, 10⁴ comparisons per 100 runs per
    join, in the transaction that holds the environment's slot row (0012). PL/pgSQL plans a
    trigger's statement at its first call in a session, for that call's transition tables, and
    keeps the plan: a session whose first status change was one run's kept a nested loop for
    every later batch."""
    plans = trigger_plans(
        pg,
        "UPDATE runs SET status = 'COMPLETED' WHERE id = 'run_exec000001'",
        "UPDATE runs SET status = 'COMPLETED', updated_at = updated_at + 1 "
        "WHERE id LIKE 'run_exec%' AND status = 'EXECUTING'",
    )
    slots = [p for p in plans if "_slots" in json.dumps(p)]
    assert len(plans) == 3 and len(slots) == 2  # environment, group counters; status events
    loops = [
        node
        for plan in slots
        for node in plan_nodes(plan)
        if node["Node Type"] == "Nested Loop"
        and sum(n["Node Type"] == "Named Tuplestore Scan" for n in plan_nodes(node)) > 1
    ]
    assert loops == []
    counted = pg.execute("SELECT running FROM environment_slots").fetchone()
    assert counted == (100,)  # rolled back


def runs_analyzed(conn: psycopg.Connection[Any]) -> bool:
    """Whether ``runs`` has statistics (the database's state is not "never-analyzed")."""
    found = conn.execute("SELECT reltuples >= 0 FROM pg_class WHERE oid = 'runs'::regclass")
    row = found.fetchone()
    return bool(row and row[0])


def test_postgres_plan_check_catches_a_walk(pg: psycopg.Connection[Any]) -> None:
    """The check catches what it is for: the claim as it was written before (its lookup by id
    also saying status = 'QUEUED') walks runs_ready_by_group whole once statistics say few
    runs are queued; and a lookup by id through an index ending with id is a walk."""
    indexes = runs_indexes(pg)
    walk = {
        "Node Type": "Index Scan",
        "Index Name": "runs_ready_by_group",
        "Index Cond": "(id = chosen.id)",
        "Relation Name": "runs",
    }
    assert check_plan("q", walk, indexes) == [
        "q: runs_ready_by_group walked whole (Index Cond: (id = chosen.id))"
    ]
    if not runs_analyzed(pg):
        return  # never analyzed: the planner happens to probe the primary key either way
    claim = load_queries("postgres")["run_claim_limited"]
    fixed = "WHERE r.id = chosen.id AND r.status = chosen.status"
    assert fixed in claim
    before = claim.replace(fixed, "WHERE r.id = chosen.id AND r.status = 'QUEUED'")
    params = claim_values(claim_params())
    assert any(
        "runs_ready_by_group walked whole" in problem
        for problem in check_plan("claim", explain_custom(pg, before, params), indexes)
    )


def runs_read(plan: dict[str, Any]) -> int:
    """The rows of ``runs`` an executed plan's scans read, over every loop of each (the
    UPDATE's own node, which writes what they found, left out)."""
    return sum(
        int(node["Actual Rows"]) * int(node["Actual Loops"])
        for node in plan_nodes(plan)
        if node.get("Relation Name") == "runs" and node["Node Type"] != "ModifyTable"
    )


def wake_after_completion(conn: psycopg.Connection[Any], name: str) -> tuple[Any, list[Any]]:
    """``name`` executed right after the first parked run's token is completed, both rolled
    back: its plan (EXPLAIN ANALYZE) and the ids it woke."""
    queries = load_queries("postgres")
    values = {"environment": ENV, "id": "waitpoint_park000001", "now": NOW, "output": "1"}
    with conn.transaction(force_rollback=True):
        assert conn.execute(queries["waitpoint_complete"], values).rowcount == 1
        with conn.transaction(force_rollback=True):
            found = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {queries[name]}", values)
            plan = found.fetchone()[0][0]["Plan"]  # type: ignore[index]
        woken = conn.execute(queries[name], values).fetchall()
    return plan, [r[0] for r in woken if r[0] is not None]


def test_postgres_a_token_completion_reads_only_the_runs_waiting_on_it(
    pg: psycopg.Connection[Any],
) -> None:
    """With 3,000 runs parked at tokens, completing one wakes its run and reads that run alone
    (by primary key); the environment-wide wake, which the resolver keeps, reads every parked
    run, and so did a token's completion before it had a statement of its own."""
    for name in ("runs_wake_waitpoint", "runs_wake_waitpoint_notify"):
        plan, woken = wake_after_completion(pg, name)
        assert woken == ["run_park000001"]
        assert runs_read(plan) == 1, name
    plan, woken = wake_after_completion(pg, "runs_wake")
    assert woken == ["run_park000001"]
    assert runs_read(plan) >= DEEP


# --- SQLite -------------------------------------------------------------------------------


def sqlite_statements() -> dict[str, dict[str, Any]]:
    """The worker's statements on SQLite (store/sqlite/claim.py, shared.sql) and parameters."""
    env = {"environment": ENV}
    ids = json.dumps([f"run_exec{i:06d}" for i in range(100)])
    lock = {"version": "v1", "live_since": NOW - 30_000}
    group = {**env, "queue": "drain", "concurrency_key": ""}
    finish = {
        **env,
        "run_id": "run_exec000001",
        "attempt_number": 1,
        "worker_id": "w1",
        "status": "COMPLETED",
        "output": None,
        "error": None,
        "retry_at": None,
        "now": NOW,
    }
    return {
        "run_ready_exists": {**env, **lock, "now": NOW, "task_ids": json.dumps(TASKS)},
        "environment_running": env,
        "ready_group_first": env,
        "ready_group_next": group,
        "group_state": group,
        "group_ready_runs": {
            **group,
            **lock,
            "now": NOW,
            "task_ids": json.dumps(TASKS),
            "limit": 100,
        },
        "run_claim_ids": {
            **env,
            "ids": ids,
            "worker_id": "w1",
            "now": NOW,
            "lease_expires_at": NOW + 30_000,
            "version": "v1",
        },
        "run_finish_fence": finish,
        "run_finish": finish,
        "run_reap_expired": {**env, "now": NOW, "crash_error": "{}"},
        "worker_heartbeat_runs": {
            **env,
            "lease_expires_at": NOW,
            "worker_id": "w1",
            "run_ids": ids,
        },
        "run_leased": {**env, "worker_id": "w1"},
        "run_next_due": env,
        "run_expire_due": {**env, "now": NOW, "expired_error": "{}"},
        "run_promote_due": {**env, "now": NOW},
        "waitpoint_due_exists": {**env, "now": NOW},
        "runs_wake": {**env, "now": NOW},
        "runs_wake_waitpoint": {**env, "id": "waitpoint_park000001", "now": NOW},
        "run_pending_exists": {**env, "task_ids": json.dumps(TASKS)},
        "run_ownership": {**env, "ids": ids},
        "retention_due": {**env, "before": NOW - 86_400_000},
        "retention_runs": {**env, "before": NOW - 86_400_000, "limit": 100},
    }


def sqlite_rows(sql_text: str) -> str:
    """A PostgreSQL bulk insert above, in SQLite's words (a recursive series)."""
    series = re.sub(
        r"generate_series\(1, (\d+)\) AS g",
        r"(WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM s"
        r" WHERE value < \1) SELECT value FROM s) AS g",
        sql_text,
    )
    return series.replace("lpad(g::text, 6, '0')", "printf('%06d', g.value)").replace(
        " + g,", " + g.value,"
    )


@pytest.fixture(params=STATES)
def lite(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A migrated SQLite file holding the backlog (see the module docstring)."""
    import asyncio

    from shipyard.store.protocol import MigrateParams
    from shipyard.store.sqlite import SqliteStore

    path = tmp_path / "plans.db"

    async def migrate() -> None:
        store = SqliteStore(path)
        await store.migrate(MigrateParams(now=0))
        await store.close()

    asyncio.run(migrate())
    conn = sqlite3.connect(path)
    try:
        for statement in SETUP + [sqlite_rows(s) for s in WARM_UP]:
            conn.execute(statement)
        if request.param == "analyzed-when-short":
            conn.execute("ANALYZE")
        for statement in FINISHED:
            conn.execute(sqlite_rows(statement))
        if request.param == "analyzed-before-backlog":
            conn.execute("ANALYZE")
        for statement in BACKLOG + PARKED:
            conn.execute(sqlite_rows(statement))
        conn.commit()
        yield conn
    finally:
        conn.close()


def test_sqlite_hot_statements_search_indexes(lite: sqlite3.Connection) -> None:
    queries = load_queries("sqlite")
    problems = []
    for name, params in sqlite_statements().items():
        plan = lite.execute(f"EXPLAIN QUERY PLAN {queries[name]}", params).fetchall()
        for _, _, _, detail in plan:
            # "SCAN runs" reads every row; "SCAN runs USING INDEX x" every entry of x.
            if re.match(r"SCAN runs\b", detail) and "runs_owner" not in detail:
                problems.append(f"{name}: {detail}")
            # Every run the environment ever had, a range walked for a few.
            if "runs_by_environment (environment=?)" in detail:
                problems.append(f"{name}: {detail}")
    assert problems == [], "\n".join(problems)


def sqlite_wake_steps(conn: sqlite3.Connection, name: str) -> tuple[int, list[Any]]:
    """``name`` run right after the first parked run's token is completed, both rolled back:
    the virtual machine's steps it took (a progress handler's count, deterministic) and the
    ids it woke."""
    queries = load_queries("sqlite")
    values = {"environment": ENV, "id": "waitpoint_park000001", "now": NOW, "output": "1"}
    steps = 0

    def step() -> int:
        nonlocal steps
        steps += 1
        return 0

    try:
        assert conn.execute(queries["waitpoint_complete"], values).rowcount == 1
        conn.set_progress_handler(step, 1)
        woken = [r[0] for r in conn.execute(queries[name], values).fetchall()]
    finally:
        conn.set_progress_handler(None, 1)
        conn.rollback()
    return steps, woken


def test_sqlite_a_token_completion_reads_only_the_runs_waiting_on_it(
    lite: sqlite3.Connection,
) -> None:
    """As on PostgreSQL: with 3,000 runs parked at tokens, one token's wake searches its run
    by primary key, and takes a small fraction of the steps of the environment-wide wake
    (which re-checks every parked run)."""
    plan = lite.execute(
        f"EXPLAIN QUERY PLAN {load_queries('sqlite')['runs_wake_waitpoint']}",
        {"environment": ENV, "id": "waitpoint_park000001", "now": NOW},
    ).fetchall()
    reads = [d for _, _, _, d in plan if re.match(r"(SCAN|SEARCH) runs\b", d)]
    assert reads == ["SEARCH runs USING INDEX sqlite_autoindex_runs_1 (id=?)"]
    steps, woken = sqlite_wake_steps(lite, "runs_wake_waitpoint")
    assert woken == ["run_park000001"]
    everyone, woken = sqlite_wake_steps(lite, "runs_wake")
    assert woken == ["run_park000001"]
    assert steps * 100 < everyone


# A run that made LOOPED durable calls, each settled (a parent's trigger_and_wait loop), woken
# once past them all, then parked at its next call, whose token has just been completed.
LOOPED = 2_000
LOOP = [
    rows(1, "run_loop", "WAITING", "drain", attempt="1", started=str(NOW - 1_000)),
    "INSERT INTO waitpoints (id, environment, kind, status, created_at, completed_at) "
    f"SELECT 'waitpoint_loop' || lpad(g::text, 6, '0'), 'development', 'MANUAL', 'COMPLETED', "
    f"{NOW}, {NOW} FROM generate_series(1, {LOOPED}) AS g",
    "INSERT INTO run_waitpoints (run_id, attempt_number, seq, waitpoint_id, call, created_at) "
    "SELECT 'run_loop000001', 1, 0 + g, 'waitpoint_loop' || lpad(g::text, 6, '0'), "
    f"'trigger_and_wait', {NOW} FROM generate_series(1, {LOOPED}) AS g",
]
LOOP_WOKEN = "UPDATE runs SET status = 'WAITING' WHERE id = 'run_loop000001'"
LOOP_NEXT = [
    "INSERT INTO waitpoints (id, environment, kind, status, created_at) "
    f"VALUES ('waitpoint_loopnext', 'development', 'MANUAL', 'PENDING', {NOW})",
    "INSERT INTO run_waitpoints (run_id, attempt_number, seq, waitpoint_id, call, created_at) "
    f"VALUES ('run_loop000001', 1, {LOOPED + 1}, 'waitpoint_loopnext', 'wait.for_token', {NOW})",
    "UPDATE waitpoints SET status = 'COMPLETED', completed_at = 1 WHERE id = 'waitpoint_loopnext'",
]


def loop_setup(run: Any, queries: dict[str, str]) -> None:
    """LOOP, its wake past every call (which records where the next wake starts), then
    LOOP_NEXT: on ``run`` (one statement at a time)."""
    for statement in LOOP:
        run(statement)
    assert run(queries["runs_wake"], {"environment": ENV, "now": NOW}) is not None
    run(LOOP_WOKEN)
    for statement in LOOP_NEXT:
        run(statement)


def test_postgres_a_wake_reads_the_links_since_the_last(pg: psycopg.Connection[Any]) -> None:
    """A run's wake checks the links its attempt made since its last wake (0019), not every
    link it ever made: a loop of waits cost O(n²) in all."""
    queries = load_queries("postgres")
    values = {"environment": ENV, "id": "waitpoint_loopnext", "now": NOW}
    with pg.transaction(force_rollback=True):
        loop_setup(lambda q, p=None: pg.execute(q.encode() if p is None else q, p), queries)
        with pg.transaction(force_rollback=True):
            found = pg.execute(
                f"EXPLAIN (ANALYZE, FORMAT JSON) {queries['runs_wake_waitpoint']}", values
            )
            plan = found.fetchone()[0][0]["Plan"]  # type: ignore[index]
        links = sum(
            int(n["Actual Rows"]) * int(n["Actual Loops"])
            for n in plan_nodes(plan)
            if n.get("Relation Name") == "run_waitpoints"
        )
        assert links <= 3  # the completed token's link, the floor's last link, the one checked
        woken = pg.execute(queries["runs_wake_waitpoint"], values).fetchall()
        assert woken == [("run_loop000001",)]
        floor = pg.execute(
            "SELECT wait_floor_attempt, wait_floor_seq FROM runs WHERE id = 'run_loop000001'"
        ).fetchone()
        assert floor == (1, LOOPED + 2)


def test_sqlite_a_wake_reads_the_links_since_the_last(lite: sqlite3.Connection) -> None:
    """As on PostgreSQL, in virtual machine steps: the wake with the floor its last wake left
    takes a small fraction of the steps of the same wake checking every link."""
    queries = load_queries("sqlite")
    values = {"environment": ENV, "id": "waitpoint_loopnext", "now": NOW}
    try:
        loop_setup(lambda q, p=None: lite.execute(sqlite_rows(q), p or {}), queries)
        counted = []
        for floor in ("kept", "forgotten"):
            if floor == "forgotten":
                lite.execute(
                    "UPDATE runs SET wait_floor_attempt = NULL WHERE id = 'run_loop000001'"
                )
            steps = 0

            def step() -> int:
                nonlocal steps
                steps += 1
                return 0

            lite.execute("SAVEPOINT wake")
            lite.set_progress_handler(step, 1)
            woken = lite.execute(queries["runs_wake_waitpoint"], values).fetchall()
            lite.set_progress_handler(None, 1)
            lite.execute("ROLLBACK TO wake")
            assert woken == [("run_loop000001",)]
            counted.append(steps)
        assert counted[0] * 20 < counted[1]
    finally:
        lite.set_progress_handler(None, 1)
        lite.rollback()


# --- PostgreSQL: a batch of runs suspending at durable waits ---------------------------------

# The indexes a suspend may read its tables through, each probed by its key: the primary keys
# (and a batch waitpoint's runs by batch id).
KEYS = {"runs_pkey", "waitpoints_pkey", "run_waitpoints_pkey", "runs_by_batch"}
TABLES = {"runs", "waitpoints", "run_waitpoints"}


def suspend_statements() -> dict[str, dict[str, Any]]:
    """The statements of PostgresWaitpoints._block_many and waitpoint_reads, as sent."""
    env = {"environment": ENV}
    # 100 of the fixture's pending tokens (PARKED).
    waitpoints = [f"waitpoint_park{i:06d}" for i in range(1, 101)]
    blocks = [
        {
            "run_id": f"run_exec{i:06d}",
            "attempt_number": 1,
            "worker_id": "w1",
            "seq": 0,
            "call": "wait.for_token",
            "now": NOW,
            "waitpoint_id": waitpoints[i],
            "id": waitpoints[i],
        }
        for i in range(100)
    ]
    ids = json.dumps(waitpoints)
    asks = [
        {"ord": i, "run_id": b["run_id"], "attempt_number": 1, "seq": 0}
        for i, b in enumerate(blocks)
    ]
    return {
        "waitpoint_block_check": {**env, "ids": ids, "count": 100},
        "waitpoint_link_many": {**env, "input": json.dumps(blocks)},
        "waitpoint_settle_many": {**env, "ids": ids, "now": NOW},
        "waitpoint_block_get_many": {**env, "ids": ids},
        "run_suspend_pending": {**env, "input": json.dumps(blocks)},
        "waitpoint_get_many": {**env, "ids": ids},
        "waitpoint_recorded_many": {**env, "input": json.dumps(asks)},
    }


def key_problems(name: str, plan: dict[str, Any]) -> list[str]:
    """Accesses of a suspend's tables other than key probes."""
    problems = []
    for node in plan_nodes(plan):
        index = node.get("Index Name")
        if node.get("Relation Name") in TABLES and node["Node Type"] == "Seq Scan":
            problems.append(f"{name}: Seq Scan on {node['Relation Name']}")
        elif (
            index is not None
            and index.startswith(("runs_", "waitpoints_", "run_waitpoints_"))
            and (index not in KEYS or not node.get("Index Cond"))
        ):
            problems.append(f"{name}: {index} (Index Cond: {node.get('Index Cond')})")
    return problems


def test_postgres_suspend_statements_probe_primary_keys(pg: psycopg.Connection[Any]) -> None:
    """A batch of runs suspending reads runs and waitpoints by primary key only, on tables
    filled since their last analyze: planned on such statistics, "environment = ..." looked
    selective, and the suspend hashed or scanned every waitpoint and run of the environment
    per batch (or the worker's executing runs per block): 20-40 ms of server time per 100
    runs, under the environment's slot lock (bench/waits.py, issue 16)."""
    queries = load_queries("postgres")
    problems = []
    for name, params in suspend_statements().items():
        problems += key_problems(name, explain_custom(pg, queries[name], params))
        problems += key_problems(
            f"{name} (generic)", explain_generic(pg, name, queries[name], params)
        )
    assert problems == [], "\n".join(problems)
