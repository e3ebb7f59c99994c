"""Many worker processes on one PostgreSQL database: nothing lost, nothing done twice.

Every test gets its own fresh database (cloned from the migrated template) and real
``shipyard worker`` processes, each in its own process group; teardown kills them all and
drops the database. The task writes its side effect — ``(run_id, attempt, pid)`` — into a table
``effects`` of the same database, so the tests count what really ran, not what the engine says.

Proves (issue 4, "Must show"):

* 4 workers burn down 5,000 runs: every run COMPLETED with exactly one COMPLETED attempt and
  exactly one side effect;
* 2 workers of concurrency 100 on one queue limited to 100 each run about half of 3,000 runs
  (shares of a limit, issue 16), not one worker all of them;
* the same with a worker SIGKILLed every 2 s and restarted: 0 lost, 0 double completions, the
  killed attempts recorded as CRASHED (their side effects may repeat: at-least-once);
* PostgreSQL restarted mid burn-down (a private server of the test's own, never the machine's
  shared one): 0 lost, 0 duplicated, the same worker processes resume by themselves and log the
  outage in a few lines, without a traceback;
* 100 concurrent triggers with one idempotency key from 4 processes make exactly 1 run;
* a transactional trigger (``connection=conn``) rolled back leaves no run, committed it runs;
* a worker started against an unreachable database fails fast with one line naming host and
  port, and keeps waiting with ``--wait-for-db``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from acceptance_support import (
    HEARTBEAT,
    POLL,
    Child,
    PgProject,
    Procs,
    clean_env,
    make_project,
    wait_until,
)

from shipyard.config import load_settings
from shipyard.engine.engine import Engine
from shipyard.engine.registry import set_engine
from shipyard.sdk.task import task
from shipyard.testing.pg_server import PrivatePostgres, postgres_bin_dir
from shipyard.testing.postgres import databases, require_postgres

pytestmark = pytest.mark.timeout(120)

# The task records its side effect in the same database, on one connection per worker
# process (opened lazily, reused; reopened if the database restarts under it).
EFFECT_TASKS = """
import psycopg
from shipyard import task

_conn = None
_lock = None


async def record(run_id, attempt):
    global _conn, _lock
    if _lock is None:
        _lock = asyncio.Lock()
    deadline = time.monotonic() + 60
    async with _lock:
        while True:
            try:
                if _conn is None or _conn.closed:
                    _conn = await psycopg.AsyncConnection.connect(
                        os.environ["SHIPYARD_DATABASE_URL"], autocommit=True, connect_timeout=5
                    )
                await _conn.execute(
                    "INSERT INTO effects (run_id, attempt, pid) VALUES (%s, %s, %s)",
                    (run_id, attempt, os.getpid()),
                )
                return
            except psycopg.OperationalError:
                if _conn is not None:
                    await _conn.close()
                _conn = None
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


@task(id="effect", retry={"max_attempts": 30, "min_timeout_ms": 10, "max_timeout_ms": 50})
async def effect(payload, ctx):
    if payload.get("fail_first") and ctx.attempt.number == 1:
        raise RuntimeError("the first attempt fails; the retry succeeds")
    if payload["sleep_ms"]:
        await asyncio.sleep(payload["sleep_ms"] / 1000)
    await record(ctx.run.id, ctx.attempt.number)
    return {"i": payload["i"]}


@task(id="charge-card")
async def charge_card(payload, ctx):
    return {"charged": payload["amount"]}


@task(id="send-receipt")
async def send_receipt(payload, ctx):
    return {"order": payload["order"], "pid": os.getpid()}
