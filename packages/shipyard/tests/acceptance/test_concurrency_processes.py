"""Concurrency limits hold across real worker processes, on both backends.

Each task body records when it started and ended in a table of the same database; the test
then computes the most bodies that overlapped in time — which must never pass the limit.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from acceptance_support import PgProject, Procs, Project, make_project, wait_until

from shipyard.config import load_settings
from shipyard.engine.engine import Engine
from shipyard.testing.postgres import databases, require_postgres

TASKS = """
import os, sqlite3, time

import shipyard
from shipyard import queue, task

URL = os.environ["SHIPYARD_DATABASE_URL"]
limited = queue(name="limited", concurrency_limit=2)


def _record(run_id, key, started, ended):
    # A connection per call: task bodies run on several threads.
    row = (run_id, key, started, ended, os.getpid())
    if URL.startswith("postgresql"):
        import psycopg

        with psycopg.connect(URL, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO spans (run_id, key, started, ended, pid) "
                "VALUES (%s, %s, %s, %s, %s)",
                row,
            )
        return
    conn = sqlite3.connect(URL.removeprefix("sqlite:///"), timeout=30)
    try:
        with conn:
            conn.execute("INSERT INTO spans (run_id, key, started, ended, pid) "
                         "VALUES (?, ?, ?, ?, ?)", row)
    finally:
        conn.close()


@task(id="limited-sleep", queue=limited)
def limited_sleep(payload, ctx):
    started = time.time()
    time.sleep(0.05)
    _record(ctx.run.id, "", started, time.time())


@task(id="keyed-sleep", queue={"concurrency_limit": 1})
def keyed_sleep(payload, ctx):
    started = time.time()
    time.sleep(0.05)
    _record(ctx.run.id, payload["key"], started, time.time())
"""

SPANS = (
    "CREATE TABLE spans (run_id TEXT, key TEXT, started DOUBLE PRECISION, "
    "ended DOUBLE PRECISION, pid INTEGER)"
)


@pytest.fixture(params=["sqlite", "postgres"])
async def any_project(
    request: pytest.FixtureRequest, tmp_path: Path, procs: Procs
) -> AsyncIterator[Project]:
    base = make_project(tmp_path / "project", procs)
    if request.param == "sqlite":
        yield base
        return
    require_postgres()
    url = await databases.create()
    try:
        yield PgProject(root=base.root, procs=procs, url=url)
    finally:
        procs.kill_all()
        await databases.drop(url)


def peak_overlap(spans: list[dict[str, Any]]) -> int:
    """The most intervals open at once (an end at the same instant as a start comes first)."""
    events = sorted(
        [(s["started"], 1) for s in spans] + [(s["ended"], -1) for s in spans],
        key=lambda e: (e[0], e[1]),
    )
    now = peak = 0
    for _, delta in events:
        now += delta
        peak = max(peak, now)
    return peak


async def run_scenario(
    project: Project, items: list[tuple[str, Any, dict[str, Any]]], concurrency: int = 4
) -> None:
    project.write_tasks("sleepy", TASKS)
    engine = Engine(load_settings(project_root=project.root, database_url=project.database_url))
    await engine.start()
    try:
        # A worker registers the tasks and queues first, so they are known to the engine.
        workers = [
            project.spawn_worker("--concurrency", str(concurrency), name=f"w{i}") for i in range(4)
        ]
        for worker in workers:
            await project.wait_registered(worker)
        project.query(SPANS)
        entries = [{"task": t, "payload": p, "options": o} for t, p, o in items]
        for start in range(0, len(entries), 1000):
            await engine.batch_trigger(entries[start : start + 1000], {})
        await wait_until(
            lambda: (
                len(project.query("SELECT run_id FROM spans")) >= len(items)
                and not project.query("SELECT id FROM runs WHERE status <> 'COMPLETED'")
            ),
            timeout=60,
            what="every run to complete",
            context=project.procs.dump,
        )
    finally:
        await engine.close()


@pytest.mark.slow
async def test_queue_limit_of_two_across_four_worker_processes(any_project: Project) -> None:
    # One run at a time per process: reaching the limit of 2 takes two processes at once (a
    # worker that finishes claims the slot it freed itself, so with more capacity one process
    # could rightly hold both slots throughout), and the limit must hold across them.
    await run_scenario(any_project, [("limited-sleep", i, {}) for i in range(200)], concurrency=1)
    spans = any_project.query("SELECT * FROM spans")
    assert len(spans) == 200 and len({s["run_id"] for s in spans}) == 200
    assert len({s["pid"] for s in spans}) > 1, "the work should spread over the processes"
    peak = peak_overlap(spans)
    print(f"\n{sys.argv[0]}: peak overlap {peak} with limit 2", flush=True)
    assert peak == 2


@pytest.mark.slow
async def test_concurrency_keys_limit_each_key_across_processes(any_project: Project) -> None:
    items = [
        ("keyed-sleep", {"key": f"k{i % 5}"}, {"concurrency_key": f"k{i % 5}"}) for i in range(100)
    ]
    await run_scenario(any_project, items)
    spans = any_project.query("SELECT * FROM spans")
    assert len(spans) == 100
    for key in {s["key"] for s in spans}:
        assert peak_overlap([s for s in spans if s["key"] == key]) == 1, key
    assert peak_overlap(spans) > 1, "different keys should run at the same time"
