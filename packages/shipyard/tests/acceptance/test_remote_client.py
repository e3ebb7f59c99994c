"""The remote client end to end: a real ``shipyard server`` (uvicorn on a free port) and a real
worker process on the test's database (SQLite and PostgreSQL); this process knows only the
server's URL and key, triggers and steers runs through the public SDK over HTTP, and reads
back what the worker did. No database is opened in this process.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from acceptance_support import Procs, clean_env, free_port
from remote_support import SECRET_KEY, RemoteEngine, start_remote_engine, url_project

import shipyard
from shipyard import idempotency_keys, queues, runs, tasks, wait
from shipyard.client import RemoteClient
from shipyard.config import Settings, load_settings
from shipyard.engine.engine import Engine
from shipyard.errors import (
    AuthenticationError,
    ConfigError,
    NotInRunError,
    RemoteEngineError,
    RunNotFoundError,
    ValidationError,
    WaitpointNotFoundError,
)
from shipyard.metadata_ops import MetadataOp
from shipyard.models.runs import Run
from shipyard.sdk.backend import default_backend

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def remote(tmp_path: Path, procs: Procs, database_url: str) -> RemoteEngine:
    """The engine server and a worker, on this test's database."""
    return await start_remote_engine(url_project(tmp_path / "engine", procs, database_url))


@pytest.fixture
async def app_settings(remote: RemoteEngine, tmp_path: Path) -> AsyncIterator[Settings]:
    """This process configured as a remote app: an API URL and a key, nothing else."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "0"\n')
    settings = shipyard.configure(project_root=app, api_url=remote.url, secret_key=SECRET_KEY)
    assert isinstance(default_backend(), RemoteClient)
    yield settings
    await shipyard.aclose()
    assert not (app / ".shipyard").exists(), "a remote app opened a database of its own"


async def _final(run_id: str) -> Run:
    return await runs.poll(run_id, poll_interval_ms=50, max_attempts=600)


async def _status(run_id: str, status: str) -> Run:
    """The run once it has ``status`` (polled over HTTP, bounded)."""
    for _ in range(600):
        run = await runs.retrieve(run_id)
        if run.status == status:
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"{run_id} never became {status}; it is {run.status}")


async def test_trigger_remotely_the_worker_runs_it_and_it_reads_back(
    remote: RemoteEngine, app_settings: Settings
) -> None:
    handle = await tasks.trigger("double", {"n": 21}, tags=["remote"], metadata={"from": "http"})
    assert handle.id.startswith("run_") and handle.task_identifier == "double"
    assert not handle.is_cached
    assert handle.public_access_token.count(".") == 2  # the x-trigger-jwt header, a JWT

    run = await _final(handle.id)
    assert (run.status, run.output, run.payload) == ("COMPLETED", 42, {"n": 21})
    assert run.metadata == {"from": "http", "seen": 21}
    assert "remote" in run.tags and run.is_success and run.finished_at is not None
    assert [(a.number, a.status) for a in run.attempts] == [(1, "COMPLETED")]

    listed = [r.id async for r in runs.list(tag="remote", task_identifier="double")]
    assert listed == [handle.id]
    events = await runs.events(handle.id)
    logs = [e for e in events if e.kind == "log"]
    assert [e.message for e in logs] == ["doubling"] and logs[0].attributes == {"n": 21}
    assert [e.id for e in events] == sorted(e.id for e in events)

    assert {"double", "approve", "later"} <= {t.id for t in await default_backend().list_tasks()}

    again = await runs.replay(handle, payload={"n": 50})
    assert again.id != handle.id and again.task_identifier == "double"
    assert (await _final(again.id)).output == 100

    client = default_backend()
    assert isinstance(client, RemoteClient)
    assert await client.add_tags(handle.id, ["extra"]) == ["remote", "extra"]
    ops = [MetadataOp("increment", "seen", 1), MetadataOp("set", "note", "hi")]
    updated = await client.update_metadata(handle.id, operations=ops)
    assert updated == {"from": "http", "seen": 22, "note": "hi"}

    batch = await tasks.batch_trigger("double", [{"n": 1}, {"n": 2}, {"n": 3}])
    assert batch.run_count == 3 and len(batch.runs) == 3
    info = await shipyard.batch.retrieve(batch.batch_id)
    assert info.runs == batch.runs
    assert [(await _final(run_id)).output for run_id in batch.runs] == [2, 4, 6]


async def test_an_idempotency_key_dedups_the_same_runs_remotely_and_in_process(
    remote: RemoteEngine, app_settings: Settings
) -> None:
    first = await tasks.trigger("double", {"n": 5}, idempotency_key="order-5")
    again = await tasks.trigger("double", {"n": 5}, idempotency_key="order-5")
    assert again.id == first.id and again.is_cached

    # An engine in a process on the same database hashes the key the same way.
    local = Engine(
        load_settings(
            project_root=remote.project.root,
            database_url=remote.project.database_url,
            secret_key=SECRET_KEY,
        )
    )
    try:
        await local.start()
        in_process = await local.trigger("double", {"n": 5}, {"idempotency_key": "order-5"})
    finally:
        await local.close()
    assert (in_process.id, in_process.is_cached) == (first.id, True)

    assert await idempotency_keys.reset("double", "order-5", scope="global") == 1
    assert await idempotency_keys.reset("double", "never-used", scope="global") == 0
    fresh = await tasks.trigger("double", {"n": 5}, idempotency_key="order-5")
    assert fresh.id != first.id and not fresh.is_cached


async def test_wait_tokens_queues_and_run_steering_over_http(
    remote: RemoteEngine, app_settings: Settings
) -> None:
    token = await wait.create_token(timeout="10m", tags=["approval"])
    assert token.id.startswith("waitpoint_") and token.url.startswith("http")
    handle = await tasks.trigger("approve", {"token": token.id})
    await _status(handle.id, "WAITING")
    waiting = [t.id async for t in wait.list_tokens(status="WAITING", tags=["approval"])]
    assert waiting == [token.id]

    assert await wait.complete_token(token, {"ok": True})
    assert await wait.complete_token(token, {"ok": False})  # the first data is kept
    run = await _final(handle.id)
    assert (run.status, run.output) == ("COMPLETED", {"approved": {"ok": True}})
    info = await wait.retrieve_token(token.id)
    assert (info.status, info.output, info.tags) == ("COMPLETED", {"ok": True}, ("approval",))

    names = {q.name for q in await queues.list()}
    assert {"task/double", "task/approve"} <= names
    paused = await queues.pause("task/double")
    assert (paused.name, paused.paused) == ("task/double", True)
    assert (await queues.retrieve("task/double")).paused
    overridden = await queues.override_concurrency_limit("task/double", 2)
    assert (overridden.limit_override, overridden.effective_limit) == (2, 2)
    assert (await queues.reset_concurrency_limit("task/double")).limit_override is None
    assert not (await queues.resume("task/double")).paused

    later = await tasks.trigger("later", None, delay="1h")
    delayed = await runs.retrieve(later)
    assert delayed.status == "DELAYED" and delayed.delayed_until is not None
    moved = await runs.reschedule(later, delay="2h")
    assert moved.status == "DELAYED" and moved.delayed_until is not None
    assert moved.delayed_until > delayed.delayed_until
    canceled = await runs.cancel(later)
    assert canceled.status == "CANCELED" and canceled.is_cancelled
    replayed = await runs.replay(handle.id)
    assert replayed.id != handle.id and replayed.task_identifier == "approve"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_errors_come_back_as_the_engines_exceptions(
    remote: RemoteEngine, app_settings: Settings
) -> None:
    with pytest.raises(RunNotFoundError) as missing:
        await runs.retrieve("run_doesnotexist")
    assert "run_doesnotexist" in missing.value.message
    with pytest.raises(WaitpointNotFoundError):
        await wait.retrieve_token("waitpoint_doesnotexist")
    with pytest.raises(ValidationError) as bad:
        await tasks.trigger("double", {"n": 1}, ttl="soon")
    assert "soon" in bad.value.message or "ttl" in bad.value.message
    with pytest.raises(NotInRunError):
        await tasks.trigger_and_wait("double", {"n": 1})
    with pytest.raises(ConfigError, match="SHIPYARD_API_URL"):
        await shipyard.streams.append("x", target="run_x")  # appending needs the engine

    for key in ("sk_wrong_" + "x" * 40, None):
        client = RemoteClient(remote.url, key)
        try:
            with pytest.raises(AuthenticationError) as refused:
                await client.retrieve_run("run_x")
        finally:
            await client.close()
        assert "SHIPYARD_SECRET_KEY" in refused.value.message
        assert SECRET_KEY not in refused.value.message

    nobody = RemoteClient(f"http://127.0.0.1:{free_port()}", SECRET_KEY, retries=1)
    try:
        with pytest.raises(RemoteEngineError, match="could not be reached"):
            await nobody.trigger("double", {"n": 1}, {})
    finally:
        await nobody.close()


SCRIPT = """
import asyncio
import threading

