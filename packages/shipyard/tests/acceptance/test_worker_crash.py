"""A worker process killed mid-attempt: its lease expires, the run is reaped and retried.

Proves, with real ``shipyard worker`` processes and SIGKILL:

* the reaper of another worker takes the run back once the dead worker's lease expires,
  records the lost attempt as CRASHED, and the run completes as attempt 2 elsewhere;
* a late completion from the dead worker is fenced out (attempt number + lease owner), both
  while attempt 2 is executing and after the run finished;
* a run whose worker keeps dying ends CRASHED once ``max_attempts`` is used up.
"""

from __future__ import annotations

import json
import signal

import pytest
from acceptance_support import Project

from shipyard.engine.engine import Engine
from shipyard.store.protocol import RunFinishManyParams, RunFinishParams
from shipyard.store.sqlite.store import SqliteStore

pytestmark = pytest.mark.timeout(60)

TASKS = """
from shipyard import task


@task(id="crash-once", retry={"max_attempts": 3, "min_timeout_ms": 10, "max_timeout_ms": 20})
async def crash_once(payload, ctx):
    n = ctx.attempt.number
    mark(f"{ctx.run.id}.attempt-{n}.started")
    if n == 1:
        await wait_for_file("never", 30)  # the worker is SIGKILLed while we sleep here
        return {"attempt": n, "slept": True}
    # Later attempts finish fast, once the test has had a look at the executing run.
    await wait_for_file(f"{ctx.run.id}.go", 10)
    return {"attempt": n, "pid": os.getpid()}


@task(id="always-dies", retry={"max_attempts": 5, "min_timeout_ms": 10, "max_timeout_ms": 20})
async def always_dies(payload, ctx):
    mark(f"{ctx.run.id}.attempt-{ctx.attempt.number}.started")
    await wait_for_file("never", 30)
    return {"unreachable": True}
"""


async def test_killed_worker_run_is_reaped_and_completes_elsewhere(
    project: Project, client_engine: Engine
) -> None:
    project.write_tasks("crashy", TASKS)
    first = project.spawn_worker(name="worker-1")
    first_id = await project.wait_registered(first)

    handle = await client_engine.trigger("crash-once", {"n": 1}, {})
    pid_text = await project.wait_marker(f"{handle.id}.attempt-1.started")
    assert int(pid_text) == first.pid
    assert project.run_row(handle.id)["lease_owner"] == first_id

    first.signal_group(signal.SIGKILL)
    assert await first.wait_exit(5) == -signal.SIGKILL

    second = project.spawn_worker(name="worker-2")
    second_id = await project.wait_registered(second)
    pid_text = await project.wait_marker(f"{handle.id}.attempt-2.started", timeout=15)
    assert int(pid_text) == second.pid

    # Attempt 2 is executing on worker 2; attempt 1 was recorded as crashed by the reaper.
    run = project.run_row(handle.id)
    assert (run["status"], run["attempt_number"], run["lease_owner"]) == (
        "EXECUTING",
        2,
        second_id,
    )
    rows = project.attempt_rows(handle.id)
    assert [(r["number"], r["status"], r["worker_id"]) for r in rows] == [
        (1, "CRASHED", first_id),
        (2, "EXECUTING", second_id),
    ]
    assert json.loads(rows[0]["error"])["code"] == "TASK_RUN_HEARTBEAT_TIMEOUT"

    store = SqliteStore(project.db)
    try:
        # The dead worker's late result is fenced out while attempt 2 runs...
        late = RunFinishParams(
            run_id=handle.id,
            attempt_number=1,
            worker_id=first_id,
            status="COMPLETED",
            attempt_status="COMPLETED",
            now=client_engine.now(),
            output='"late"',
        )
        assert await store.run_finish_many(
            RunFinishManyParams(client_engine.environment, [late])
        ) == [False]
        # ...and so is a result with the right attempt number from a worker that is not the owner.
        impostor = RunFinishParams(
            run_id=handle.id,
            attempt_number=2,
            worker_id=first_id,
            status="COMPLETED",
            attempt_status="COMPLETED",
            now=client_engine.now(),
            output='"impostor"',
        )
        assert await store.run_finish_many(
            RunFinishManyParams(client_engine.environment, [impostor])
        ) == [False]
        run = project.run_row(handle.id)
        assert (run["status"], run["output"]) == ("EXECUTING", None)
        assert project.attempts(handle.id) == [(1, "CRASHED"), (2, "EXECUTING")]

        (project.markers / f"{handle.id}.go").write_text("go")
        done = await project.wait_status(handle.id, "COMPLETED", timeout=15)
        assert json.loads(done["output"]) == {"attempt": 2, "pid": second.pid}
        assert done["attempt_number"] == 2
        assert done["lease_owner"] is None
        assert project.attempts(handle.id) == [(1, "CRASHED"), (2, "COMPLETED")]

        # After the run finished, the late result is still rejected and changes nothing.
        late.now = client_engine.now()
        assert await store.run_finish_many(
            RunFinishManyParams(client_engine.environment, [late])
        ) == [False]
    finally:
        await store.close()
    after = project.run_row(handle.id)
    assert after["status"] == "COMPLETED"
    assert after["output"] == done["output"]
    assert after["finished_at"] == done["finished_at"]
    assert project.attempts(handle.id) == [(1, "CRASHED"), (2, "COMPLETED")]

    # The public API agrees: attempt_count 2, status COMPLETED.
    result = project.cli("runs", "get", handle.id, "--json")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert (got["status"], got["attempt_count"]) == ("COMPLETED", 2)
    assert got["output"] == {"attempt": 2, "pid": second.pid}


@pytest.mark.slow
async def test_run_crashes_after_max_attempts_of_killed_workers(
    project: Project, client_engine: Engine
) -> None:
    project.write_tasks("crashy", TASKS)
    first = project.spawn_worker(name="worker-1")
    await project.wait_registered(first)

    handle = await client_engine.trigger("always-dies", None, {"max_attempts": 2})
    await project.wait_marker(f"{handle.id}.attempt-1.started")
    first.kill_group()

    # Two more workers: one reaps attempt 1 and one of them runs attempt 2; that one is killed
    # too, and the survivor reaps the run for good (attempt 2 of max 2 → CRASHED).
    spares = [project.spawn_worker(name=f"worker-{i}") for i in (2, 3)]
    pid_text = await project.wait_marker(f"{handle.id}.attempt-2.started", timeout=15)
    owner = next(w for w in spares if w.pid == int(pid_text))
    survivor = next(w for w in spares if w is not owner)
    await project.wait_registered(survivor)
    owner.kill_group()

    run = await project.wait_status(handle.id, ["CRASHED", "COMPLETED", "FAILED"], timeout=15)
    assert run["status"] == "CRASHED"
    assert run["attempt_number"] == 2
    assert run["max_attempts"] == 2
    assert run["finished_at"] is not None
    assert json.loads(run["error"])["name"] == "TaskRunHeartbeatTimeout"
    assert project.attempts(handle.id) == [(1, "CRASHED"), (2, "CRASHED")]
    assert not (project.markers / f"{handle.id}.attempt-3.started").exists()
    assert survivor.alive()
