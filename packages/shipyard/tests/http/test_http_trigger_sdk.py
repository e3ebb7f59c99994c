"""Trigger.dev's own TypeScript client (``@trigger.dev/sdk`` 4.8.3, pinned in
``tests/fixtures/trigger-sdk``) against a real engine server and an in-process worker: it
triggers a Python task, polls it to COMPLETED with its output, lists, cancels and replays runs,
completes a wait token and resets an idempotency key. Needs node ≥ 20 (``npm ci`` is run in
the fixture on first use)."""

from __future__ import annotations

import asyncio
import fcntl
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from http_support import Serve

from shipyard import queue, task, wait
from shipyard.engine.engine import Engine
from shipyard.server.app import create_app

pytestmark = pytest.mark.timeout(300)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "trigger-sdk"


def installed() -> None:
    """``npm ci`` in the fixture once (a lock file keeps parallel tests from racing)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed")
    with open(FIXTURE / ".npm-ci.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (FIXTURE / "node_modules" / "@trigger.dev" / "sdk").is_dir():
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"],
                cwd=FIXTURE,
                check=True,
                capture_output=True,
                timeout=240,
            )


async def sdk(url: str, secret: str, command: str, **options: Any) -> Any:
    """One SDK call through ``client.mjs``: its result, or AssertionError with its error."""
    args = ["node", "client.mjs", "--base-url", url, "--secret-key", secret, "--max-attempts", "1"]
    args.append(command)
    for name, value in options.items():
        text = value if isinstance(value, str) else json.dumps(value)
        args += [f"--{name}", text]
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=FIXTURE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    assert lines, (command, out.decode(), err.decode())
    step = lines[-1]
    assert step["ok"], (command, step)
    return step["result"]


async def test_the_official_sdk_drives_the_engine(
    engine: Engine, start_worker: Callable[..., Any], serve: Serve
) -> None:
    installed()

    @task(id="hello")
    async def hello(payload: Any) -> Any:
        return {"greeting": f"Hello, {payload['name']}!"}

    @task(id="approval")
    async def approval(payload: Any) -> Any:
        return (await wait.for_token(payload["token"])).output

    await start_worker()
    url = await serve(create_app(engine))
    key = engine.secret_key()

    handle = await sdk(url, key, "trigger", task="hello", payload={"name": "Ada"})
    assert handle["id"].startswith("run_") and handle["publicAccessToken"]
    run = await sdk(url, key, "poll", run=handle["id"])
    assert run["status"] == "COMPLETED" and run["isSuccess"] is True
    assert run["output"] == {"greeting": "Hello, Ada!"}
    retrieved = await sdk(url, key, "retrieve", run=handle["id"])
    assert retrieved["payload"] == {"name": "Ada"}

    listed = await sdk(url, key, "list", filters={"taskIdentifier": "hello"})
    assert handle["id"] in [r["id"] for r in listed]
    replayed = await sdk(url, key, "replay", run=handle["id"])
    assert replayed["id"] != handle["id"]
    assert (await sdk(url, key, "poll", run=replayed["id"]))["status"] == "COMPLETED"

    later = await sdk(
        url, key, "trigger", task="hello", payload={"name": "B"}, options={"delay": "1h"}
    )
    canceled = await sdk(url, key, "cancel", run=later["id"])
    assert canceled["id"] == later["id"]
    assert (await engine.retrieve_run(later["id"])).status == "CANCELED"

    token = await sdk(url, key, "create-token", options={"timeout": "10m"})
    waiting = await engine.trigger("approval", {"token": token["id"]}, {})
    done = await sdk(url, key, "complete-token", token=token["id"], data={"ok": True})
    assert done == {"success": True}
    final = await engine.wait_for_final(waiting.id, timeout=30)
    assert json.loads(final.output or "null") == {"ok": True}
    got = await sdk(url, key, "retrieve-token", token=token["id"])
    assert got["status"] == "COMPLETED" and got["output"] == {"ok": True}

    first = await sdk(
        url, key, "trigger", task="hello", payload={"name": "C"}, options={"idempotencyKey": "k1"}
    )
    cached = await sdk(
        url, key, "trigger", task="hello", payload={"name": "C"}, options={"idempotencyKey": "k1"}
    )
    assert cached["id"] == first["id"]
    await sdk(url, key, "reset-idempotency", task="hello", key="k1")
    fresh = await sdk(
        url, key, "trigger", task="hello", payload={"name": "C"}, options={"idempotencyKey": "k1"}
    )
    assert fresh["id"] != first["id"]


async def test_the_official_sdk_reschedules_reads_batches_and_steers_queues(
    engine: Engine, start_worker: Callable[..., Any], serve: Serve
) -> None:
    installed()
    held = queue(name="held", concurrency_limit=2)

    @task(id="held-task", queue=held)
    async def held_task(payload: Any) -> Any:
        return payload

    @task(id="own")
    async def own(payload: Any) -> Any:
        return payload

    await start_worker()
    url = await serve(create_app(engine))
    key = engine.secret_key()

    later = await sdk(url, key, "trigger", task="held-task", payload=1, options={"delay": "1h"})
    moved = await sdk(url, key, "reschedule", run=later["id"], delay="2h")
    assert moved["status"] == "DELAYED" and moved["id"] == later["id"]

    batch = await engine.batch_trigger([{"task": "held-task", "payload": i} for i in range(3)], {})
    got = await sdk(url, key, "retrieve-batch", batch=batch.batch_id)
    assert got["runs"] == list(batch.runs) and got["runCount"] == 3

    queues = await sdk(url, key, "list-queues")
    assert "held" in [q["name"] for q in queues]
    one = await sdk(url, key, "retrieve-queue", type="custom", name="held")
    assert one["concurrencyLimit"] == 2
    paused = await sdk(url, key, "pause-queue", type="custom", name="held")
    assert paused["paused"] is True
    resumed = await sdk(url, key, "resume-queue", type="custom", name="held")
    assert resumed["paused"] is False
    by_task = await sdk(url, key, "retrieve-queue", type="task", name="own")
    assert by_task["name"] == "own" and by_task["type"] == "task"