"""

EFFECTS_TABLE = """
CREATE TABLE effects (
    id       BIGSERIAL PRIMARY KEY,
    run_id   TEXT NOT NULL,
    attempt  BIGINT NOT NULL,
    pid      BIGINT NOT NULL,
    at       TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
)
"""

FINAL_BAD = ("FAILED", "CRASHED", "SYSTEM_FAILURE", "CANCELED", "EXPIRED", "TIMED_OUT")


# -- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture
async def pg(tmp_path: Path, procs: Procs) -> AsyncIterator[PgProject]:
    """A temp project on its own fresh PostgreSQL database; children die, database dropped."""
    require_postgres()
    url = await databases.create()
    make_project(tmp_path / "project", procs)
    project = PgProject(root=tmp_path / "project", procs=procs, url=url)
    project.write_tasks("effects", EFFECT_TASKS)
    try:
        yield project
    finally:
        procs.kill_all()
        await databases.drop(url)


@pytest.fixture
async def private_pg(tmp_path: Path, procs: Procs) -> AsyncIterator[tuple[PgProject, Any]]:
    """A temp project on a PostgreSQL server of this test's own (free to restart)."""
    if postgres_bin_dir() is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    server = await asyncio.to_thread(PrivatePostgres().start)
    try:
        url = await asyncio.to_thread(server.create_database, "restart_test")
        engine = Engine(load_settings(project_root=tmp_path, database_url=url))
        await engine.migrate()
        await engine.close()
        make_project(tmp_path / "project", procs)
        project = PgProject(root=tmp_path / "project", procs=procs, url=url)
        project.write_tasks("effects", EFFECT_TASKS)
        yield project, server
    finally:
        procs.kill_all()
        await asyncio.to_thread(server.stop)


@pytest.fixture
def default_engine() -> Iterator[None]:
    """Restore the process's default engine after a test installed its own."""
    yield
    set_engine(None)


def spawn_worker(
    project: PgProject, name: str, *, concurrency: int = 8, heartbeat: float = HEARTBEAT
) -> Child:
    return project.spawn_shipyard(
        "worker",
        "--heartbeat",
        str(heartbeat),
        "--poll",
        str(POLL),
        "--concurrency",
        str(concurrency),
        "--grace",
        "1",
        name=name,
    )


async def client_engine(project: PgProject) -> Engine:
    engine = Engine(load_settings(project_root=project.root, database_url=project.url))
    await engine.start()
    return engine


async def trigger_effects(
    project: PgProject, count: int, sleep_ms: int, fail_first_every: int = 0
) -> float:
    """Queue ``count`` runs of ``effect`` in batches of 1,000; returns seconds it took.

    With ``fail_first_every`` = n, every n-th run fails its first attempt (and is retried).
    """
    engine = await client_engine(project)
    started = time.monotonic()
    try:
        for first in range(0, count, 1000):
            items = [
                {
                    "task": "effect",
                    "payload": {
                        "i": i,
                        "sleep_ms": sleep_ms,
                        "fail_first": bool(fail_first_every) and i % fail_first_every == 0,
                    },
                }
                for i in range(first, min(count, first + 1000))
            ]
            await engine.batch_trigger(items, {})
    finally:
        await engine.close()
    return time.monotonic() - started


def status_counts(project: PgProject) -> dict[str, int]:
    rows = project.query("SELECT status, count(*) AS n FROM runs GROUP BY status")
    return {r["status"]: int(r["n"]) for r in rows}


def check_progress(project: PgProject, total: int) -> int:
    """How many runs completed; fails at once if any run ended otherwise."""
    counts = status_counts(project)
    bad = {s: n for s, n in counts.items() if s in FINAL_BAD}
    assert not bad, f"runs ended badly: {bad}\n{project.procs.dump()}"
    assert sum(counts.values()) == total, f"{sum(counts.values())} runs in the table: {counts}"
    return counts.get("COMPLETED", 0)


