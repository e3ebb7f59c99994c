"""The realtime SSE routes through a real uvicorn server, on both backends: a run's updates in
order ending by themselves, resuming with Last-Event-ID (nothing lost, nothing repeated),
tags and batches, the heartbeat, and access (secret key, handle tokens, 401/403)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from shipyard import metadata, task
from shipyard.engine.auth import sign_token
from shipyard.engine.engine import Engine
from shipyard.server.realtime import SecretKeyAccess, realtime_router
from shipyard.testing.eventually import eventually
from shipyard.testing.sse import SseEvent, sse_events

Serve = Callable[[Any], Awaitable[str]]  # the ``serve`` fixture (conftest.py)


def updates(events: list[SseEvent]) -> list[dict[str, Any]]:
    return [e.json() for e in events if e.event == "update"]


def distinct_statuses(bodies: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for body in bodies:
        if not out or out[-1] != body["run"]["status"]:
            out.append(body["run"]["status"])
    return out


async def collect(
    client: httpx.AsyncClient,
    path: str,
    token: str,
    *,
    last_event_id: str | None = None,
    stop_after: int | None = None,
    on_update: Callable[[dict[str, Any]], None] | None = None,
    params: dict[str, str] | None = None,
) -> list[SseEvent]:
    """The stream's events until it ends (or ``stop_after`` updates: then disconnect)."""
    seen: list[SseEvent] = []
    async for event in sse_events(
        client, path, token=token, last_event_id=last_event_id, params=params
    ):
        if event.comment is not None:
            continue
        seen.append(event)
        if event.event == "update" and on_update is not None:
            on_update(event.json())
        if stop_after is not None and len(updates(seen)) >= stop_after:
            break
    return seen


def stepped_task(values: list[float], steps: dict[float, asyncio.Event]) -> Any:
    @task(id="stepped")
    async def stepped(payload: None) -> str:
        for value in values:
            metadata.set("progress", value)
            await metadata.flush()
            await asyncio.wait_for(steps[value].wait(), 15)
        return "done"

    return stepped


async def test_an_sse_subscriber_sees_each_status_the_progress_and_the_stream_ends(
    engine: Engine, start_worker: Callable[..., Any], client: httpx.AsyncClient
) -> None:
    values = [0.25, 0.5, 0.75]
    steps = {v: asyncio.Event() for v in values}
    handle = await stepped_task(values, steps).trigger(None)

    seen: list[str] = []

    def saw(body: dict[str, Any]) -> None:
        seen.append(body["change"])
        value = (body["run"].get("metadata") or {}).get("progress")
        if value in steps:
            steps[value].set()

    reading = asyncio.create_task(
        collect(client, f"/realtime/v1/runs/{handle.id}", engine.secret_key(), on_update=saw)
    )
    # The snapshot arrives before any worker runs the task (a later one would rightly show
    # the run as it is then, QUEUED, and never PENDING_VERSION).
    await eventually(lambda: seen == ["snapshot"])
    await start_worker()
    events = await asyncio.wait_for(reading, 30)  # the server ends the stream by itself
    bodies = updates(events)
    assert distinct_statuses(bodies) == ["PENDING_VERSION", "QUEUED", "EXECUTING", "COMPLETED"]
    progress = [b["run"]["metadata"]["progress"] for b in bodies if b["run"].get("metadata")]
    assert sorted(set(progress)) == values and progress == sorted(progress)
    assert bodies[0]["change"] == "snapshot"
    final = bodies[-1]["run"]
    assert final["output"] == "done" and final["isCompleted"] and final["isSuccess"]
    assert events[-1].event == "end"
    ids = [e.id for e in events if e.event == "update"]
    assert len(set(ids)) == len(ids) and all(ids)


