"""Queues and wait tokens over HTTP (in-process ASGI)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from shipyard import queue, task, wait
from shipyard.engine.engine import Engine
from shipyard.schemas.queues import queue_friendly_id


async def test_queues_list_retrieve_pause_override_reset(
    start_worker: Callable[..., Any], api: httpx.AsyncClient
) -> None:
    emails = queue(name="emails", concurrency_limit=3)

    @task(id="send", queue=emails)
    async def send(payload: Any) -> None:
        return None

    @task(id="solo")
    async def solo(payload: Any) -> None:
        return None

    await start_worker()
    listed = await api.get("/api/v1/queues", params={"perPage": "1"})
    assert listed.status_code == 200, listed.text
    assert listed.json()["pagination"]["count"] >= 2 and len(listed.json()["data"]) == 1
    everything = (await api.get("/api/v1/queues")).json()["data"]
    names = {q["name"]: q for q in everything}
    assert names["emails"]["type"] == "custom" and names["emails"]["concurrencyLimit"] == 3
    assert names["solo"]["type"] == "task"  # task/solo, reported by its task id

    by_id = await api.get(f"/api/v1/queues/{queue_friendly_id('emails')}")
    assert by_id.status_code == 200 and by_id.json()["name"] == "emails"
    by_task = await api.get("/api/v1/queues/solo", params={"type": "task"})
    assert by_task.status_code == 200 and by_task.json()["id"] == queue_friendly_id("task/solo")
    escaped = await api.get("/api/v1/queues/task%252Fsolo", params={"type": "custom"})
    assert escaped.status_code == 200 and escaped.json()["name"] == "solo"

    paused = await api.post(
        "/api/v1/queues/emails/pause", json={"type": "custom", "action": "pause"}
    )
    assert paused.status_code == 200 and paused.json()["paused"] is True
    resumed = await api.post(
        "/api/v1/queues/emails/pause", json={"type": "custom", "action": "resume"}
    )
    assert resumed.json()["paused"] is False
    override = await api.post(
        "/api/v1/queues/emails/concurrency/override",
        json={"type": "custom", "concurrencyLimit": 7},
    )
    assert override.json()["concurrencyLimit"] == 7
    assert override.json()["concurrency"] == {
        "current": 7,
        "base": 3,
        "override": 7,
        "overriddenAt": None,
        "overriddenBy": None,
    }
    reset = await api.post("/api/v1/queues/emails/concurrency/reset", json={"type": "custom"})
    assert reset.json()["concurrencyLimit"] == 3

    for method, path, body, status in (
        ("GET", "/api/v1/queues/queue_nope", None, 404),
        ("GET", "/api/v1/queues/nope?type=custom", None, 404),
        ("GET", "/api/v1/queues/emails?type=weird", None, 400),
        ("POST", "/api/v1/queues/emails/pause", {"type": "custom", "action": "stop"}, 400),
        (
            "POST",
            "/api/v1/queues/emails/concurrency/override",
            {"type": "custom", "concurrencyLimit": -1},
            400,
        ),
        ("GET", "/api/v1/queues?perPage=0", None, 400),
    ):
        response = await api.request(method, path, json=body)
        assert response.status_code == status, (path, response.text)


async def test_wait_tokens_create_list_retrieve_complete(
    engine: Engine, start_worker: Callable[..., Any], api: httpx.AsyncClient
) -> None:
    @task(id="approval")
    async def approval(payload: Any) -> Any:
        result = await wait.for_token(payload["token"])
        return result.output

    await start_worker()
    made = await api.post(
        "/api/v1/waitpoints/tokens", json={"tags": ["x"], "idempotencyKey": "once"}
    )
    assert made.status_code == 200, made.text
    token = made.json()
    assert token["isCached"] is False and token["url"].startswith("http://")
    assert made.headers["x-trigger-jwt"]
    again = await api.post("/api/v1/waitpoints/tokens", json={"idempotencyKey": "once"})
    assert again.json()["id"] == token["id"] and again.json()["isCached"] is True
    plain = await api.post("/api/v1/waitpoints/tokens")  # no body at all: a plain token
    assert plain.status_code == 200

    run = await engine.trigger("approval", {"token": token["id"]}, {})
    listed = await api.get("/api/v1/waitpoints/tokens", params={"filter[tags]": "x"})
    assert [t["id"] for t in listed.json()["data"]] == [token["id"]]
    waiting = await api.get(f"/api/v1/waitpoints/tokens/{token['id']}")
    assert waiting.json()["status"] == "WAITING" and "output" not in waiting.json()

    wrong = await api.post(
        f"/api/v1/waitpoints/tokens/{token['id']}/complete", json={"output": {"ok": True}}
    )
    assert wrong.status_code == 422 and "data" in wrong.json()["error"]
    done = await api.post(
        f"/api/v1/waitpoints/tokens/{token['id']}/complete", json={"data": {"ok": True}}
    )
    assert done.status_code == 200 and done.json() == {"success": True}
    twice = await api.post(
        f"/api/v1/waitpoints/tokens/{token['id']}/complete", json={"data": {"ok": False}}
    )
    assert twice.status_code == 200
    final = await engine.wait_for_final(run.id, timeout=10)
    assert json.loads(final.output or "null") == {"ok": True}  # the first data is kept
    got = (await api.get(f"/api/v1/waitpoints/tokens/{token['id']}")).json()
    assert got["status"] == "COMPLETED" and json.loads(got["output"]) == {"ok": True}

    for method, path, body, status in (
        ("GET", "/api/v1/waitpoints/tokens/waitpoint_nope", None, 404),
        ("POST", "/api/v1/waitpoints/tokens/waitpoint_nope/complete", {"data": 1}, 404),
        ("GET", "/api/v1/waitpoints/tokens?filter[status]=DONE", None, 400),
        ("POST", "/api/v1/waitpoints/tokens", {"timeout": "whenever"}, 400),
        ("POST", "/api/v1/waitpoints/tokens", {"tags": ["t" * 200]}, 400),
    ):
        response = await api.request(method, path, json=body)
        assert response.status_code == status, (path, response.text)