def assert_exactly_once_completed(project: PgProject, total: int) -> dict[str, int]:
    """Every run COMPLETED once; returns attempt status counts and side-effect numbers."""
    assert status_counts(project) == {"COMPLETED": total}
    # No run with two COMPLETED attempts, none without; the final attempt is the COMPLETED one.
    per_run = project.query(
        """
        SELECT r.id, r.attempt_number,
               count(a.*) FILTER (WHERE a.status = 'COMPLETED') AS completed,
               max(a.number) AS last_number,
               bool_or(a.status = 'COMPLETED' AND a.number = r.attempt_number) AS final_ok,
               count(a.*) AS attempts
        FROM runs r LEFT JOIN attempts a ON a.run_id = r.id
        GROUP BY r.id, r.attempt_number
        """
    )
    assert len(per_run) == total
    doubles = [r for r in per_run if r["completed"] != 1]
    assert not doubles, f"{len(doubles)} runs without exactly one COMPLETED attempt: {doubles[:5]}"
    wrong_final = [
        r for r in per_run if not r["final_ok"] or r["last_number"] != r["attempt_number"]
    ]
    assert not wrong_final, f"final attempt not the COMPLETED one: {wrong_final[:5]}"
    attempt_statuses = {
        r["status"]: int(r["n"])
        for r in project.query("SELECT status, count(*) AS n FROM attempts GROUP BY status")
    }
    # The side effect of each run's COMPLETED attempt happened exactly once.
    completed_effects = project.query(
        """
        SELECT count(*) AS n, count(DISTINCT e.run_id) AS runs
        FROM effects e JOIN runs r ON r.id = e.run_id AND e.attempt = r.attempt_number
        """
    )[0]
    assert (completed_effects["n"], completed_effects["runs"]) == (total, total), completed_effects
    effects = project.query("SELECT count(*) AS n, count(DISTINCT run_id) AS runs FROM effects")[0]
    assert effects["runs"] == total, f"runs with no side effect at all: {effects}"
    return {
        **{f"attempts_{k}": v for k, v in attempt_statuses.items()},
        "effect_rows": int(effects["n"]),
        "repeated_effects": int(effects["n"]) - total,
    }


async def wait_all_completed(project: PgProject, total: int) -> None:
    """Wait (60 s at most) until ``total`` runs have completed."""
    await wait_until(
        lambda: check_progress(project, total) == total,
        timeout=60,
        what=f"{total} runs to complete",
        interval=0.2,
        context=lambda: f"{status_counts(project)}\n{project.procs.dump()}",
    )


async def start_workers(project: PgProject, count: int, **kwargs: Any) -> list[Child]:
    workers = [spawn_worker(project, f"worker-{i}", **kwargs) for i in range(count)]
    for worker in workers:
        await project.wait_registered(worker)
    return workers


# -- 1. burn-down: 4 workers, 5,000 runs ------------------------------------------------------


@pytest.mark.slow
async def test_four_workers_complete_5000_runs_exactly_once(pg: PgProject) -> None:
    total = 5000
    pg.query(EFFECTS_TABLE)
    # Leases of 1.5 s: nobody dies here, so every run must execute exactly once, and a lease is
    # the longest a live worker may go unheard. 0.6 s (the killing tests' lease, for a quick
    # recovery) was exceeded by heartbeats waiting on commits while neighbouring tests' DROP
    # DATABASE checkpoints kept the shared server's disk busy.
    workers = await start_workers(pg, 4, concurrency=16, heartbeat=0.5)

    started = time.monotonic()
    enqueue_s = await trigger_effects(pg, total, sleep_ms=0)
    await wait_all_completed(pg, total)
    wall = time.monotonic() - started

    numbers = assert_exactly_once_completed(pg, total)
    # Nobody was killed: exactly one side effect per run, 5,000 rows for 5,000 distinct runs.
    assert (numbers["effect_rows"], numbers["repeated_effects"]) == (total, 0), (
        f"{numbers}\n{pg.procs.dump()}"
    )
    assert pg.scalar("SELECT count(DISTINCT run_id) FROM effects") == total
    pids = {r["pid"] for r in pg.query("SELECT DISTINCT pid FROM effects")}
    assert pids <= {w.pid for w in workers}
    print(
        f"\n[pg burn-down] 4 workers × 16 slots, {total} runs: enqueue {enqueue_s:.2f} s, "
        f"trigger→all completed {wall:.2f} s ({total / wall:.0f} runs/s); "
        f"runs per worker: {_runs_per_pid(pg)}; attempts {numbers}"
    )


@pytest.mark.slow
async def test_two_workers_share_a_busy_queue(pg: PgProject) -> None:
    """Two workers of concurrency 100 on one queue limited to 100 (the environment's limit):
    each runs about half, where the first to fill the limit used to keep it (its finishes
    claim the slots they free) and the second ran nothing."""
    total = 3000
    pg.query(EFFECTS_TABLE)
    await start_workers(pg, 2, concurrency=100, heartbeat=0.5)
    await trigger_effects(pg, total, sleep_ms=20)  # 0.6 s of work at 100 at once
    await wait_all_completed(pg, total)
    assert_exactly_once_completed(pg, total)
    per_worker = _runs_per_pid(pg)
    assert len(per_worker) == 2 and min(per_worker) >= total // 4, per_worker


