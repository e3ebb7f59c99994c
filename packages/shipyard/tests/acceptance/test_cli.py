"""The ``shipyard`` CLI as a user runs it: exit codes, messages and JSON against a real worker.

Every command is a real ``python -m shipyard`` process on a temp project whose tasks a
``shipyard worker`` process registered. Independent commands run concurrently to keep the
test fast (each CLI process pays the interpreter and import start-up).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from acceptance_support import CliResult, Project, run_cli

from shipyard import __version__
from shipyard.engine.engine import Engine

pytestmark = pytest.mark.timeout(90)

TASKS = """
from shipyard import task


@task(id="echo", description="Returns its payload.")
async def echo(payload, ctx):
    return {"echo": payload, "attempt": ctx.attempt.number}


@task(id="sleepy", retry={"max_attempts": 2})
async def sleepy(payload, ctx):
    mark(f"{ctx.run.id}.started")
    await wait_for_file("never", 30)
    return {"woke": True}
"""


async def shipyard(project: Project, *args: str, timeout: float = 60) -> CliResult:
    """Run ``python -m shipyard ARGS`` in the project, bounded by ``timeout``."""
    return await run_cli(project, *args, timeout=timeout)


async def test_cli_commands_against_a_registered_worker(
    project: Project, client_engine: Engine
) -> None:
    project.write_tasks("tasks", TASKS)
    worker = project.spawn_worker(name="worker")

    # No worker needed for these; they run while the worker starts.
    version, bad_payload, missing = await asyncio.gather(
        shipyard(project, "--version"),
        shipyard(project, "trigger", "echo", "--payload", "not json"),
        shipyard(project, "runs", "get", "run_doesnotexist"),
    )
    assert version.code == 0, version.stderr
    assert version.stdout.strip() == f"shipyard {__version__}"

    assert bad_payload.code == 2, bad_payload
    assert "--payload is not valid JSON" in bad_payload.err

    assert missing.code == 1, missing
    assert "run_doesnotexist" in missing.err and "not found" in missing.err.lower()
    assert "Traceback" not in missing.stderr

    await project.wait_registered(worker)

    unknown, triggered, listed = await asyncio.gather(
        shipyard(project, "trigger", "x" * 129, "--payload", "{}"),
        shipyard(
            project,
            "trigger",
            "echo",
            "--payload",
            '{"msg": "hi"}',
            "--tag",
            "cli",
            "--wait",
            "--timeout",
            "30",
            "--json",
        ),
        shipyard(project, "tasks", "list", "--json"),
    )
    # A task no worker has waits for one (PENDING_VERSION); an invalid task id is bad input.
    assert unknown.code == 2, unknown
    assert "task id can be at most 128 characters" in unknown.err
    assert "Traceback" not in unknown.stderr

    assert triggered.code == 0, triggered
    echo_run = triggered.json()
    assert echo_run["status"] == "COMPLETED"
    assert echo_run["output"] == {"echo": {"msg": "hi"}, "attempt": 1}
    assert echo_run["is_cached"] is False and echo_run["error"] is None

    assert listed.code == 0, listed
    tasks = {t["id"]: t for t in listed.json()}
    assert set(tasks) == {"echo", "sleepy"}
    assert tasks["echo"]["description"] == "Returns its payload."
    assert tasks["echo"]["file"].endswith("tasks.py")
    assert tasks["sleepy"]["max_attempts"] == 2

    sleepy = await client_engine.trigger("sleepy", {"n": 1}, {})
    await project.wait_marker(f"{sleepy.id}.started")

    canceled, replayed = await asyncio.gather(
        shipyard(project, "runs", "cancel", sleepy.id),
        shipyard(project, "runs", "replay", echo_run["id"]),
    )
    assert canceled.code == 0, canceled
    assert f"{sleepy.id}: CANCELED" in canceled.stdout
    assert project.run_row(sleepy.id)["status"] == "CANCELED"

    assert replayed.code == 0, replayed
    assert f"Replayed {echo_run['id']} as" in replayed.stdout
    replay_id = replayed.stdout.split(" as ")[-1].strip()
    assert replay_id.startswith("run_") and replay_id != echo_run["id"]
    done = await project.wait_status(replay_id, "COMPLETED", timeout=15)
    assert json.loads(done["payload"]) == {"msg": "hi"}
    # The worker noticed the cancel and stopped the attempt.
    await project.wait_status(sleepy.id, "CANCELED")
    assert project.attempts(sleepy.id) == [(1, "CANCELED")]

    runs_list, again_cancel = await asyncio.gather(
        shipyard(project, "runs", "list", "--json"),
        shipyard(project, "runs", "cancel", echo_run["id"]),
    )
    assert runs_list.code == 0, runs_list
    found = {r["id"]: r for r in runs_list.json()}
    assert list(found) == sorted(found, reverse=True), "newest first"
    assert set(found) == {echo_run["id"], sleepy.id, replay_id}
    assert found[echo_run["id"]]["status"] == "COMPLETED"
    assert found[echo_run["id"]]["tags"] == ["cli"]
    assert found[replay_id]["status"] == "COMPLETED"
    assert found[replay_id]["tags"] == ["cli"]
    assert found[replay_id]["payload"] == {"msg": "hi"}
    assert found[sleepy.id]["status"] == "CANCELED"
    assert found[sleepy.id]["attempt_count"] == 1

    # Canceling a finished run changes nothing and says so.
    assert again_cancel.code == 0, again_cancel
    assert f"{echo_run['id']}: COMPLETED" in again_cancel.stdout
    assert project.run_row(echo_run["id"])["status"] == "COMPLETED"
