"""The dashboard's pages and actions over HTTP, through a real uvicorn server, on both
backends: each page renders what the engine holds, each action does what it says, and a
browser that is not signed in gets nothing."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from shipyard import logger, metadata, queue, schema_task, streams, task, wait
from shipyard.engine.engine import Engine
from shipyard.testing.eventually import eventually


class Greeting(BaseModel):
    """A name and how many times to greet."""

    name: str
    times: int = 1


CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


async def sign_in(client: httpx.AsyncClient, key: str) -> str:
    """Sign ``client`` in with ``key``; the session's CSRF token."""
    form = await client.get("/dashboard/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
    assert nonce is not None
    done = await client.post(
        "/dashboard/login", data={"nonce": nonce.group(1), "key": key, "next": "/dashboard/runs"}
    )
    assert done.status_code == 303, done.text
    page = await client.get("/dashboard/runs")
    token = CSRF.search(page.text)
    assert page.status_code == 200 and token is not None
    return token.group(1)


@pytest.fixture
async def signed_in(client: httpx.AsyncClient, engine: Engine) -> str:
    """Sign the client in with the environment's secret key; the CSRF token."""
    return await sign_in(client, engine.secret_key())


def define_tasks() -> None:
    """A traced task, a schema task, a token waiter on its own queue."""

    @task(id="traced")
    async def traced(payload: dict[str, Any]) -> dict[str, Any]:
        logger.info("starting", n=payload.get("n"))
        await streams.define("default").append_many(["first chunk", {"second": 2}])
        async with logger.trace("outer"), logger.trace("inner", step=1):
            metadata.set("progress", 0.5)
        return {"doubled": 2 * int(payload.get("n", 0))}

    @schema_task(id="greet", schema=Greeting)
    async def greet(payload: Greeting) -> str:
        return f"hello {payload.name}" * payload.times

    approvals = queue(name="approvals", concurrency_limit=2)

    @task(id="approve", queue=approvals)
    async def approve(payload: dict[str, Any]) -> Any:
        token = await wait.create_token(tags=["approval"])
        metadata.set("token", token.id)
        result = await wait.for_token(token.id)
        return result.output if result.ok else "timed out"


async def test_pages_need_a_sign_in_and_posts_a_csrf_token(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    for path in ("/dashboard/runs", "/dashboard/overview", "/dashboard/tasks", "/dashboard/queues"):
        response = await client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/dashboard/login?next=")
    assert (await client.get("/dashboard/live/runs")).status_code == 401
    handle = await engine.trigger("nobody-runs-this", {}, {})
    refused = await client.post(f"/dashboard/runs/{handle.id}/cancel")
    assert refused.status_code == 401
    # A wrong key is refused; a login form posted without its nonce too.
    form = await client.get("/dashboard/login")
    assert 'name="nonce"' in form.text
    assert form.headers["set-cookie"].lower().count("httponly") == 1
    wrong = await client.post("/dashboard/login", data={"key": "nope", "nonce": "x"})
    assert wrong.status_code == 403
    csrf = await sign_in(client, engine.secret_key())
    cookie = next(c for c in client.cookies.jar if c.name == "shipyard_session")
    assert engine.secret_key() not in cookie.value
    # Signed in, a POST without the CSRF token (or with another) is refused and changes nothing.
    for data in ({}, {"csrf": "forged"}):
        refused = await client.post(f"/dashboard/runs/{handle.id}/cancel", data=data)
        assert refused.status_code == 403
    assert (await engine.retrieve_run(handle.id)).status == "PENDING_VERSION"
    done = await client.post(f"/dashboard/runs/{handle.id}/cancel", data={"csrf": csrf})
    assert done.status_code == 303
    assert (await engine.retrieve_run(handle.id)).status == "CANCELED"
    # Signing out ends the session.
    await client.post("/dashboard/logout", data={"csrf": csrf})
    assert (await client.get("/dashboard/runs")).status_code == 303


async def test_a_wrong_key_is_refused(client: httpx.AsyncClient) -> None:
    form = await client.get("/dashboard/login")
    nonce = form.text.split('name="nonce" value="')[1].split('"')[0]
    wrong = await client.post("/dashboard/login", data={"key": "x" * 40, "nonce": nonce})
    assert wrong.status_code == 401
    assert "not a secret key of any environment" in wrong.text
    assert (await client.get("/dashboard/runs")).status_code == 303


async def test_runs_list_filters_and_pages(
    client: httpx.AsyncClient, engine: Engine, signed_in: str
) -> None:
    made = [
        (await engine.trigger("listed", {"i": i}, {"tags": ["even"] if i % 2 == 0 else []})).id
        for i in range(5)
    ]
    page = (await client.get("/dashboard/runs")).text
    assert all(run_id in page for run_id in made)
    assert 'data-live="/dashboard/live/runs?after=' in page
    tagged = (await client.get("/dashboard/runs", params={"tag": "even"})).text
    assert {r for r in made if r in tagged} == {made[0], made[2], made[4]}
    by_status = (await client.get("/dashboard/runs", params={"status": "COMPLETED"})).text
    assert "No runs match." in by_status
    recent = (await client.get("/dashboard/runs", params={"period": "1h"})).text
    assert made[0] in recent
    bad = await client.get("/dashboard/runs", params={"status": "NOPE"})
    assert bad.status_code == 400 and "Unknown status" in bad.text
    # Cursor pagination: 50 a page.
    for i in range(50):
        await engine.trigger("listed", {"i": i}, {})
    first = (await client.get("/dashboard/runs")).text
    assert made[-1] not in first and "Older runs" in first
    older = first.split('href="/dashboard/runs?cursor=')[1].split('"')[0]
    second = (await client.get(f"/dashboard/runs?cursor={older}")).text
    assert all(run_id in second for run_id in made) and "data-live" not in second


async def test_run_page_shows_trace_metadata_and_acts(
    client: httpx.AsyncClient, engine: Engine, signed_in: str, start_worker: Any
) -> None:
    define_tasks()
    await start_worker()
    handle = await engine.trigger("traced", {"n": 21}, {"idempotency_key": "once"})
    await eventually(lambda: _final(engine, handle.id), timeout=30)
    page = await client.get(f"/dashboard/runs/{handle.id}")
    assert page.status_code == 200
    text = page.text
    for expected in ("COMPLETED", "doubled", "42", "Attempt 1", "outer", "inner", "starting"):
        assert expected in text, expected
    assert '<progress id="progress" max="1" value="0.5"' in text
    assert "read%3Aruns" not in text  # the live token is a JWT, not scopes in clear
    assert 'data-stream="default" data-start="0"' in text
    assert await engine.run_streams(handle.id) == {"default": 2}
    assert "/realtime/v1/runs/" + handle.id in text
    # Replay with an edited payload goes to the new run.
    replayed = await client.post(
        f"/dashboard/runs/{handle.id}/replay", data={"csrf": signed_in, "payload": '{"n": 5}'}
    )
    assert replayed.status_code == 303
    new_id = replayed.headers["location"].rsplit("/", 1)[1]
    assert (await engine.retrieve_run(new_id)).payload == {"n": 5}
    bad = await client.post(
        f"/dashboard/runs/{handle.id}/replay", data={"csrf": signed_in, "payload": "{nope"}
    )
    assert bad.status_code == 400 and "{nope" in bad.text and "JSON" in bad.text
    # Resetting the idempotency key lets the same key make a new run.
    same = await engine.trigger("traced", {"n": 1}, {"idempotency_key": "once"})
    assert same.id == handle.id
    reset = await client.post(
        f"/dashboard/runs/{handle.id}/reset-idempotency-key", data={"csrf": signed_in}
    )
    assert reset.status_code == 303 and "notice=reset" in reset.headers["location"]
    fresh = await engine.trigger("traced", {"n": 1}, {"idempotency_key": "once"})
    assert fresh.id != handle.id
    # The panels fragment the page's script refreshes.
    panels = await client.get(f"/dashboard/runs/{handle.id}/panels")
    assert panels.status_code == 200 and "Attempt 1" in panels.text and "<html" not in panels.text
    missing = await client.get("/dashboard/runs/run_nothing")
    assert missing.status_code == 404


async def _final(engine: Engine, run_id: str) -> bool:
    return (await engine.retrieve_run(run_id)).is_completed


async def test_task_test_page_prefills_and_triggers(
    client: httpx.AsyncClient, engine: Engine, signed_in: str, start_worker: Any
) -> None:
    define_tasks()
    await start_worker()
    await eventually(lambda: _registered(engine, "greet"), timeout=30)
    tasks = (await client.get("/dashboard/tasks")).text
    assert "greet" in tasks and "/dashboard/tasks/greet/test" in tasks
    test = (await client.get("/dashboard/tasks/greet/test")).text
    assert "the task&#39;s schema" in test
    assert "&#34;name&#34;: &#34;&#34;" in test  # prefilled from the schema
    done = await client.post(
        "/dashboard/tasks/greet/trigger",
        data={
            "csrf": signed_in,
            "payload": '{"name": "Ada"}',
            "tags": "a, b",
            "max_attempts": "2",
            "machine": "micro",
        },
    )
    assert done.status_code == 303
    run_id = done.headers["location"].rsplit("/", 1)[1]
    run = await engine.retrieve_run(run_id)
    assert run.payload == {"name": "Ada"} and run.tags == ("a", "b")
    assert run.max_attempts == 2 and run.machine == "micro"
    again = (await client.get("/dashboard/tasks/greet/test")).text
    assert f"the last run ({run_id})" in again
    bad = await client.post(
        "/dashboard/tasks/greet/trigger",
        data={"csrf": signed_in, "payload": "[1,", "delay": "soon"},
    )
    assert bad.status_code == 400 and "[1," in bad.text
    assert (await client.get("/dashboard/tasks/nope/test")).status_code == 404


async def _registered(engine: Engine, task_id: str) -> bool:
    return any(t.id == task_id for t in await engine.list_tasks())


async def test_queues_tokens_batches_and_overview(
    client: httpx.AsyncClient, engine: Engine, signed_in: str, start_worker: Any
) -> None:
    define_tasks()
    await start_worker()
    handle = await engine.trigger("approve", {}, {})
    run = await eventually(lambda: _token_of(engine, handle.id), timeout=30)
    token_id = run.metadata["token"]
    queues = (await client.get("/dashboard/queues")).text
    assert "approvals" in queues
    paused = await client.post("/dashboard/queues/approvals/pause", data={"csrf": signed_in})
    assert paused.status_code == 303 and (await engine.retrieve_queue("approvals")).paused
    await client.post("/dashboard/queues/approvals/resume", data={"csrf": signed_in})
    assert not (await engine.retrieve_queue("approvals")).paused
    await client.post(
        "/dashboard/queues/approvals/override", data={"csrf": signed_in, "limit": "7"}
    )
    assert (await engine.retrieve_queue("approvals")).limit_override == 7
    await client.post("/dashboard/queues/approvals/override", data={"csrf": signed_in, "limit": ""})
    assert (await engine.retrieve_queue("approvals")).limit_override is None
    nested = await client.post("/dashboard/queues/task/approve/pause", data={"csrf": signed_in})
    assert nested.status_code in (303, 404)  # a queue name with a slash reaches the engine
    tokens = (await client.get("/dashboard/tokens", params={"status": "WAITING"})).text
    assert token_id in tokens
    bad = await client.post(
        f"/dashboard/tokens/{token_id}/complete", data={"csrf": signed_in, "data": "{"}
    )
    assert bad.status_code == 400
    done = await client.post(
        f"/dashboard/tokens/{token_id}/complete",
        data={"csrf": signed_in, "data": '{"approved": true}'},
    )
    assert done.status_code == 303
    await eventually(lambda: _final(engine, handle.id), timeout=30)
    assert (await engine.retrieve_run(handle.id)).output == {"approved": True}
    batch = await engine.batch_trigger([{"task": "greet", "payload": {"name": "x"}}] * 2, {})
    batches = (await client.get("/dashboard/batches")).text
    assert batch.batch_id in batches
    one = (await client.get(f"/dashboard/batches/{batch.batch_id}")).text
    assert all(run_id in one for run_id in batch.runs)
    overview = await client.get("/dashboard/overview", params={"period": "1h"})
    assert overview.status_code == 200 and "<svg" in overview.text
    assert "Runs per status over time" in overview.text and "Queue depth" in overview.text


async def _token_of(engine: Engine, run_id: str) -> Any:
    run = await engine.retrieve_run(run_id)
    return run if "token" in run.metadata else None


async def test_live_runs_stream_new_runs_and_changes(
    client: httpx.AsyncClient, engine: Engine, signed_in: str
) -> None:
    page = (await client.get("/dashboard/runs")).text
    live = page.split('data-live="')[1].split('"')[0].replace("&amp;", "&")
    # Made after the page, before the browser connects: the page's position still has it.
    handle = await engine.trigger("live-one", {}, {})
    await engine.cancel_run(handle.id)
    seen: list[str] = []
    async with client.stream("GET", live) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                seen.append(line)
                if len(seen) >= 2:
                    break
    assert handle.id in seen[0] and '"change":"created"' in seen[0]
    assert '"CANCELED"' in seen[1]


@pytest.mark.parametrize(
    "path", ["/dashboard/static/dashboard.js", "/dashboard/static/dashboard.css"]
)
async def test_static_files_are_served(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200 and len(response.text) > 1000
    assert (await client.get("/dashboard/static/../app.py")).status_code == 404


async def test_open_dashboard_needs_no_login_but_still_a_csrf_token(
    engine: Engine, serve: Any
) -> None:
    from shipyard.server.app import create_app

    url = await serve(create_app(engine, dashboard_open=True))
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        page = await http.get("/dashboard/runs")
        assert page.status_code == 200 and "shipyard_session" in page.headers["set-cookie"]
        handle = await engine.trigger("nobody-runs-this", {}, {})
        refused = await http.post(f"/dashboard/runs/{handle.id}/cancel", data={})
        assert refused.status_code == 403
        csrf = page.text.split('name="csrf-token" content="')[1].split('"')[0]
        done = await http.post(
            f"/dashboard/runs/{handle.id}/cancel", headers={"X-CSRF-Token": csrf}
        )
        assert done.status_code == 303
    assert (await engine.retrieve_run(handle.id)).status == "CANCELED"


async def test_a_failed_run_shows_its_error_and_each_attempt(
    client: httpx.AsyncClient, engine: Engine, signed_in: str, start_worker: Any
) -> None:
    @task(id="always-fails", retry={"max_attempts": 2, "min_timeout_ms": 10, "max_timeout_ms": 20})
    async def always_fails(payload: dict[str, Any]) -> None:
        raise ValueError(f"bad input <{payload['n']}>")

    await start_worker()
    handle = await engine.trigger("always-fails", {"n": 7}, {})
    await eventually(lambda: _final(engine, handle.id), timeout=30)
    text = (await client.get(f"/dashboard/runs/{handle.id}")).text
    assert "FAILED" in text and "<strong>ValueError</strong>: bad input &lt;7&gt;" in text
    assert text.count("ValueError: bad input &lt;7&gt;") >= 2  # each attempt's error
    assert "Attempt 1" in text and "Attempt 2" in text
    assert "Cancel run" not in text  # a final run cannot be canceled
