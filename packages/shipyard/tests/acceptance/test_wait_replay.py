"""A worker process SIGKILLed while a run is parked at a durable wait: another worker replays
the run when the wait is due, and it completes at the right time.

Each execution of the code before and after the wait is counted in a table of the project's
database: before the wait ran twice (the original execution and the replay), after it once.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time

import pytest
from acceptance_support import Project

from shipyard.engine.engine import Engine

pytestmark = pytest.mark.timeout(60)

TASKS = """
import sqlite3

from shipyard import task, wait


def count(run_id, phase):
    path = os.environ["SHIPYARD_DATABASE_URL"].removeprefix("sqlite:///")
    conn = sqlite3.connect(path, timeout=10)
    with conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS executions (run_id TEXT, phase TEXT, pid INTEGER)"
        )
        conn.execute("INSERT INTO executions VALUES (?, ?, ?)", (run_id, phase, os.getpid()))
    conn.close()


@task(id="long-wait")
async def long_wait(payload, ctx):
    count(ctx.run.id, "before")
    await wait.for_(seconds=6)
    count(ctx.run.id, "after")
    return {"replay": ctx.run.is_replay, "pid": os.getpid()}
"""


async def test_killed_worker_parked_run_is_replayed_by_another(
    project: Project, client_engine: Engine
) -> None:
    project.write_tasks("waits", TASKS)
    first = project.spawn_worker(name="worker-1")
    await project.wait_registered(first)

    started = time.time()
    handle = await client_engine.trigger("long-wait", None, {})
    await project.wait_status(handle.id, "WAITING", timeout=10)
    first.signal_group(signal.SIGKILL)
    assert await first.wait_exit(5) == -signal.SIGKILL

    second = project.spawn_worker(name="worker-2")
    await project.wait_registered(second)
    run = await project.wait_status(handle.id, ["COMPLETED", "FAILED"], timeout=30)
    assert run["status"] == "COMPLETED"
    assert json.loads(run["output"]) == {"replay": True, "pid": second.pid}
    assert run["finished_at"] / 1000 - started >= 6  # not before the wait was due
    assert project.attempts(handle.id) == [(1, "COMPLETED")]

    conn = sqlite3.connect(project.db)
    try:
        rows = conn.execute(
            "SELECT phase, pid FROM executions WHERE run_id = ? ORDER BY rowid", (handle.id,)
        ).fetchall()
    finally:
        conn.close()
    assert rows == [("before", first.pid), ("before", second.pid), ("after", second.pid)]
