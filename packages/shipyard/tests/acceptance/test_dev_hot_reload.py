"""``shipyard dev`` hot reload: new attempts use new code; queued runs are kept.

A real ``python -m shipyard dev`` runs against a temp project whose task ``greet`` returns
"v1". A run is left QUEUED on the paused queue while the module is rewritten to return "v2";
dev restarts its worker child (a new worker registers), and once the queue is resumed the kept
run completes on the new code, as does a fresh trigger. An engine in the test process on the
same SQLite file triggers, pauses and resumes.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import pytest
from acceptance_support import Project, free_port, wait_until

from shipyard import queues
from shipyard.engine.engine import Engine
from shipyard.engine.registry import set_engine

pytestmark = [pytest.mark.timeout(90)]

GREET = """
from shipyard import task


@task(id="greet")
async def greet(payload: None) -> str:
    return "{version}"
"""


async def _output(engine: Engine, run_id: str, timeout: float) -> Any:
    record = await engine.wait_for_final(run_id, timeout=timeout)
    assert record.status == "COMPLETED", record
    return json.loads(record.output) if record.output is not None else None


async def test_dev_restarts_the_worker_on_code_change_and_keeps_queued_runs(
    project: Project, client_engine: Engine
) -> None:
    project.write_tasks("greet", GREET.format(version="v1"))
    dev = project.spawn_shipyard(
        "dev",
        name="dev",
        SHIPYARD_SERVER_PORT=str(free_port()),
        SHIPYARD_API_PORT="0",
        SHIPYARD_FUNCTIONS_PORT="0",
    )
    began = time.monotonic()

    def live_workers() -> list[str]:
        if not dev.alive():
            raise AssertionError(f"shipyard dev exited early:\n{dev.output()[-4000:]}")
        rows = project.query("SELECT id FROM workers WHERE stopped_at IS NULL ORDER BY started_at")
        return [r["id"] for r in rows]

    first_worker = (
        await wait_until(
            live_workers, timeout=30, what="the dev worker to register", context=dev.output
        )
    )[0]

    set_engine(client_engine)  # queues.* below act through the test's engine
    try:
        handle = await client_engine.trigger("greet", None, {})
        assert await _output(client_engine, handle.id, 15) == "v1"

        # A run that waits on the paused queue across the restart.
        await queues.pause("task/greet")
        kept = await client_engine.trigger("greet", None, {})
        assert (await client_engine.get_run(kept.id)).status == "QUEUED"

        # New code. (An extra line keeps the file size different, so a .pyc of the old source
        # written in the same second could never be taken for the new one.)
        project.write_tasks("greet", GREET.format(version="v2") + "# edited\n")
        await wait_until(
            lambda: "Task code changed" in dev.output(),
            timeout=15,
            what="dev to notice the change",
            context=dev.output,
        )
        new_worker = (
            await wait_until(
                lambda: [w for w in live_workers() if w != first_worker],
                timeout=20,
                what="a new worker to register after the restart",
                context=dev.output,
            )
        )[0]
        assert new_worker != first_worker
        old = project.query("SELECT pid, stopped_at FROM workers WHERE id = ?", (first_worker,))
        assert old and old[0]["stopped_at"] is not None, "the old worker stopped"
        await wait_until(
            lambda: not _alive(old[0]["pid"]), timeout=5, what="the old worker process to exit"
        )
        assert "trigger/greet.py" in dev.output()

        # The queued run was kept through the restart, untouched.
        record = await client_engine.get_run(kept.id)
        assert record.status == "QUEUED" and record.started_at is None
        assert project.attempts(kept.id) == []

        await queues.resume("task/greet")
        assert await _output(client_engine, kept.id, 15) == "v2"
        assert [a["worker_id"] for a in project.attempt_rows(kept.id)] == [new_worker]
        fresh = await client_engine.trigger("greet", None, {})
        assert await _output(client_engine, fresh.id, 15) == "v2"
    finally:
        set_engine(None)

    stop_sent = time.monotonic()
    dev.signal_group(signal.SIGINT)
    code = await dev.wait_exit(20)
    assert code in (0, 130, -signal.SIGINT), f"exit code {code}:\n{dev.output()[-3000:]}"
    assert "Stopping" in dev.output()
    assert time.monotonic() - stop_sent < 20
    pid = project.query("SELECT pid FROM workers WHERE id = ?", (new_worker,))[0]["pid"]
    await wait_until(lambda: not _alive(pid), timeout=5, what="the dev worker process to exit")
    print(f"hot reload scenario in {time.monotonic() - began:.1f} s")


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, which has no cmdline, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return bool(handle.read())
    except OSError:
        return False