def _runs_per_pid(project: PgProject) -> list[int]:
    rows = project.query("SELECT pid, count(*) AS n FROM effects GROUP BY pid ORDER BY n DESC")
    return [int(r["n"]) for r in rows]


# -- 2. the same with a worker SIGKILLed every 2 s ----------------------------------------------


@pytest.mark.slow
async def test_worker_sigkilled_every_2s_loses_and_duplicates_nothing(pg: PgProject) -> None:
    # 5.6 s of work for 16 slots: with 20 ms runs a quiet machine finished in under 6 s, two
    # kills, short of the three the test asks for.
    total, sleep_ms, kill_every = 3000, 30, 2.0
    pg.query(EFFECTS_TABLE)
    workers = await start_workers(pg, 4, concurrency=4)
    spawned = len(workers)

    started = time.monotonic()
    await trigger_effects(pg, total, sleep_ms=sleep_ms)
    kills: list[dict[str, Any]] = []
    last_kill = time.monotonic()
    deadline = started + 90
    victim = 0
    while True:
        done = check_progress(pg, total)
        if done == total:
            break
        assert time.monotonic() < deadline, f"stuck at {status_counts(pg)}\n{pg.procs.dump()}"
        if time.monotonic() - last_kill >= kill_every:
            target = workers[victim % len(workers)]
            # A replacement started 4 kills ago may still be booting on a loaded machine:
            # only a registered worker is killed (its id names its attempts below).
            worker_id = await pg.wait_registered(target)
            kill_ms = int(time.time() * 1000)
            target.signal_group(signal.SIGKILL)
            last_kill = time.monotonic()
            kills.append(
                {"worker_id": worker_id, "pid": target.pid, "at_ms": kill_ms, "left": total - done}
            )
            replacement = spawn_worker(pg, f"worker-{spawned}", concurrency=4)
            spawned += 1
            workers[victim % len(workers)] = replacement
            victim += 1
        await asyncio.sleep(0.1)
    wall = time.monotonic() - started

    assert len(kills) >= 3, f"only {len(kills)} kills before the burn-down ended; slow the task"
    numbers = assert_exactly_once_completed(pg, total)
    statuses = {k for k in numbers if k.startswith("attempts_")}
    assert statuses <= {"attempts_COMPLETED", "attempts_CRASHED"}, numbers
    assert pg.query("SELECT id FROM attempts WHERE status = 'EXECUTING'") == []

    # The killed workers' unfinished attempts were recorded as CRASHED, by the reaper.
    errors = {r["error"] for r in pg.query("SELECT error FROM attempts WHERE status = 'CRASHED'")}
    assert all(json.loads(e)["code"] == "TASK_RUN_HEARTBEAT_TIMEOUT" for e in errors), errors
    recoveries: list[tuple[int, float | None, float | None]] = []
    for kill in kills:
        # Nothing of a killed worker stays EXECUTING: what it had not finished is CRASHED.
        leftover = pg.scalar(
            "SELECT count(*) FROM attempts WHERE worker_id = %s AND status <> ALL(%s)",
            (kill["worker_id"], ["COMPLETED", "CRASHED"]),
        )
        assert leftover == 0
        crashed = pg.query(
            "SELECT run_id, finished_at FROM attempts "
            "WHERE worker_id = %s AND status = 'CRASHED' AND finished_at >= %s",
            (kill["worker_id"], kill["at_ms"]),
        )
        if not crashed:
            recoveries.append((0, None, None))
            continue
        reaped_at = min(c["finished_at"] for c in crashed)
        first_done = pg.scalar(
            "SELECT min(finished_at) FROM runs WHERE id = ANY(%s)",
            ([c["run_id"] for c in crashed],),
        )
        recoveries.append(
            (len(crashed), (reaped_at - kill["at_ms"]) / 1000, (first_done - kill["at_ms"]) / 1000)
        )
    killed_crashes = sum(n for n, _, _ in recoveries)
    assert killed_crashes > 0, "no kill hit a running attempt"
    crashed_total = numbers.get("attempts_CRASHED", 0)
    # Any other CRASHED attempt belonged to a live worker whose lease ran out under load (two
    # cores, four workers, a new one starting every 2 s): reaped, re-run, never completed twice.
    lease_lost_alive = crashed_total - killed_crashes

    print(
        f"\n[pg kill every {kill_every:.0f} s] {total} runs of {sleep_ms} ms, 4 workers × 4 slots,"
        f" lease {3 * HEARTBEAT:.1f} s: all completed in {wall:.2f} s; {len(kills)} kills; "
        f"{crashed_total} attempts CRASHED ({killed_crashes} of killed workers, "
        f"{lease_lost_alive} of live workers that lost their lease); repeated side effects "
        f"(at-least-once): {numbers['repeated_effects']}"
    )
    for i, (n, reaped, first) in enumerate(recoveries, 1):
        detail = (
            "no attempt in flight"
            if reaped is None
            else f"reaped after {reaped:.2f} s, first reaped run completed after {first:.2f} s"
        )
        print(f"  kill {i}: {n} attempt(s) crashed; {detail}")


