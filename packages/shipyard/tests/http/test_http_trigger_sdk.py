"""Trigger.dev's own TypeScript client (``@trigger.dev/sdk`` 4.8.3, pinned in
``tests/fixtures/trigger-sdk``) against a real engine server and an in-process worker: it
triggers a Python task, polls it to COMPLETED with its output, lists, cancels and replays runs,
completes a wait token and resets an idempotency key. Needs node ≥ 20 (``npm ci`` is run in
the fixture on first use)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
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


class Sdk:
    """One Node process running ``client.mjs steps`` for a whole test: each call writes a step
    line and reads that step's result line (loading the SDK costs ~0.5 s of CPU per process)."""

    def __init__(self, url: str, secret: str) -> None:
        self.args = ["node", "client.mjs", "--base-url", url, "--secret-key", secret]
        self.args += ["--max-attempts", "1", "steps"]
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Sdk:
        self.proc = await asyncio.create_subprocess_exec(
            *self.args,
            cwd=FIXTURE,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=16 * 1024 * 1024,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        finally:
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()

    async def __call__(self, command: str, **options: Any) -> Any:
        """One SDK call: its result, or AssertionError with its error (or Node's stderr)."""
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"command": command, **options}).encode() + b"\n")
        await self.proc.stdin.drain()
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), 120)
            if not line:
                err = await self.proc.stderr.read() if self.proc.stderr else b""
                raise AssertionError((command, "node exited", err.decode()))
            if line.startswith(b"{"):
                break
        step = json.loads(line)
        assert step["ok"], (command, step)
        return step["result"]


OpenSdk = Callable[[str, str], Awaitable[Sdk]]


@pytest.fixture
async def open_sdk() -> AsyncIterator[OpenSdk]:
    """Opens an :class:`Sdk` session on a server; every session is closed after the test."""
    async with contextlib.AsyncExitStack() as stack:

        async def open_(url: str, secret: str) -> Sdk:
            return await stack.enter_async_context(Sdk(url, secret))

        yield open_


async def test_the_official_sdk_drives_the_engine(
    engine: Engine, start_worker: Callable[..., Any], serve: Serve, open_sdk: OpenSdk
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
    sdk = await open_sdk(url, engine.secret_key())

    handle = await sdk("trigger", task="hello", payload={"name": "Ada"})
    assert handle["id"].startswith("run_") and handle["publicAccessToken"]
    run = await sdk("poll", run=handle["id"])
    assert run["status"] == "COMPLETED" and run["isSuccess"] is True
    assert run["output"] == {"greeting": "Hello, Ada!"}
    retrieved = await sdk("retrieve", run=handle["id"])
    assert retrieved["payload"] == {"name": "Ada"}

    listed = await sdk("list", filters={"taskIdentifier": "hello"})
    assert handle["id"] in [r["id"] for r in listed]
    replayed = await sdk("replay", run=handle["id"])
    assert replayed["id"] != handle["id"]
    assert (await sdk("poll", run=replayed["id"]))["status"] == "COMPLETED"

    later = await sdk("trigger", task="hello", payload={"name": "B"}, options={"delay": "1h"})
    canceled = await sdk("cancel", run=later["id"])
    assert canceled["id"] == later["id"]
    assert (await engine.retrieve_run(later["id"])).status == "CANCELED"

    token = await sdk("create-token", options={"timeout": "10m"})
    waiting = await engine.trigger("approval", {"token": token["id"]}, {})
    done = await sdk("complete-token", token=token["id"], data={"ok": True})
    assert done == {"success": True}
    final = await engine.wait_for_final(waiting.id, timeout=30)
    assert json.loads(final.output or "null") == {"ok": True}
    got = await sdk("retrieve-token", token=token["id"])
    assert got["status"] == "COMPLETED" and got["output"] == {"ok": True}

    first = await sdk(
        "trigger", task="hello", payload={"name": "C"}, options={"idempotencyKey": "k1"}
    )
    cached = await sdk(
        "trigger", task="hello", payload={"name": "C"}, options={"idempotencyKey": "k1"}
    )
    assert cached["id"] == first["id"]
    await sdk("reset-idempotency", task="hello", key="k1")
    fresh = await sdk(
        "trigger", task="hello", payload={"name": "C"}, options={"idempotencyKey": "k1"}
    )
    assert fresh["id"] != first["id"]


async def test_the_official_sdk_reschedules_reads_batches_and_steers_queues(
    engine: Engine, start_worker: Callable[..., Any], serve: Serve, open_sdk: OpenSdk
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
    sdk = await open_sdk(url, engine.secret_key())

    later = await sdk("trigger", task="held-task", payload=1, options={"delay": "1h"})
    moved = await sdk("reschedule", run=later["id"], delay="2h")
    assert moved["status"] == "DELAYED" and moved["id"] == later["id"]

    batch = await engine.batch_trigger([{"task": "held-task", "payload": i} for i in range(3)], {})
    got = await sdk("retrieve-batch", batch=batch.batch_id)
    assert got["runs"] == list(batch.runs) and got["runCount"] == 3

    queues = await sdk("list-queues")
    assert "held" in [q["name"] for q in queues]
    one = await sdk("retrieve-queue", type="custom", name="held")
    assert one["concurrencyLimit"] == 2
    paused = await sdk("pause-queue", type="custom", name="held")
    assert paused["paused"] is True
    resumed = await sdk("resume-queue", type="custom", name="held")
    assert resumed["paused"] is False
    by_task = await sdk("retrieve-queue", type="task", name="own")
    assert by_task["name"] == "own" and by_task["type"] == "task"