async def test_reconnecting_with_last_event_id_loses_and_repeats_nothing(
    engine: Engine, start_worker: Callable[..., Any], client: httpx.AsyncClient
) -> None:
    values = [0.1, 0.2, 0.3, 0.4, 0.5]
    steps = {v: asyncio.Event() for v in values}
    handle = await stepped_task(values, steps).trigger(None)
    path = f"/realtime/v1/runs/{handle.id}"
    key = engine.secret_key()

    snapshots: set[str] = set()

    def saw(body: dict[str, Any]) -> None:
        snapshots.add("whole")
        value = (body["run"].get("metadata") or {}).get("progress")
        if value in steps:
            steps[value].set()

    async def interrupted() -> list[SseEvent]:
        """Disconnects after every 2 updates and reconnects from the last id it saw."""
        got: list[SseEvent] = []
        last: str | None = None
        while True:
            part = await collect(
                client,
                path,
                key,
                last_event_id=last,
                stop_after=2,
                on_update=lambda _: snapshots.add("broken"),
            )
            got += part
            if part and part[-1].event == "end":
                return got
            last = [e for e in got if e.event == "update"][-1].id

    whole = asyncio.create_task(collect(client, path, key, on_update=saw))
    other = asyncio.create_task(
        collect(client, path, key, on_update=lambda _: snapshots.add("other"))
    )
    broken = asyncio.create_task(interrupted())
    # Every reader has its first snapshot before the run changes: a reader that connected
    # later would rightly start from a later snapshot, and the lists would differ.
    await eventually(lambda: snapshots == {"whole", "other", "broken"})
    await start_worker()
    reference = await asyncio.wait_for(whole, 30)
    pieces = await asyncio.wait_for(broken, 30)
    # The same updates, each as of its change however it was read (live, or after a
    # reconnect), none lost and none repeated. Ids are positions: on SQLite the event ids
    # themselves; on PostgreSQL snapshots, which depend on when a reader read.
    assert bodies(pieces) == bodies(reference)
    assert len(bodies(reference)) >= 3 + len(values)  # snapshot, statuses, each progress
    second = await asyncio.wait_for(other, 30)
    assert bodies(second) == bodies(reference)
    assert_unique_ids(pieces), assert_unique_ids(reference)
    if engine.store.url.startswith("sqlite"):
        assert [e.id for e in pieces] == [e.id for e in reference]
    # Resuming from every id of the full list gives exactly the rest of it.
    listed = [e for e in reference if e.event == "update"]
    for i, event in enumerate(listed):
        assert event.id is not None
        tail = await collect(client, path, key, last_event_id=event.id)
        assert bodies(tail) == bodies(listed[i + 1 :]) and tail[-1].event == "end"


def bodies(events: list[SseEvent]) -> list[str]:
    return [e.data for e in events if e.event == "update"]


def assert_unique_ids(events: list[SseEvent]) -> None:
    ids = [e.id for e in events if e.event == "update"]
    assert len(ids) == len(set(ids)) and all(ids)


async def test_tag_and_batch_streams_over_sse(
    engine: Engine, start_worker: Callable[..., Any], client: httpx.AsyncClient
) -> None:
    @task(id="sse-item")
    async def item(payload: int) -> int:
        return payload

    key = engine.secret_key()
    batch = await item.batch_trigger([1, 2, 3])
    finished: set[str] = set()
    tagged: set[str] = set()

    async def follow_batch() -> None:
        async for event in sse_events(client, f"/realtime/v1/batches/{batch.batch_id}", token=key):
            if event.event == "update":
                run = event.json()["run"]
                if run["isCompleted"]:
                    finished.add(run["id"])
                    if len(finished) == 3:
                        return

    async def follow_tag() -> None:
        async for event in sse_events(
            client, "/realtime/v1/runs", token=key, params={"tags": "later,x", "createdAt": "1h"}
        ):
            if event.event == "update" and event.json()["run"]["status"] == "COMPLETED":
                tagged.add(event.json()["run"]["id"])
                return

    batch_task = asyncio.create_task(follow_batch())
    tag_task = asyncio.create_task(follow_tag())
    await eventually(lambda: len(engine.feed_hub._by_run) == 3 and engine.feed_hub._wide)
    later = await item.trigger(9, tags=["later"])
    await start_worker()
    await asyncio.wait_for(asyncio.gather(batch_task, tag_task), 30)
    assert finished == set(batch.runs) and tagged == {later.id}