# -- 3. PostgreSQL restarted in the middle of a burn-down -------------------------------------


@pytest.mark.slow
async def test_postgres_restart_mid_burn_down_workers_resume(
    private_pg: tuple[PgProject, PrivatePostgres],
) -> None:
    pg, server = private_pg
    total, sleep_ms = 3000, 5
    pg.query(EFFECTS_TABLE)
    workers = await start_workers(pg, 2, concurrency=16)
    pids = [w.pid for w in workers]
    worker_ids = {w.pid: (pg.worker_row(w.pid) or {})["id"] for w in workers}

    started = time.monotonic()
    # Every 4th run fails once: retries (QUEUED results + wake-ups) are in flight too.
    await trigger_effects(pg, total, sleep_ms=sleep_ms, fail_first_every=4)
    await wait_until(
        lambda: check_progress(pg, total) >= total * 0.3,
        timeout=60,
        what="30% of the runs to complete",
        interval=0.05,
        context=pg.procs.dump,
    )
    done_before = check_progress(pg, total)

    restart_began = time.monotonic()
    command_s = await asyncio.to_thread(server.restart)
    until_up = time.monotonic() - restart_began - command_s
    outage_s = time.monotonic() - restart_began
    up_ms = int(time.time() * 1000)

    def progress() -> int:
        try:
            return check_progress(pg, total)
        except psycopg.OperationalError:
            return 0

    await wait_until(
        lambda: progress() == total,
        timeout=60,
        what=f"{total} runs to complete after the restart",
        interval=0.2,
        context=lambda: f"{status_counts(pg)}\n{pg.procs.dump()}",
    )
    wall = time.monotonic() - started

    numbers = assert_exactly_once_completed(pg, total)
    statuses = {k for k in numbers if k.startswith("attempts_")}
    assert statuses <= {"attempts_COMPLETED", "attempts_CRASHED", "attempts_FAILED"}, numbers
    # Both workers are the same processes, never restarted, and both worked after the outage.
    assert [w.pid for w in workers] == pids
    for worker in workers:
        assert worker.alive(), f"{worker.name} died:\n{worker.output()[-4000:]}"
        after = pg.scalar(
            "SELECT count(*) FROM attempts WHERE worker_id = %s AND started_at > %s "
            "AND status = 'COMPLETED'",
            (worker_ids[worker.pid], up_ms),
        )
        assert after > 0, f"{worker.name} completed nothing after the restart:\n{worker.output()}"
    # Each worker logged the outage in a few lines, without a stack trace.
    outage_lines = {}
    for worker in workers:
        log = worker.output()
        assert "Traceback" not in log, f"{worker.name} logged a traceback:\n{log[-6000:]}"
        # What the worker said about the database (not per-run lines: reaped, rejected).
        outage_lines[worker.name] = lines = [
            line
            for line in log.splitlines()
            if any(w in line for w in ("ERROR", "WARNING"))
            and not any(w in line for w in ("reaped", "result rejected"))
        ]
        unreachable = log.count("database unreachable")
        assert unreachable <= 3, (
            f"{worker.name}: {unreachable}× 'database unreachable':\n" + "\n".join(lines)
        )
        # A few lines per outage (claims, results, heartbeat, LISTEN: down and back), not one
        # per poll or per pooled connection.
        assert len(lines) <= 12, "\n".join(lines)
    print(
        f"\n[pg restart] {total} runs of {sleep_ms} ms (¼ fail once), 2 workers × 16 slots: "
        f"restarted at {done_before} completed; pg_ctl restart took {command_s:.2f} s, "
        f"accepting connections {until_up:.2f} s later (outage ≤ {outage_s:.2f} s); all completed "
        f"{wall:.2f} s after the trigger; attempts {numbers}"
    )
    for name, lines in outage_lines.items():
        print(f"  {name}: {len(lines)} warning/error line(s)")
        for line in lines:
            print(f"    {line[:160]}")


