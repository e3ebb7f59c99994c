"""Realtime through the remote client: ``runs.subscribe_*``, ``streams.read`` and input streams
from a process that reaches the engine only over HTTP (a real uvicorn server on both backends,
a real worker), and the same objects as in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from shipyard import metadata, runs, streams, task
from shipyard.client import RemoteClient
from shipyard.engine.engine import Engine
from shipyard.errors import AuthenticationError, RunNotFoundError
from shipyard.models.realtime import RealtimeRun
from shipyard.sdk.backend import default_backend, set_client
from shipyard.testing.eventually import eventually


@pytest.fixture
async def remote(engine: Engine, server_url: str) -> AsyncIterator[RemoteClient]:
    """The SDK of this process pointed at the engine server over HTTP."""
    client = RemoteClient(server_url, engine.secret_key())
    set_client(client)
    assert default_backend() is client
    yield client
    set_client(None)
    await client.close()


async def test_subscriptions_and_streams_over_http(
    engine: Engine, start_worker: Callable[..., Any], remote: RemoteClient
) -> None:
    tokens = streams.define("tokens")
    answers = streams.input("answers")

    @task(id="talker")
    async def talker(payload: dict[str, int]) -> str:
        metadata.set("stage", "writing")
        await tokens.append_many([f"t{i}" for i in range(payload["n"])])
        result = await answers.wait(timeout="1m")
        return f"answer={result.unwrap()}"

    handle = await engine.trigger("talker", {"n": 5}, {"tags": ["talk"]})
    seen: list[RealtimeRun] = []

    async def follow() -> None:
        async for run in runs.subscribe_to_run(handle.id):
            seen.append(run)

    follower = asyncio.create_task(follow())
    await eventually(lambda: bool(seen), timeout=30)  # subscribed: the run as it is
    await start_worker()
    chunks = [c async for c in tokens.read(handle.id, timeout_in_seconds=5)]
    assert chunks == [f"t{i}" for i in range(5)]
    await eventually(lambda: seen and seen[-1].status == "WAITING", timeout=30)
    await answers.send(handle.id, 42)
    await asyncio.wait_for(follower, 60)  # ends after the final status
    assert isinstance(seen[0], RealtimeRun) and seen[0].id == handle.id
    assert seen[-1].status == "COMPLETED" and seen[-1].output == "answer=42"
    assert seen[-1].is_completed and "talk" in seen[-1].tags
    statuses = [r.status for r in seen]
    assert statuses[0] in ("QUEUED", "PENDING_VERSION"), statuses
    assert statuses.index("EXECUTING") < statuses.index("WAITING") < statuses.index("COMPLETED")

    tagged: list[str] = []
    async for run in runs.subscribe_to_runs_with_tag("talk"):
        tagged.append(run.id)
        break
    assert tagged == [handle.id]

    batch = await engine.batch_trigger([{"task": "talker", "payload": {"n": 0}}], {})
    async for run in runs.subscribe_to_batch(batch.batch_id):
        assert run.id == batch.runs[0]
        break


async def test_realtime_errors_over_http(engine: Engine, remote: RemoteClient) -> None:
    with pytest.raises(RunNotFoundError):
        async for _ in runs.subscribe_to_run("run_doesnotexist"):
            pass
    wrong = RemoteClient(remote._http.base_url, "sk_wrong_" + "x" * 40)
    try:
        with pytest.raises(AuthenticationError):
            async for _ in wrong.subscribe_run("run_x"):
                pass
    finally:
        await wrong.close()
