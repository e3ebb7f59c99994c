"""A PostgreSQL outage longer than a lease: the store reconnects soon, and nothing is reaped.

Each test runs its own server (``PrivatePostgres``), never the machine's shared one.

**The pool is back within about a second of the server.** psycopg_pool retries a lost
connection with a backoff that doubles without a cap (1, 2, 4, 8 … s), so after an outage of a
minute a worker reconnected about a minute after the server was back (the chaos suite,
``bench/chaos.py --fault pg-restart --hold 8``: the first run completed 11–20 s after the
restart). The store makes each reconnection attempt give up after ``RECONNECT_SECONDS`` and
start afresh, so the pool tries about once a second.

The server is stopped for 8 s: with the uncapped backoff the pool's next try after that would
come 4.5–8 s after the server is back; now it comes within about a second.

**Runs claimed as the outage ends are not reaped.** A claim sent during the outage waits in the
pool and commits once the server is back, with leases counted from when it was sent: already
run out. A reaper then took them back from the live worker that had just started them (the
chaos suite, ``--fault pg-restart --hold 6 --task-ms 3000``: 9 runs started twice). Now the
reaper waits one lease after an outage it saw, and a worker renews at once the leases of a
claim that took longer than a third of a lease. Three workers × 4 slots: 12 runs executing, 12
queued; the server stops, the 12 end meanwhile, and when it is back their finishes claim the
12 others (leases already expired): every run completes with its first attempt, executed once.
(Without the fix a reaper won that race in 2 of 5 runs here: a race, so the test catches a
regression about every other run, never falsely.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from acceptance_support import PgProject, Procs, make_project, wait_until
from psycopg_pool import PoolTimeout

from shipyard.config import load_settings
from shipyard.engine.engine import Engine
from shipyard.store.postgres import PostgresStore
from shipyard.store.protocol import MigrateParams, RunListParams
from shipyard.testing.pg_server import PrivatePostgres, postgres_bin_dir

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(postgres_bin_dir() is None, reason="PostgreSQL server binaries missing"),
]

ENV = "production"
OUTAGE_SECONDS = 8.0


@pytest.mark.slow
async def test_the_pool_reconnects_soon_after_a_long_outage() -> None:
    server = await asyncio.to_thread(PrivatePostgres().start)
    store: PostgresStore | None = None
    try:
        url = await asyncio.to_thread(server.create_database, "outage")
        store = PostgresStore(url)
        await store.migrate(MigrateParams(now=0))
        assert (await store.run_list(RunListParams(ENV))).items == []

        await asyncio.to_thread(server.halt, "immediate")
        with pytest.raises(psycopg.OperationalError):  # the pooled connection is gone
            await store.run_list(RunListParams(ENV))
        # As a worker does, the next call comes at once and waits in the pool (whose timeout
        # is 30 s) for a connection, while the pool tries to make one.
        waiting = asyncio.create_task(store.run_list(RunListParams(ENV)))
        # The outage itself; not a wait for an effect.
        await asyncio.sleep(OUTAGE_SECONDS)
        await asyncio.to_thread(server.start)
        up = time.monotonic()
        while True:
            try:
                await waiting
                break
            except (psycopg.OperationalError, PoolTimeout):
                if time.monotonic() - up > 60:
                    raise
                waiting = asyncio.create_task(store.run_list(RunListParams(ENV)))
        lag = time.monotonic() - up
        # Under the 4.5 s the uncapped backoff takes at the least, with a loaded host's margin
        # over the ~1 s the pool needs now.
        assert lag < 4.0, f"the pool reconnected {lag:.1f} s after the server was back"
    finally:
        if store is not None:
            await store.close()
        await asyncio.to_thread(server.stop)


TASKS = """
from shipyard import task


@task(id="long", retry={"max_attempts": 3, "min_timeout_ms": 10, "max_timeout_ms": 20})
async def long(payload, ctx):
    mark(f"{ctx.run.id}.attempt-{ctx.attempt.number}")
    await wait_for_file(payload["go"], 60)
    return payload["i"]