# -- 4. one idempotency key from 4 processes ----------------------------------------------------

CHILD = """
import asyncio, json, os, sys, time
from pathlib import Path

barrier, ready, out = (Path(arg) for arg in sys.argv[1:4])
count = int(sys.argv[4])


async def main() -> None:
    from shipyard.engine.registry import get_engine
    from shipyard.sdk.tasks import tasks
    from shipyard.store.protocol import TaskListParams

    engine = get_engine()
    await engine.start()
    await engine.store.task_list(TaskListParams(engine.environment))  # open the pool first
    ready.write_text(str(os.getpid()))
    deadline = time.monotonic() + 30
    while not barrier.exists():
        if time.monotonic() > deadline:
            sys.exit("barrier never opened")
        time.sleep(0.001)
    results = await asyncio.gather(
        *(
            tasks.trigger(
                "charge-card", {"amount": 10, "pid": os.getpid(), "i": i},
                idempotency_key="order-42",
            )
            for i in range(count)
        )
    )
    out.write_text(json.dumps([{"id": h.id, "cached": h.is_cached} for h in results]))
    await engine.close()


asyncio.run(main())
"""


async def test_one_idempotency_key_from_4_processes_makes_one_run(pg: PgProject) -> None:
    processes, per_process = 4, 25
    script = pg.root / "child_trigger.py"
    script.write_text(CHILD)
    barrier = pg.root / "barrier"
    worker = spawn_worker(pg, "worker")
    children = [
        pg.procs.spawn(
            [
                sys.executable,
                str(script),
                str(barrier),
                str(pg.root / f"ready-{i}"),
                str(pg.root / f"out-{i}.json"),
                str(per_process),
            ],
            env=pg.env(),
            cwd=pg.root,
            name=f"trigger-{i}",
        )
        for i in range(processes)
    ]
    await pg.wait_registered(worker)
    await wait_until(
        lambda: all((pg.root / f"ready-{i}").exists() for i in range(processes)),
        timeout=30,
        what="every trigger process to be ready",
        context=pg.procs.dump,
    )
    opened = time.monotonic()
    barrier.write_text("go")
    for child in children:
        assert await child.wait_exit(30) == 0, child.output()
    elapsed = time.monotonic() - opened

    results = [
        r for i in range(processes) for r in json.loads((pg.root / f"out-{i}.json").read_text())
    ]
    assert len(results) == processes * per_process
    ids = {r["id"] for r in results}
    assert len(ids) == 1, f"{len(ids)} different run ids for one idempotency key: {ids}"
    assert sum(not r["cached"] for r in results) == 1, "exactly one trigger creates the run"
    rows = pg.query("SELECT id, idempotency_key FROM runs")
    assert [r["id"] for r in rows] == list(ids)
    run_id = ids.pop()
    done = await pg.wait_status(run_id, "COMPLETED", timeout=15)
    assert json.loads(done["output"]) == {"charged": 10}
    assert pg.attempts(run_id) == [(1, "COMPLETED")]
    print(f"\n[pg idempotency] {processes * per_process} triggers, 1 run, {elapsed:.2f} s")


# -- 5. transactional trigger ---------------------------------------------------------------------


