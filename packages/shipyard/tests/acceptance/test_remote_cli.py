"""``shipyard … --api-url URL`` (or ``SHIPYARD_API_URL``) in a subprocess: the commands act on a
real remote engine server (and its worker) over HTTP, from a folder with no database; errors
are one line and the documented exit codes."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
from pathlib import Path

import pytest
from acceptance_support import Procs, clean_env, free_port
from remote_support import SECRET_KEY, RemoteEngine, start_remote_engine, url_project

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


@pytest.fixture
async def remote(tmp_path: Path, procs: Procs, database_url: str) -> RemoteEngine:
    return await start_remote_engine(url_project(tmp_path / "engine", procs, database_url))


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A folder of another machine: no project, no database, only the key."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def _cli(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shipyard", *args],
        cwd=folder,
        env=clean_env(COLUMNS="200", **env),
        capture_output=True,
        text=True,
        timeout=90,
    )


def _json(done: subprocess.CompletedProcess[str]) -> object:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def test_commands_act_on_the_remote_engine(remote: RemoteEngine, elsewhere: Path) -> None:
    key = {"SHIPYARD_SECRET_KEY": SECRET_KEY}
    flag = ("--api-url", remote.url)
    triggered = _json(
        _cli(
            elsewhere,
            "trigger",
            "double",
            "--payload",
            '{"n": 4}',
            "--wait",
            "--json",
            *flag,
            **key,
        )
    )
    assert isinstance(triggered, dict)
    assert (triggered["status"], triggered["output"]) == ("COMPLETED", 8)
    run_id = triggered["id"]

    shown = _json(_cli(elsewhere, "runs", "get", run_id, "--json", *flag, **key))
    assert isinstance(shown, dict)
    assert shown["status"] == "COMPLETED" and shown["attempts"][0]["status"] == "COMPLETED"
    assert [line["message"] for line in shown["logs"]] == ["doubling"]

    # The variable works as the flag does. The reads are independent: side by side.
    env = {**key, "SHIPYARD_API_URL": remote.url}
    reads = [
        ("runs", "list", "--task", "double", "--json"),
        ("runs", "logs", run_id, "--json"),
        ("tasks", "list", "--json"),
        ("queues", "list", "--json"),
        ("tokens", "list", "--json"),
    ]
    with concurrent.futures.ThreadPoolExecutor(len(reads)) as pool:
        listed_done, logs, tasks_done, queues_done, tokens_done = pool.map(
            lambda args: _cli(elsewhere, *args, **env), reads
        )
    listed = _json(listed_done)
    assert isinstance(listed, list) and [r["id"] for r in listed] == [run_id]
    assert logs.returncode == 0, logs.stderr
    assert "doubling" in logs.stdout
    task_ids = {t["id"] for t in _json(tasks_done)}  # type: ignore[union-attr]
    assert {"double", "approve"} <= task_ids
    queue_names = {q["name"] for q in _json(queues_done)}  # type: ignore[union-attr]
    assert "task/double" in queue_names
    assert _json(tokens_done) == []
    paused = _json(_cli(elsewhere, "queues", "pause", "task/double", "--json", **env))
    assert isinstance(paused, dict) and paused["paused"] is True
    assert (
        _json(_cli(elsewhere, "queues", "resume", "task/double", "--json", **env))["paused"]
        is False
    )  # type: ignore[index]
    replayed = _json(_cli(elsewhere, "runs", "replay", run_id, "--json", **env))
    assert isinstance(replayed, dict) and replayed["replayed_run_id"] == run_id
    canceled = _json(_cli(elsewhere, "runs", "cancel", run_id, "--json", **env))
    assert isinstance(canceled, dict) and canceled["status"] == "COMPLETED"  # final: unchanged

    assert not (elsewhere / ".shipyard").exists(), "a remote command opened a database here"


async def test_remote_errors_are_one_line_with_the_right_exit_code(
    remote: RemoteEngine, elsewhere: Path
) -> None:
    key = {"SHIPYARD_SECRET_KEY": SECRET_KEY}
    flag = ("--api-url", remote.url)
    cases = [
        (("runs", "get", "run_doesnotexist", *flag), key, 1, "run_doesnotexist"),
        (("tokens", "complete", "waitpoint_nope", *flag), key, 1, "waitpoint_nope"),
        (("trigger", "double", "--payload", "{", *flag), key, 2, "--payload is not valid JSON"),
        (("runs", "list", "--status", "NOPE", *flag), key, 2, "NOPE"),
        (
            ("runs", "list", *flag),
            {"SHIPYARD_SECRET_KEY": "sk_" + "w" * 40},
            1,
            "SHIPYARD_SECRET_KEY",
        ),
        (("versions", "list"), {**key, "SHIPYARD_API_URL": remote.url}, 1, "over HTTP"),
        (
            ("runs", "list", "--api-url", f"http://127.0.0.1:{free_port()}"),
            key,
            1,
            "could not be reached",
        ),
        (("runs", "list", "--api-url", "ftp://nowhere"), key, 1, "SHIPYARD_API_URL"),
    ]
    # Independent processes: run them side by side (each CLI start costs ~1 s).
    with concurrent.futures.ThreadPoolExecutor(len(cases)) as pool:
        results = list(pool.map(lambda case: _cli(elsewhere, *case[0], **case[1]), cases))
    for (args, _env, code, text), done in zip(cases, results, strict=True):
        line = " ".join(done.stderr.split())
        assert done.returncode == code, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and text in line, (args, line)
        assert len(done.stderr.strip().splitlines()) == 1 or "error:" in line, done.stderr
        assert SECRET_KEY not in done.stderr
    assert not (elsewhere / ".shipyard").exists()
