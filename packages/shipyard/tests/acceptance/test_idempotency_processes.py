"""Idempotency keys across processes: concurrent triggers with one key make exactly one run.

Each child process builds its own engine on the project's SQLite file, waits at a file
barrier so they all start together, then triggers the same task with the same idempotency key
25 times. The unique index on (environment, task_id, idempotency_key) must make exactly one of
those 25 × N triggers create the run; every other one returns that run as cached.
"""

from __future__ import annotations

import json
import sys
import time

import pytest
from acceptance_support import Project, wait_until

pytestmark = pytest.mark.timeout(60)

TRIGGERS_PER_PROCESS = 25

TASKS = """
from shipyard import task


@task(id="charge-card")
async def charge_card(payload, ctx):
    return {"charged": payload["amount"]}
"""

CHILD = """
import asyncio, json, os, sys, time
from pathlib import Path

barrier, ready, out = (Path(arg) for arg in sys.argv[1:4])
count = int(sys.argv[4])


async def main() -> None:
    from shipyard.engine.registry import get_engine
    from shipyard.sdk.tasks import tasks

    engine = get_engine()
    await engine.start()
    ready.write_text(str(os.getpid()))
    deadline = time.monotonic() + 30
    while not barrier.exists():
        if time.monotonic() > deadline:
            sys.exit("barrier never opened")
        time.sleep(0.001)
    results = []
    for i in range(count):
        handle = await tasks.trigger(
            "charge-card", {"amount": 10, "pid": os.getpid(), "i": i}, idempotency_key="order-42"
        )
        results.append({"id": handle.id, "cached": handle.is_cached})
    out.write_text(json.dumps(results))
    await engine.close()


asyncio.run(main())
"""


@pytest.mark.parametrize("processes", [2, 4])
async def test_same_idempotency_key_from_many_processes_makes_one_run(
    project: Project, processes: int
) -> None:
    project.write_tasks("payments", TASKS)
    script = project.root / "child_trigger.py"
    script.write_text(CHILD)
    barrier = project.root / "barrier"

    # A worker registers the task (so it can be triggered by id) and later runs it.
    worker = project.spawn_worker(name="worker")
    children = []
    for i in range(processes):
        args = [
            sys.executable,
            str(script),
            str(barrier),
            str(project.root / f"ready-{i}"),
            str(project.root / f"out-{i}.json"),
            str(TRIGGERS_PER_PROCESS),
        ]
        children.append(
            project.procs.spawn(args, env=project.env(), cwd=project.root, name=f"trigger-{i}")
        )
    await project.wait_registered(worker)
    await wait_until(
        lambda: all((project.root / f"ready-{i}").exists() for i in range(processes)),
        timeout=30,
        what="every trigger process to be ready",
        context=project.procs.dump,
    )
    opened = time.monotonic()
    barrier.write_text("go")

    for child in children:
        code = await child.wait_exit(30)
        assert code == 0, child.output()
    elapsed = time.monotonic() - opened

    results = []
    for i in range(processes):
        results.extend(json.loads((project.root / f"out-{i}.json").read_text()))
    assert len(results) == processes * TRIGGERS_PER_PROCESS
    ids = {r["id"] for r in results}
    assert len(ids) == 1, f"{len(ids)} different run ids for one idempotency key: {ids}"
    assert sum(not r["cached"] for r in results) == 1, "exactly one trigger creates the run"

    rows = project.query("SELECT id, idempotency_key FROM runs WHERE task_id = 'charge-card'")
    assert [r["id"] for r in rows] == list(ids)
    assert rows[0]["idempotency_key"] is not None
    assert len(project.query("SELECT id FROM runs")) == 1

    run_id = ids.pop()
    done = await project.wait_status(run_id, "COMPLETED", timeout=15)
    assert json.loads(done["output"]) == {"charged": 10}
    assert project.attempts(run_id) == [(1, "COMPLETED")]
    print(
        f"{processes * TRIGGERS_PER_PROCESS} triggers from {processes} processes: {elapsed:.2f} s"
    )
