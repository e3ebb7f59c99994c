"""Streams on both backends: chunks read while written arrive complete and in order (SDK and
SSE), many writers on one stream, resuming from an index, the default stream and targets;
input streams: ``.wait`` suspends and resumes with the sent data, ``.once``, data kept until
a listener exists, and a finished run refusing input (SDK and HTTP)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from shipyard import runs, streams, task
from shipyard.engine.engine import Engine
from shipyard.errors import NotInRunError, PayloadTooLargeError, RunFinishedError
from shipyard.statuses import RunStatus
from shipyard.testing.eventually import eventually
from shipyard.testing.sse import sse_events

N = 1000


async def numbers(count: int, prefix: str = "") -> AsyncIterator[str]:
    for i in range(count):
        if i % 50 == 0:
            await asyncio.sleep(0.005)  # let readers read while it is written
        yield f"{prefix}{i}"


async def test_a_thousand_chunks_read_while_written_arrive_complete_and_in_order(
    engine: Engine, start_worker: Callable[..., Any], client: httpx.AsyncClient
) -> None:
    tokens = streams.define("tokens")

    @task(id="writer")
    async def writer(payload: None) -> int:
        return await tokens.pipe(numbers(N))

    handle = await writer.trigger(None)
    sdk = asyncio.create_task(_read_all(tokens.read(handle, timeout_in_seconds=30)))

    async def over_sse() -> list[tuple[str, str]]:
        seen = []
        async for event in sse_events(
            client, f"/realtime/v1/streams/{handle.id}/tokens", token=engine.secret_key()
        ):
            if event.comment is None:
                seen.append((event.event, event.id or "", event.data))
        return [(i, d) for e, i, d in seen if e == "chunk"] if seen[-1][0] == "end" else []

    sse = asyncio.create_task(over_sse())
    await eventually(lambda: len(engine.feed_hub._taps) == 1)
    await start_worker()
    expected = [str(i) for i in range(N)]
    assert await asyncio.wait_for(sdk, 60) == expected  # ends with the run, everything read
    chunks = await asyncio.wait_for(sse, 60)
    assert [i for i, _ in chunks] == [str(i) for i in range(N)]
    assert [d for _, d in chunks] == [f'"{i}"' for i in range(N)]
    assert (await runs.retrieve(handle.id)).output == N


async def test_two_writers_interleave_without_loss_and_reads_resume_from_an_index(
    engine: Engine, start_worker: Callable[..., Any], client: httpx.AsyncClient
) -> None:
    log = streams.define("log")
    go = asyncio.Event()
    outside_done = asyncio.Event()

    @task(id="two-writers")
    async def two_writers(payload: None) -> None:
        await go.wait()
        await log.pipe(numbers(200, "task-"))
        await outside_done.wait()  # the run ends after both writers (readers stop then)

    handle = await two_writers.trigger(None)
    await start_worker()
    await eventually(lambda: runs.retrieve(handle.id), until=lambda r: r.is_executing)

    async def outside() -> None:
        async for value in numbers(200, "outside-"):
            await log.append(value, target=handle.id)  # one write per chunk
        outside_done.set()

    reader = asyncio.create_task(_read_all(log.read(handle, timeout_in_seconds=30)))
    go.set()
    await asyncio.gather(
        outside(), eventually(lambda: runs.retrieve(handle.id), until=_done, timeout=60)
    )
    values = await asyncio.wait_for(reader, 30)
    assert len(values) == 400
    for prefix in ("task-", "outside-"):
        assert [v for v in values if v.startswith(prefix)] == [f"{prefix}{i}" for i in range(200)]
    # Resume from any index: the rest, exactly.
    assert await _read_all(log.read(handle, start_index=321)) == values[321:]
    key = engine.secret_key()
    tail = [
        e.json()
        async for e in sse_events(
            client, f"/realtime/v1/streams/{handle.id}/log", token=key, last_event_id="389"
        )
        if e.event == "chunk"
    ]
    assert tail == values[390:]
    params = {"startIndex": "395"}
    tail = [
        e.json()
        async for e in sse_events(
            client, f"/realtime/v1/streams/{handle.id}/log", token=key, params=params
        )
        if e.event == "chunk"
    ]
    assert tail == values[395:]


async def test_the_default_stream_parent_and_root_targets_and_limits(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    @task(id="child-writer")
    async def child_writer(payload: None) -> None:
        await streams.append("to parent", target="parent")
        await streams.append("to root", key="root-stream", target="root")

    @task(id="parent-writer")
    async def parent_writer(payload: None) -> None:
        await streams.append("mine")
        await child_writer.trigger_and_wait(None)

    await start_worker()
    handle = await parent_writer.trigger(None)
    await eventually(lambda: runs.retrieve(handle.id), until=_done, timeout=20)
    assert await _read_all(streams.read(handle)) == ["mine", "to parent"]
    assert await _read_all(streams.read(handle, "root-stream")) == ["to root"]
    with pytest.raises(NotInRunError, match="target"):
        await streams.append("x")
    with pytest.raises(PayloadTooLargeError, match="1 MiB"):
        await streams.append("x" * (1024 * 1024), target=handle.id)


async def test_a_read_ends_after_its_timeout_without_data(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    hold = asyncio.Event()
    appended = asyncio.Event()

    @task(id="quiet")
    async def quiet(payload: None) -> None:
        await streams.append("only one")
        appended.set()
        await hold.wait()

    handle = await quiet.trigger(None)
    await start_worker()
    # The read is timed from a stream that already has its one chunk (how long a loaded
    # machine takes to start the run is not what this test is about).
    await asyncio.wait_for(appended.wait(), 20)
    started = time.monotonic()
    got = await _read_all(streams.read(handle, timeout_in_seconds=0.5))
    assert got == ["only one"] and time.monotonic() - started >= 0.5
    hold.set()


# -- input streams ------------------------------------------------------------------------------


async def test_wait_suspends_the_run_and_resumes_it_with_the_sent_data(
    engine: Engine, start_worker: Callable[..., Any], client: httpx.AsyncClient
) -> None:
    approval = streams.input("approval")

    @task(id="approve")
    async def approve(payload: None) -> list[Any]:
        first = await approval.wait(timeout="1h")
        second = await approval.wait()
        return [first.unwrap(), second.output]

    handle = await approve.trigger(None)
    await start_worker()
    await eventually(lambda: runs.retrieve(handle.id), until=lambda r: r.is_waiting)
    await approval.send(handle, {"ok": True})  # the SDK
    await eventually(lambda: runs.retrieve(handle.id), until=lambda r: r.is_waiting)
    response = await client.post(
        f"/realtime/v1/streams/{handle.id}/input/approval",
        json={"data": "via http"},
        headers={"Authorization": f"Bearer {engine.secret_key()}"},
    )
    assert response.status_code == 200 and response.json()["resumedWait"] is True
    run = await eventually(lambda: runs.retrieve(handle.id), until=_done, timeout=20)
    assert run.output == [{"ok": True}, "via http"]
    statuses = [e.message for e in await runs.events(handle.id) if e.kind == "status"]
    assert statuses.count("WAITING") == 2  # it gave its slot back twice
    with pytest.raises(RunFinishedError, match="has finished"):
        await approval.send(handle, "too late")
    late = await client.post(
        f"/realtime/v1/streams/{handle.id}/input/approval",
        json={"data": 1},
        headers={"Authorization": f"Bearer {engine.secret_key()}"},
    )
    assert late.status_code == 409 and late.json()["code"] == "RUN_FINISHED"
    refused = await client.post(
        f"/realtime/v1/streams/{handle.id}/input/approval",
        json={"data": 1},
        headers={"Authorization": f"Bearer {handle.public_access_token}"},
    )
    assert refused.status_code == 403  # a read token cannot send


async def test_data_sent_before_a_listener_is_kept_and_once_does_not_suspend(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    answers = streams.input("answers")
    ready = asyncio.Event()

    @task(id="listener")
    async def listener(payload: None) -> list[Any]:
        kept = await answers.once(timeout_ms=5_000)  # sent before the run even started
        ready.set()
        live = await answers.once(timeout_ms=10_000)
        nothing = await answers.once(timeout_ms=100)
        return [kept.output, live.output, nothing.ok]

    handle = await listener.trigger(None)
    await answers.send(handle.id, "early")
    await start_worker()
    await asyncio.wait_for(ready.wait(), 10)
    assert (await runs.retrieve(handle.id)).status == RunStatus.EXECUTING
    await answers.send(handle.id, "live")
    run = await eventually(lambda: runs.retrieve(handle.id), until=_done, timeout=20)
    assert run.output == ["early", "live", False]
    statuses = [e.message for e in await runs.events(handle.id) if e.kind == "status"]
    assert "WAITING" not in statuses


def _done(run: Any) -> bool:
    return bool(run.status in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CRASHED))


async def _read_all(source: AsyncIterator[Any]) -> list[Any]:
    return [value async for value in source]