async def test_a_comment_heartbeat_keeps_an_idle_stream_alive(engine: Engine, serve: Serve) -> None:
    @task(id="idle")
    async def idle(payload: None) -> None:
        return None

    handle = await idle.trigger(None)
    app = __import__("fastapi").FastAPI()
    app.include_router(realtime_router(SecretKeyAccess(engine), heartbeat_seconds=0.2))
    url = await serve(app)
    comments = 0
    async with httpx.AsyncClient(base_url=url) as http:
        async for event in sse_events(
            http, f"/realtime/v1/runs/{handle.id}", token=engine.secret_key()
        ):
            if event.comment is not None:
                comments += 1
                if comments == 2:
                    break
    assert comments == 2


# -- access -------------------------------------------------------------------------------------


async def test_a_handle_token_reads_its_run_and_nothing_else(
    engine: Engine, client: httpx.AsyncClient
) -> None:
    @task(id="secret-work")
    async def work(payload: None) -> None:
        return None

    mine = await work.trigger(None)
    other = await work.trigger(None)
    token = mine.public_access_token

    first = await collect(client, f"/realtime/v1/runs/{mine.id}", token, stop_after=1)
    assert updates(first)[0]["run"]["id"] == mine.id
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await collect(client, f"/realtime/v1/runs/{other.id}", token, stop_after=1)
    assert refused.value.response.status_code == 403
    for path in (f"/realtime/v1/runs/{other.id}", "/realtime/v1/runs?tags=a"):
        response = await client.get(path)
        assert response.status_code == 401, response.text
        assert "Bearer" in response.json()["error"]
    # ?token= works for browsers' EventSource, which cannot send headers.
    async with client.stream("GET", f"/realtime/v1/runs/{mine.id}?token={token}") as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
    response = await client.get(f"/realtime/v1/batches/batch_nope?token={token}")
    assert response.status_code == 404  # the batch is looked up before the scope is checked


async def test_bad_tokens_are_401_and_scopes_grant_only_what_they_name(
    engine: Engine, client: httpx.AsyncClient
) -> None:
    @task(id="scoped")
    async def scoped(payload: None) -> None:
        return None

    run = await scoped.trigger(None, tags=["team-a"])
    secret = engine.secret_key()
    now = int(time.time())
    expired = sign_token(engine.environment, [f"read:runs:{run.id}"], now - 7200, 60, secret)
    forged = sign_token(
        engine.environment,
        [f"read:runs:{run.id}"],
        now,
        600,
        "not-the-environment-key-but-long-enough-for-hs256",
    )
    elsewhere = sign_token("other-env", [f"read:runs:{run.id}"], now, 600, secret)
    for token, reason in (
        (expired, "expired"),
        (forged, "not signed"),
        (elsewhere, "another environment"),
        ("garbage", "not a valid JWT"),
    ):
        response = await client.get(
            f"/realtime/v1/runs/{run.id}", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401 and reason in response.json()["error"]
    by_tag = sign_token(engine.environment, ["read:tags:team-a"], now, 600, secret)
    first = await collect(client, f"/realtime/v1/runs/{run.id}", by_tag, stop_after=1)
    assert updates(first)[0]["run"]["tags"] == ["team-a"]
    first = await collect(
        client, "/realtime/v1/runs", by_tag, stop_after=1, params={"tags": "team-a"}
    )
    assert updates(first)[0]["run"]["id"] == run.id
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await collect(client, "/realtime/v1/runs", by_tag, params={"tags": "team-a,team-b"})
    assert refused.value.response.status_code == 403
    nothing = sign_token(engine.environment, [], now, 600, secret)
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await collect(client, f"/realtime/v1/runs/{run.id}", nothing)
    assert refused.value.response.status_code == 403
    bad = await client.get(
        f"/realtime/v1/runs/{run.id}",
        headers={"Authorization": f"Bearer {secret}", "Last-Event-ID": "not-a-position"},
    )
    assert bad.status_code == 400 and "position" in bad.json()["error"]
    missing = await client.get(
        "/realtime/v1/runs/run_missing", headers={"Authorization": f"Bearer {secret}"}
    )
    assert missing.status_code == 404