async def test_transactional_trigger_rolls_back_and_commits_with_the_business_row(
    pg: PgProject, default_engine: None
) -> None:
    pg.query("CREATE TABLE orders (id TEXT PRIMARY KEY, total BIGINT NOT NULL)")
    engine = await client_engine(pg)
    set_engine(engine)

    @task(id="send-receipt")
    async def send_receipt(payload: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("runs in the worker process, not here")

    class Boom(Exception):
        pass

    worker = spawn_worker(pg, "worker")
    await pg.wait_registered(worker)
    handles = []

    async def place_order(conn: psycopg.AsyncConnection[Any], order: str, *, fail: bool) -> str:
        """Business row + run in one transaction of the caller's connection."""
        async with conn.transaction():
            await conn.execute("INSERT INTO orders VALUES (%s, 100)", (order,))
            handle = await send_receipt.trigger({"order": order}, connection=conn)
            handles.append(handle.id)
            # Inside the transaction the run is visible to it, and to nobody else. The caller's
            # search path is its own again (the engine's tables are in the shipyard schema).
            cur = await conn.execute("SELECT status FROM shipyard.runs WHERE id = %s", (handle.id,))
            assert await cur.fetchone() == ("QUEUED",)
            assert pg.query("SELECT id FROM runs") == []
            if fail:
                raise Boom
        return handle.id

    try:
        async with await psycopg.AsyncConnection.connect(pg.url) as conn:
            with pytest.raises(Boom):
                await place_order(conn, "o-1", fail=True)
            assert len(handles) == 1
            # Rolled back: no business row, no run, and so nothing a worker could ever claim.
            assert pg.query("SELECT id FROM orders") == []
            assert pg.query("SELECT id FROM runs") == []
            assert pg.query("SELECT id FROM attempts") == []

            committed = await place_order(conn, "o-2", fail=False)
            assert [r["id"] for r in pg.query("SELECT id FROM runs")] == [committed]
            assert pg.query("SELECT id FROM orders") == [{"id": "o-2"}]
    finally:
        await engine.close()

    done = await pg.wait_status(committed, "COMPLETED", timeout=15)
    assert json.loads(done["output"]) == {"order": "o-2", "pid": worker.pid}
    assert pg.attempts(committed) == [(1, "COMPLETED")]
    assert [r["id"] for r in pg.query("SELECT id FROM runs")] == [committed]
    assert pg.query("SELECT id FROM runs WHERE id = %s", (handles[0],)) == []


# -- 6. startup against an unreachable database -----------------------------------------------

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/nope"


def _spawn_unreachable(procs: Procs, root: Path, *args: str) -> Child:
    return procs.spawn(
        [sys.executable, "-m", "shipyard", "worker", "--heartbeat", "0.2", *args],
        env=clean_env(
            SHIPYARD_PROJECT_ROOT=str(root),
            SHIPYARD_DATABASE_URL=UNREACHABLE,
            SHIPYARD_LOG_LEVEL="info",
        ),
        cwd=root,
        name="worker-unreachable",
    )


async def test_worker_against_unreachable_database_fails_fast_in_one_line(
    tmp_path: Path, procs: Procs
) -> None:
    project = make_project(tmp_path / "project", procs)
    child = _spawn_unreachable(procs, project.root)
    code = await child.wait_exit(12)
    elapsed = time.monotonic() - child.started
    output = child.output()
    assert code != 0, output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{output}"
    assert "127.0.0.1:1" in lines[0], output
    print(f"\n[unreachable] exit {code} after {elapsed:.2f} s: {lines[0]}")


async def test_worker_with_wait_for_db_keeps_waiting(tmp_path: Path, procs: Procs) -> None:
    project = make_project(tmp_path / "project", procs)
    child = _spawn_unreachable(procs, project.root, "--wait-for-db")
    # It says it waits (after a failed attempt to connect), and it is still there afterwards.
    await wait_until(
        lambda: "waiting for it" in child.output().lower(),
        timeout=15,
        what="the worker to say it waits for the database",
        interval=0.1,
    )
    assert child.alive(), child.output()
    assert "Traceback" not in child.output()
    child.kill_group()
    with contextlib.suppress(Exception):
        child.popen.wait(5)
