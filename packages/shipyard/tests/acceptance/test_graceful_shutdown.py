"""SIGTERM on a worker process: running attempts get the grace period, then are released.

Proves, with real ``shipyard worker`` processes:

* with a short ``--grace`` a long attempt is released: the run is QUEUED again, the attempt
  row says RELEASED, the run's attempt number goes back to 0 (a released attempt does not
  count), the worker exits promptly and marks itself stopped, and the next worker runs the
  run as attempt 1;
* with a generous grace a short attempt finishes COMPLETED before the worker exits, and no
  new run is claimed once stopping started.
"""

from __future__ import annotations

import json
import signal
import time

import pytest
from acceptance_support import Project, wait_until

from shipyard.engine.engine import Engine

pytestmark = pytest.mark.timeout(60)

TASKS = """
from shipyard import task


@task(id="long-first-time")
async def long_first_time(payload, ctx):
    first = not (MARKERS / f"{ctx.run.id}.seen").exists()
    mark(f"{ctx.run.id}.seen")
    mark(f"{ctx.run.id}.attempt-{ctx.attempt.number}.{'first' if first else 'again'}")
    if first:
        await wait_for_file("never", 30)  # released by the worker's shutdown long before
    return {"attempt": ctx.attempt.number, "first": first, "pid": os.getpid()}


@task(id="short")
async def short(payload, ctx):
    mark(f"{ctx.run.id}.started")
    await asyncio.sleep(payload["seconds"])
    mark(f"{ctx.run.id}.finished")
    return {"slept": payload["seconds"], "attempt": ctx.attempt.number}
"""


async def test_sigterm_with_short_grace_releases_the_attempt(
    project: Project, client_engine: Engine
) -> None:
    project.write_tasks("shutdown", TASKS)
    first = project.spawn_worker("--grace", "0.5", name="worker-1")
    first_id = await project.wait_registered(first)

    handle = await client_engine.trigger("long-first-time", {"x": 1}, {})
    await project.wait_marker(f"{handle.id}.attempt-1.first")
    assert project.run_row(handle.id)["attempt_number"] == 1

    sent = time.monotonic()
    first.signal_group(signal.SIGTERM)
    code = await first.wait_exit(10)
    elapsed = time.monotonic() - sent
    assert code == 0, first.output()
    assert elapsed < 5, f"worker took {elapsed:.1f} s to stop with --grace 0.5"

    run = project.run_row(handle.id)
    assert run["status"] == "QUEUED"
    assert run["attempt_number"] == 0, "a released attempt must not count"
    assert run["lease_owner"] is None and run["lease_expires_at"] is None
    assert run["finished_at"] is None
    assert project.attempts(handle.id) == [(1, "RELEASED")]
    worker = project.worker_row(first.pid)
    assert worker is not None and worker["id"] == first_id
    assert worker["stopped_at"] is not None

    second = project.spawn_worker(name="worker-2")
    done = await project.wait_status(handle.id, "COMPLETED", timeout=20)
    assert json.loads(done["output"]) == {"attempt": 1, "first": False, "pid": second.pid}
    assert done["attempt_number"] == 1
    assert project.attempts(handle.id) == [(1, "RELEASED"), (1, "COMPLETED")]

    result = project.cli("runs", "get", handle.id, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["attempt_count"] == 1


async def test_sigterm_with_generous_grace_lets_the_attempt_finish(
    project: Project, client_engine: Engine
) -> None:
    project.write_tasks("shutdown", TASKS)
    worker = project.spawn_worker("--grace", "15", name="worker")
    await project.wait_registered(worker)

    handle = await client_engine.trigger("short", {"seconds": 1.5}, {})
    await project.wait_marker(f"{handle.id}.started")

    sent = time.monotonic()
    worker.signal_group(signal.SIGTERM)
    # Once the worker says it is waiting for its attempt, it no longer claims new runs.
    await wait_until(
        lambda: "waiting up to" in worker.output(),
        timeout=5,
        what="the worker to start its graceful stop",
        context=worker.output,
    )
    late = await client_engine.trigger("short", {"seconds": 0}, {})

    code = await worker.wait_exit(15)
    elapsed = time.monotonic() - sent
    assert code == 0, worker.output()
    assert elapsed < 10, f"worker took {elapsed:.1f} s to stop after a 1.5 s attempt"
    assert (project.markers / f"{handle.id}.finished").exists()
    assert "stopped" in worker.output()

    untouched = project.run_row(late.id)
    assert (untouched["status"], untouched["attempt_number"]) == ("QUEUED", 0)
    assert project.attempts(late.id) == []

    run = project.run_row(handle.id)
    assert run["status"] == "COMPLETED", f"the finished attempt's result was lost: {run}"
    assert json.loads(run["output"]) == {"slept": 1.5, "attempt": 1}
    assert project.attempts(handle.id) == [(1, "COMPLETED")]
