"""``shipyard runs get`` (attempts, last log lines), ``runs logs`` (``--json``, ``--follow``),
``runs cancel|replay --json`` and ``migrate --json``, as real ``python -m shipyard`` processes
against a temp project whose runs a real ``shipyard worker`` executes.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from typing import Any

import pytest
from acceptance_support import Project, run_cli

from shipyard.engine.engine import Engine

pytestmark = pytest.mark.timeout(120)

TASKS = """
from shipyard import logger, metadata, task


@task(id="chatty", retry={"max_attempts": 2, "min_timeout_ms": 10, "max_timeout_ms": 20})
async def chatty(payload, ctx):
    logger.info("hello [not markup]", attempt=ctx.attempt.number)
    async with logger.trace("work", step=1):
        metadata.set("progress", 0.5)
    if ctx.attempt.number == 1:
        raise ValueError("flaky first attempt")
    for i in range(15):
        logger.info(f"line {i}")
    logger.warn("done", lines=15)
    return {"ok": True}


@task(id="stepper")
async def stepper(payload, ctx):
    logger.info("step-1")
    await wait_for_file(f"{ctx.run.id}.go", 60)
    logger.info("step-2")
    return "finished"
"""


async def _completed_chatty(project: Project) -> str:
    done = await run_cli(project, "trigger", "chatty", "--wait", "--timeout", "30", "--json")
    assert done.code == 0, done
    run_id: str = done.json()["id"]
    return run_id


async def test_runs_get_shows_attempts_and_the_last_log_lines(project: Project) -> None:
    project.write_tasks("tasks", TASKS)
    worker = project.spawn_worker()
    await project.wait_registered(worker)
    run_id = await _completed_chatty(project)

    text, as_json, three, none, missing = await asyncio.gather(
        run_cli(project, "runs", "get", run_id),
        run_cli(project, "runs", "get", run_id, "--json"),
        run_cli(project, "runs", "get", run_id, "--logs", "3", "--json"),
        run_cli(project, "runs", "get", run_id, "--logs", "0"),
        run_cli(project, "runs", "get", "run_doesnotexist", "--json"),
    )
    assert text.code == 0, text
    out = text.stdout
    assert "status: COMPLETED" in out
    # The attempts table: number, status, start, duration, error.
    first = next(line for line in out.splitlines() if re.search(r"\b1\b.*FAILED", line))
    assert "ValueError: flaky first attempt" in first and " ms" in first, out
    assert re.search(r"\b2\b.*COMPLETED.*\d+ ms", out), out
    # The last 10 of the 18 log lines (1 + 17), oldest first; earlier ones are not shown.
    assert f"logs (the last 10; every event: shipyard runs logs {run_id}):" in out, out
    log_lines = out.split("logs (the last 10", 1)[1].splitlines()[1:]
    assert len(log_lines) == 10, out
    assert [line.split("INFO", 1)[-1].strip() for line in log_lines[:9]] == [
        f"line {i}" for i in range(6, 15)
    ]
    assert re.match(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z  WARN\s+done  \{\"lines\": 15\}$", log_lines[9]
    )
    assert "line 5" not in out

    assert as_json.code == 0, as_json
    run = as_json.json()
    assert run["id"] == run_id and run["status"] == "COMPLETED"
    assert [(a["number"], a["status"]) for a in run["attempts"]] == [
        (1, "FAILED"),
        (2, "COMPLETED"),
    ]
    assert run["attempts"][0]["error"]["message"] == "flaky first attempt"
    assert run["attempts"][1]["error"] is None and run["attempts"][1]["finished_at"]
    assert len(run["logs"]) == 10
    assert run["logs"][-1] | {"id": 0, "ts": ""} == {
        "id": 0,
        "run_id": run_id,
        "ts": "",
        "kind": "log",
        "level": "warn",
        "message": "done",
        "attributes": {"lines": 15},
    }
    assert [e["message"] for e in three.json()["logs"]] == ["line 13", "line 14", "done"]
    assert none.code == 0 and "logs" not in none.stdout.split("attempts", 1)[1], none.stdout

    assert missing.code == 1, missing
    assert missing.err == "error: Run run_doesnotexist not found in environment 'development'."
    assert missing.stdout == ""


async def test_runs_logs_prints_every_event_in_order(project: Project) -> None:
    project.write_tasks("tasks", TASKS)
    worker = project.spawn_worker()
    await project.wait_registered(worker)
    run_id = await _completed_chatty(project)

    text, lines, missing = await asyncio.gather(
        run_cli(project, "runs", "logs", run_id),
        run_cli(project, "runs", "logs", run_id, "--json"),
        run_cli(project, "runs", "logs", "run_doesnotexist"),
    )
    assert lines.code == 0, lines
    events = lines.json_lines()
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert {e["run_id"] for e in events} == {run_id}
    statuses = [e["message"] for e in events if e["kind"] == "status"]
    assert statuses == ["EXECUTING", "QUEUED", "EXECUTING", "COMPLETED"]
    assert events[-1]["kind"] == "status" and events[-1]["message"] == "COMPLETED"
    spans = [e for e in events if e["kind"] == "span"]
    assert [s["message"] for s in spans] == ["work", "work"]
    assert spans[0]["attributes"]["attributes"] == {"step": 1}
    assert spans[0]["attributes"]["status"] == "ok"
    assert [e["kind"] for e in events].count("metadata") >= 2
    logs = [e for e in events if e["kind"] == "log"]
    assert logs[0]["message"] == "hello [not markup]" and logs[0]["attributes"] == {"attempt": 1}
    assert len(logs) == 18

    assert text.code == 0, text
    rendered = text.stdout.splitlines()
    assert len(rendered) == len(events)
    # time, kind or level, message, attributes — and markup-like text printed as written.
    # Every run's log starts with its creation (the realtime feed's ``created`` event).
    assert re.match(r"\d{4}-\d\d-\d\dT[\d:.]+Z  CREATED  QUEUED$", rendered[0]), rendered[0]
    assert re.match(r"\d{4}-\d\d-\d\dT[\d:.]+Z  STATUS   EXECUTING$", rendered[1]), rendered[1]
    assert any(line.endswith('INFO     hello [not markup]  {"attempt": 1}') for line in rendered), (
        rendered
    )
    assert any(re.search(r"SPAN     work  [\d.]+ ms  ok  \{\"step\": 1\}$", r) for r in rendered)
    assert any("METADATA 1 operation" in line for line in rendered)
    assert rendered[-1].endswith("STATUS   COMPLETED")

    assert missing.code == 1 and missing.stdout == "", missing
    assert missing.err == "error: Run run_doesnotexist not found in environment 'development'."
    assert "Traceback" not in missing.stderr


async def _read_line(stream: asyncio.StreamReader, timeout: float) -> str:
    line = await asyncio.wait_for(stream.readline(), timeout)
    return line.decode()


async def test_runs_logs_follow_prints_events_as_they_arrive_and_ends_with_the_run(
    project: Project, client_engine: Engine
) -> None:
    project.write_tasks("tasks", TASKS)
    worker = project.spawn_worker()
    await project.wait_registered(worker)
    handle = await client_engine.trigger("stepper", None, {})

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shipyard",
        *("runs", "logs", handle.id, "--follow", "--json", "--interval", "0.1"),
        cwd=project.root,
        env=project.env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stdout is not None and process.stderr is not None
    seen: list[dict[str, Any]] = []
    try:
        # step-1 arrives while the run still waits for the marker: printed as it happens.
        deadline = time.monotonic() + 30
        while not any(e["message"] == "step-1" for e in seen):
            assert time.monotonic() < deadline, seen
            seen.append(json.loads(await _read_line(process.stdout, 30)))
        assert process.returncode is None, "--follow ended before the run did"
        assert project.run_row(handle.id)["status"] == "EXECUTING"
        assert [e["message"] for e in seen] == ["QUEUED", "EXECUTING", "step-1"]

        project.markers.mkdir(exist_ok=True)
        (project.markers / f"{handle.id}.go").write_text("go")
        # Then step-2 and the final status, and the command ends by itself.
        rest, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    seen += [json.loads(line) for line in rest.decode().splitlines()]
    assert [(e["kind"], e["message"]) for e in seen] == [
        ("created", "QUEUED"),
        ("status", "EXECUTING"),
        ("log", "step-1"),
        ("log", "step-2"),
        ("status", "COMPLETED"),
    ]
    assert project.run_row(handle.id)["status"] == "COMPLETED"


async def test_runs_cancel_replay_and_migrate_print_json(
    project: Project, client_engine: Engine
) -> None:
    project.write_tasks("tasks", TASKS)
    worker = project.spawn_worker()
    await project.wait_registered(worker)
    stepper = await client_engine.trigger("stepper", {"n": 1}, {"tags": ["cli"]})
    run_id = await _completed_chatty(project)

    canceled, replayed, migrated = await asyncio.gather(
        run_cli(project, "runs", "cancel", stepper.id, "--json"),
        run_cli(project, "runs", "replay", run_id, "--json"),
        run_cli(project, "migrate", "--json"),
    )
    assert canceled.code == 0, canceled
    run = canceled.json()
    assert run["id"] == stepper.id and run["status"] == "CANCELED" and run["tags"] == ["cli"]
    assert run["is_cancelled"] is True and run["error"]["name"] == "TaskRunCanceled"

    assert replayed.code == 0, replayed
    handle = replayed.json()
    assert set(handle) == {"id", "task_identifier", "is_cached", "replayed_run_id"}
    assert handle["task_identifier"] == "chatty" and handle["replayed_run_id"] == run_id
    assert handle["id"].startswith("run_") and handle["id"] != run_id
    await project.wait_status(handle["id"], "COMPLETED", timeout=30)

    assert migrated.code == 0, migrated
    assert migrated.json() == {"applied": []}  # the worker applied them at start