"""

HEARTBEAT = 1.0  # a lease of 3 s
WORKERS = 3  # × 4 slots: more reapers, more chances for one to race a heartbeat
SLOTS = 4 * WORKERS


@pytest.fixture
async def private_project(tmp_path: Path, procs: Procs) -> AsyncIterator[tuple[PgProject, Any]]:
    """A temp project on a migrated database of a server of the test's own."""
    server = await asyncio.to_thread(PrivatePostgres().start)
    try:
        url = await asyncio.to_thread(server.create_database, "leases")
        engine = Engine(load_settings(project_root=tmp_path, database_url=url))
        await engine.migrate()
        await engine.close()
        project = PgProject(root=tmp_path / "project", procs=procs, url=url)
        make_project(project.root, procs)
        project.write_tasks("long", TASKS)
        yield project, server
    finally:
        procs.kill_all()
        await asyncio.to_thread(server.stop)


def executing(project: PgProject) -> int:
    return len(project.query("SELECT id FROM runs WHERE status = 'EXECUTING'"))


def second_batch_state(project: PgProject) -> str | None:
    """'renewed' once the second batch executes with leases ahead of now, 'reaped' once any
    run was taken back; None meanwhile (or while the database is unreachable)."""
    try:
        rows = project.query(
            "SELECT status, attempt_number, lease_expires_at FROM runs "
            "WHERE payload::json->>'go' = 'go2'"
        )
    except psycopg.OperationalError:
        return None
    if any(r["attempt_number"] > 1 for r in rows):
        return "reaped"
    now_ms = time.time() * 1000
    renewed = [r for r in rows if r["status"] == "EXECUTING" and r["lease_expires_at"] > now_ms]
    return "renewed" if len(renewed) == SLOTS else None


@pytest.mark.slow
async def test_runs_claimed_as_an_outage_ends_are_not_reaped(
    private_project: tuple[PgProject, PrivatePostgres],
) -> None:
    project, server = private_project
    workers = [
        project.spawn_shipyard(
            "worker",
            "--heartbeat",
            str(HEARTBEAT),
            "--poll",
            "0.1",
            "--concurrency",
            "4",
            name=f"worker-{i}",
        )
        for i in range(WORKERS)
    ]
    for worker in workers:
        await project.wait_registered(worker)
    engine = Engine(load_settings(project_root=project.root, database_url=project.url))
    await engine.start()
    try:
        for go in ("go1", "go2"):
            await engine.batch_trigger(
                [
                    {"task": "long", "payload": {"i": i, "go": go}, "options": {}}
                    for i in range(SLOTS)
                ],
                {},
            )
            if go == "go1":
                await wait_until(
                    lambda: executing(project) == SLOTS,
                    timeout=30,
                    what="the workers to fill their slots",
                    context=project.procs.dump,
                )
    finally:
        await engine.close()

    # The outage, longer than a lease (sleeps: the fault itself, not waits for an effect).
    await asyncio.to_thread(server.halt, "immediate")
    # Once the pools dropped their broken connections, the running attempts end: the finish
    # that claims the second batch waits in the pool for a connection.
    await asyncio.sleep(1.0)
    (project.markers / "go1").touch()
    await asyncio.sleep(3 * HEARTBEAT + 0.5)
    await asyncio.to_thread(server.start)
    outcome = await wait_until(
        lambda: second_batch_state(project),
        timeout=30,
        what="the second batch to run with renewed leases (or be reaped)",
        context=project.procs.dump,
    )
    (project.markers / "go2").touch()
    await wait_until(
        lambda: len(project.query("SELECT id FROM runs WHERE status = 'COMPLETED'")) == 2 * SLOTS,
        timeout=30,
        what="every run to complete",
        context=project.procs.dump,
    )
    attempts = project.query("SELECT number, status FROM attempts")
    started = sorted(p.name.split(".")[-1] for p in project.markers.glob("run_*"))
    logs = "\n".join(w.output() for w in workers)
    assert outcome == "renewed", logs[-6000:]
    assert [(a["number"], a["status"]) for a in attempts] == [(1, "COMPLETED")] * 2 * SLOTS
    assert started == ["attempt-1"] * 2 * SLOTS
    assert "reaped" not in logs and "Traceback" not in logs, logs[-6000:]
