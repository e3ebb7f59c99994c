"""A worker process SIGKILLed while a run is parked at a durable wait: another worker replays
the run when the wait is due, and it completes at the right time.

Each execution of the code before and after the wait is counted in a table of the project's
database: before the wait ran twice (the original execution and the replay), after it once.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from acceptance_support import PgProject, Procs, Project, make_project

from shipyard.config import load_settings
from shipyard.engine.engine import Engine
from shipyard.testing.postgres import databases, require_postgres

pytestmark = pytest.mark.timeout(60)

TASKS = """
import sqlite3

from shipyard import task, wait


def count(run_id, phase):
    url = os.environ["SHIPYARD_DATABASE_URL"]
    row = (run_id, phase, os.getpid(), time.time())
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS executions "
                "(id BIGSERIAL, run_id TEXT, phase TEXT, pid BIGINT, at DOUBLE PRECISION)"
            )
            conn.execute(
                "INSERT INTO executions (run_id, phase, pid, at) VALUES (%s, %s, %s, %s)", row
            )
        return
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=10)
    with conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS executions "
            "(id INTEGER PRIMARY KEY, run_id TEXT, phase TEXT, pid INTEGER, at REAL)"
        )
        conn.execute(
            "INSERT INTO executions (run_id, phase, pid, at) VALUES (?, ?, ?, ?)", row
        )
    conn.close()


@task(id="long-wait")
async def long_wait(payload, ctx):
    count(ctx.run.id, "before")
    await wait.for_(seconds=6)
    count(ctx.run.id, "after")
    return {"replay": ctx.run.is_replay, "pid": os.getpid()}
"""


@pytest.fixture(params=["sqlite", "postgres"])
async def any_project(
    request: pytest.FixtureRequest, project: Project, tmp_path: Path, procs: Procs
) -> AsyncIterator[Project]:
    """The project on SQLite, or a twin of it on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield project
        return
    require_postgres()
    url = await databases.create()
    make_project(tmp_path / "pg-project", procs)
    try:
        yield PgProject(root=tmp_path / "pg-project", procs=procs, url=url)
    finally:
        procs.kill_all()
        await databases.drop(url)


async def test_killed_worker_parked_run_is_replayed_by_another(any_project: Project) -> None:
    project = any_project
    project.write_tasks("waits", TASKS)
    engine = Engine(load_settings(project_root=project.root, database_url=project.database_url))
    await engine.start()
    try:
        await _killed_worker_parked_run_is_replayed(project, engine)
    finally:
        await engine.close()


async def _killed_worker_parked_run_is_replayed(project: Project, engine: Engine) -> None:
    first = project.spawn_worker(name="worker-1")
    await project.wait_registered(first)

    started = time.time()
    handle = await engine.trigger("long-wait", None, {})
    await project.wait_status(handle.id, "WAITING", timeout=10)
    first.signal_group(signal.SIGKILL)
    assert await first.wait_exit(5) == -signal.SIGKILL

    second = project.spawn_worker(name="worker-2")
    await project.wait_registered(second)
    run = await project.wait_status(handle.id, ["COMPLETED", "FAILED"], timeout=30)
    assert run["status"] == "COMPLETED"
    assert json.loads(run["output"]) == {"replay": True, "pid": second.pid}
    assert project.attempts(handle.id) == [(1, "COMPLETED")]

    rows = project.query(
        "SELECT phase, pid, at FROM executions WHERE run_id = ? ORDER BY id", (handle.id,)
    )
    assert [(r["phase"], r["pid"]) for r in rows] == [
        ("before", first.pid),  # the original execution
        ("before", second.pid),  # the replay
        ("after", second.pid),  # once
    ]
    assert rows[2]["at"] - started >= 6  # not before the wait was due