import shipyard


async def main() -> None:
    handle = await shipyard.tasks.trigger("double", {"n": 2})
    run = await shipyard.runs.poll(handle, poll_interval_ms=50, max_attempts=600)
    await shipyard.aclose()
    await shipyard.aclose()  # a second call does nothing
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    print(run.status, run.output, len(others), threads, flush=True)


asyncio.run(main())
"""


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_script_with_only_the_url_and_key_triggers_and_exits_cleanly(
    remote: RemoteEngine, tmp_path: Path
) -> None:
    folder = tmp_path / "script"
    folder.mkdir()
    (folder / "script.py").write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, "-W", "always", "script.py"],  # every warning shown
        cwd=folder,
        env=clean_env(SHIPYARD_API_URL=remote.url, SHIPYARD_SECRET_KEY=SECRET_KEY),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # no unclosed client, no pending task
    assert done.stdout.strip() == "COMPLETED 4 0 []", done.stdout
    assert not (folder / ".shipyard").exists()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_mcp_server_works_through_the_client(
    remote: RemoteEngine, tmp_path: Path
) -> None:
    from mcp import Client

    from shipyard.mcp import McpOptions, ToolContext, build_server

    app = tmp_path / "mcp-app"
    app.mkdir()
    flags = McpOptions(api_url=remote.url)
    context = ToolContext(flags, settings=load_settings(project_root=app, secret_key=SECRET_KEY))

    async def call(client: Client, name: str, arguments: dict[str, Any]) -> Any:
        result = await client.call_tool(name, arguments)
        assert not result.is_error, result.content
        return result.structured_content

    async with Client(build_server(flags, context)) as client:
        worker = await call(client, "get_current_worker", {})
        assert {"double", "approve"} <= {t["id"] for t in worker["tasks"]}
        triggered = await call(client, "trigger_task", {"task_id": "double", "payload": {"n": 8}})
        done = await call(
            client, "wait_for_run_to_complete", {"run_id": triggered["id"], "timeout_seconds": 60}
        )
        assert (done["status"], done["output"]) == ("COMPLETED", 16)
        details = await call(client, "get_run_details", {"run_id": triggered["id"]})
        assert [log["message"] for log in details["logs"]] == ["doubling"]
        listed = await call(client, "list_runs", {"task_id": "double"})
        assert triggered["id"] in [r["id"] for r in listed["runs"]]
    assert not (app / ".shipyard").exists()
