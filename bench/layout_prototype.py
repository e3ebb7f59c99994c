"""The claim → finish write pattern on two table layouts: does a HOT status change pay?

Not the engine: a synthetic loop, on a fresh migrated PostgreSQL database, of the writes a
drain makes per run — the claim updates a batch of QUEUED runs and inserts their attempts and
status events, the finish updates the runs and attempts and inserts status events — one
transaction per cycle (the finish of the last batch and the next claim), from one client.

* ``current``: ``runs`` as migrated. The run's status is in the predicate of seven partial
  indexes, so no status change is a HOT update.
* ``hot``: those indexes and ``runs_finished`` dropped, ``runs`` at fillfactor 50, the ready
  set and the leases in narrow tables of their own (inserted and deleted around the claim), so
  the ``runs`` updates can be HOT.

The runs trigger is dropped in both (the engine's claim and finish skip it). Prints the server
CPU per run (the backend's, from /proc) and how many ``runs`` updates were HOT.

    uv run python bench/layout_prototype.py --runs 20000 --batch 50 --reps 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

import psycopg
from _common import emit

STATUS_INDEXES = (
    "runs_ready_by_group",
    "runs_delayed",
    "runs_debounce_key",
    "runs_pending_version",
    "runs_ttl",
    "runs_waiting",
    "runs_owner",
    "runs_finished",
)

# The runs a claim chose (as ``chosen(id)``), per layout; the writes that follow are the same.
CHOSEN = {
    "current": """
    SELECT id FROM runs WHERE environment = 'dev' AND status = 'QUEUED'
      AND queue = 'task/noop' AND COALESCE(concurrency_key, '') = ''
    ORDER BY sort_key, id LIMIT %(n)s""",
    "hot": """
    DELETE FROM ready WHERE run_id IN (
        SELECT run_id FROM ready WHERE environment = 'dev' AND queue = 'task/noop' AND ck = ''
        ORDER BY sort_key, run_id LIMIT %(n)s
    ) RETURNING run_id AS id""",
}

CLAIM = """
WITH chosen AS MATERIALIZED ({chosen}
), claimed AS (
    UPDATE runs r SET status = 'EXECUTING', attempt_number = r.attempt_number + 1,
        lease_owner = 'w1', lease_expires_at = %(now)s + 30000, started_at = %(now)s,
        updated_at = %(now)s
    FROM chosen WHERE r.id = chosen.id RETURNING r.*
), started AS (
    INSERT INTO attempts (run_id, number, status, worker_id, started_at)
    SELECT id, attempt_number, 'EXECUTING', 'w1', updated_at FROM claimed
), events AS (
    INSERT INTO run_events (run_id, ts, kind, message)
    SELECT id, updated_at, 'status', status FROM claimed
){leases}
SELECT * FROM claimed"""

LEASES_TAKEN = """, leased AS (
    INSERT INTO leases SELECT id, 'w1', %(now)s + 30000 FROM claimed
)"""

FINISH = """
WITH finished AS (
    UPDATE runs r SET status = 'COMPLETED', output = r.payload, finished_at = %(now)s,
        lease_owner = NULL, lease_expires_at = NULL, updated_at = %(now)s
    WHERE r.id = ANY(%(ids)s) AND r.status = 'EXECUTING'
    RETURNING r.id, r.attempt_number, r.status
), attempts_done AS (
    UPDATE attempts a SET status = 'COMPLETED', finished_at = %(now)s FROM finished f
    WHERE a.run_id = f.id AND a.number = f.attempt_number
), events AS (
    INSERT INTO run_events (run_id, ts, kind, message)
    SELECT id, %(now)s, 'status', status FROM finished
){leases}
SELECT count(*) FROM finished"""

LEASES_GONE = """, released AS (
    DELETE FROM leases WHERE run_id IN (SELECT id FROM finished)
)"""


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one backend of a server on this machine."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def prepare(url: str, layout: str, runs: int) -> psycopg.Connection[Any]:
    """The layout's tables, holding ``runs`` QUEUED runs, analyzed."""
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET search_path = shipyard")  # where the migrations put the engine's tables
    conn.execute("DROP TRIGGER runs_changes ON runs")
    if layout == "hot":
        for index in STATUS_INDEXES:
            conn.execute(f"DROP INDEX {index}")
        conn.execute("ALTER TABLE runs SET (fillfactor = 50)")
        conn.execute(
            "CREATE TABLE ready (run_id text PRIMARY KEY, environment text, queue text,"
            " ck text, sort_key bigint)"
        )
        conn.execute(
            "CREATE INDEX ready_by_group ON ready (environment, queue, ck, sort_key, run_id)"
        )
        conn.execute(
            "CREATE TABLE leases (run_id text PRIMARY KEY, lease_owner text,"
            " lease_expires_at bigint)"
        )
    payload = json.dumps({"i": 0, "ts": 0.0, "pad": "x" * 60})
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO runs (id, environment, task_id, status, payload, queue, sort_key,"
            " queued_at, available_at, tags, metadata, priority_ms, created_at, updated_at, depth,"
            " attempt_number, is_test, batch_id, batch_index)"
            " VALUES (%s, 'dev', 'noop', 'QUEUED', %s, 'task/noop', %s, %s, 0, '[]', '{}', 0,"
            " 1, 0, 0, 0, 0, 'batch_1', %s)",
            [(f"run_{i:020d}", payload, i, i, i) for i in range(runs)],
        )
        if layout == "hot":
            cur.execute("INSERT INTO ready SELECT id, environment, queue, '', sort_key FROM runs")
    conn.execute("VACUUM ANALYZE")
    return conn


def drain(conn: psycopg.Connection[Any], layout: str, batch: int) -> tuple[int, float, float]:
    """Claim and finish every run, one transaction per cycle: (runs, seconds, server CPU s)."""
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
    claim = CLAIM.format(chosen=CHOSEN[layout], leases=LEASES_TAKEN if layout == "hot" else "")
    finish = FINISH.format(leases=LEASES_GONE if layout == "hot" else "")
    conn.autocommit = False
    cpu0, t0 = backend_cpu(pid), time.perf_counter()
    held: list[str] = []
    done, now = 0, 1
    while True:
        now += 1
        if held:
            conn.execute(finish, {"ids": held, "now": now}, prepare=True)
            done += len(held)
        held = [r[0] for r in conn.execute(claim, {"n": batch, "now": now}, prepare=True)]
        conn.commit()
        if not held:
            return done, time.perf_counter() - t0, backend_cpu(pid) - cpu0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--reps", type=int, default=2, help="rounds over both layouts, interleaved")
    a = ap.parse_args()
    from shipyard.testing.postgres import databases

    for _ in range(a.reps):
        for layout in ("current", "hot"):
            url = asyncio.run(databases.create())
            conn = None
            try:
                conn = prepare(url, layout, a.runs)
                done, seconds, cpu = drain(conn, layout, a.batch)
                conn.autocommit = True
                # A backend's counters reach the statistics views when it flushes them.
                conn.execute("SELECT pg_stat_force_next_flush()")
                updates, hot = conn.execute(
                    "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
                    " WHERE relname = 'runs'"
                ).fetchone()  # type: ignore[misc]
            finally:
                if conn is not None:
                    conn.close()
                asyncio.run(databases.drop(url))
            emit(
                {
                    "bench": "layout_prototype",
                    "layout": layout,
                    "runs": done,
                    "batch": a.batch,
                    "runs_per_s": round(done / seconds),
                    "server_cpu_us_per_run": round(cpu / done * 1e6, 1),
                    "runs_updates": updates,
                    "runs_hot_updates": hot,
                },
                f"{layout}: {done} runs in {a.batch}-run cycles, {done / seconds:,.0f}/s, "
                f"server CPU {cpu / done * 1e6:.1f} us per run, "
                f"{hot} of {updates} runs updates HOT",
            )


if __name__ == "__main__":
    main()
