"""The run and task routes over HTTP (in-process ASGI): trigger, batch, retrieve, list,
cancel, replay, reschedule, metadata, tags, events, tasks and idempotency keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from http_support import bearer

from shipyard import task
from shipyard.engine.engine import Engine
from shipyard.schemas.runs import RetrieveRunResponse


async def test_trigger_then_retrieve_the_completed_run(
    engine: Engine,
    start_worker: Callable[..., Any],
    api: httpx.AsyncClient,
    anon: httpx.AsyncClient,
) -> None:
    @task(id="echo")
    async def echo(payload: Any) -> Any:
        return {"echo": payload}

    await start_worker()
    response = await api.post(
        "/api/v1/tasks/echo/trigger",
        json={"payload": {"a": 1}, "options": {"tags": ["t1"], "metadata": {"m": 1}}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"].startswith("run_") and body["isCached"] is False
    jwt = response.headers["x-trigger-jwt"]
    await engine.wait_for_final(body["id"], timeout=10)

    # The handle token reads this run (and only this one).
    got = await anon.get(f"/api/v3/runs/{body['id']}", headers=bearer(jwt))
    assert got.status_code == 200, got.text
    run = got.json()
    RetrieveRunResponse.model_validate(run)
    assert run["status"] == "COMPLETED" and run["isSuccess"] is True
    assert run["output"] == {"echo": {"a": 1}} and run["payload"] == {"a": 1}
    assert run["tags"] == ["t1"] and run["metadata"] == {"m": 1}
    assert run["attempts"][0]["status"] == "COMPLETED" and run["attemptCount"] == 1
    assert "error" not in run  # absent, never null


async def test_retrieve_relates_a_run_to_its_root_parent_and_children(
    engine: Engine, start_worker: Callable[..., Any], api: httpx.AsyncClient
) -> None:
    @task(id="leaf")
    async def leaf(payload: Any) -> Any:
        return payload

    @task(id="middle")
    async def middle(payload: Any) -> Any:
        return (await leaf.trigger_and_wait(payload)).unwrap()

    @task(id="top")
    async def top(payload: Any) -> Any:
        first = await middle.trigger_and_wait(1)
        second = await leaf.trigger_and_wait(2)
        return [first.unwrap(), second.unwrap()]

    await start_worker()
    handle = await top.trigger(None)
    await engine.wait_for_final(handle.id, timeout=20)

    top_run = (await api.get(f"/api/v3/runs/{handle.id}")).json()
    related = top_run["relatedRuns"]
    children = {c["taskIdentifier"]: c["id"] for c in related["children"]}
    assert set(children) == {"middle", "leaf"}
    assert all(c["status"] == "COMPLETED" for c in related["children"])
    # A root with children is its own root; it has no parent.
    assert related["root"]["id"] == handle.id and "parent" not in related

    middle_run = (await api.get(f"/api/v3/runs/{children['middle']}")).json()
    related = middle_run["relatedRuns"]
    assert related["parent"]["id"] == related["root"]["id"] == handle.id
    [grandchild] = related["children"]
    leaf_run = (await api.get(f"/api/v3/runs/{grandchild['id']}")).json()
    related = leaf_run["relatedRuns"]
    assert related["parent"]["id"] == children["middle"] and related["root"]["id"] == handle.id
    assert "children" not in related  # a run without children leaves the list out


async def test_an_idempotent_trigger_is_cached_and_a_payload_type_is_decoded(
    api: httpx.AsyncClient,
) -> None:
    first = await api.post(
        "/api/v1/tasks/later/trigger",
        json={
            "payload": '{"json":{"n":"10"},"meta":{"values":{"n":["bigint"]}}}',
            "options": {"payloadType": "application/super+json", "idempotencyKey": "k1"},
        },
    )
    second = await api.post(
        "/api/v1/tasks/later/trigger",
        json={"payload": None, "options": {"idempotencyKey": "k1"}},
    )
    assert first.status_code == second.status_code == 200
    assert second.json() == {"id": first.json()["id"], "isCached": True}
    run = (await api.get(f"/api/v3/runs/{first.json()['id']}")).json()
    assert run["payload"] == {"n": 10}
    # No live worker has the task: it waits for a version with it (not a 404).
    assert run["status"] == "PENDING_VERSION"


async def test_a_retried_trigger_with_the_same_request_id_creates_one_run(
    engine: Engine, api: httpx.AsyncClient
) -> None:
    headers = {"x-trigger-request-idempotency-key": "req-1"}
    first = await api.post("/api/v1/tasks/t/trigger", json={"payload": 1}, headers=headers)
    again = await api.post("/api/v1/tasks/t/trigger", json={"payload": 1}, headers=headers)
    other = await api.post("/api/v1/tasks/t/trigger", json={"payload": 1})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["x-trigger-jwt"]  # a fresh token for the same run
    assert other.json()["id"] != first.json()["id"]
    page = await engine.list_runs(task_ids=["t"])
    assert len(page.items) == 2


async def test_bad_trigger_input_is_400_naming_the_field(api: httpx.AsyncClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"payload": 1, "options": {"ttl": True}}, "options.ttl"),
        ({"payload": 1, "options": {"maxAttempts": "3"}}, "options.maxAttempts"),
        ({"payload": 1, "options": {"delay": "soon"}}, "delay"),
        ({"payload": "x", "options": {"payloadType": "application/store"}}, "payloadType"),
        ({"payload": 1, "options": {"tags": ["x" * 200]}}, "options.tags"),
    ]
    for body, field in cases:
        response = await api.post("/api/v1/tasks/t/trigger", json=body)
        assert response.status_code == 400, (body, response.text)
        assert field in response.json()["error"], response.text
        assert response.headers["x-should-retry"] == "false"
    not_json = await api.post(
        "/api/v1/tasks/t/trigger", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["error"]
    deep = "[" * 200 + "]" * 200
    too_deep = await api.post(
        "/api/v1/tasks/t/trigger",
        content=f'{{"payload": {deep}}}'.encode(),
        headers={"content-type": "application/json"},
    )
    assert too_deep.status_code == 400 and "deeper" in too_deep.json()["error"]
    nested = "[" * 70 + "]" * 70  # decodes, but a payload is at most 64 levels deep
    payload_deep = await api.post(
        "/api/v1/tasks/t/trigger",
        content=f'{{"payload": {nested}}}'.encode(),
        headers={"content-type": "application/json"},
    )
    assert payload_deep.status_code == 400 and "64" in payload_deep.json()["error"]
    missing = await api.post("/api/v1/tasks/t/trigger")
    assert missing.status_code == 400 and "body" in missing.json()["error"]


async def test_batch_trigger_and_retrieve(api: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    items = [{"task": "a", "payload": i} for i in range(3)] + [{"task": "b", "payload": None}]
    response = await api.post("/api/v1/tasks/batch", json={"items": items})
    assert response.status_code == 202, response.text
    body = response.json()
    assert [r["taskIdentifier"] for r in body["runs"]] == ["a", "a", "a", "b"]
    jwt = response.headers["x-trigger-jwt"]
    for path in (f"/api/v1/batches/{body['id']}", f"/api/v2/batches/{body['id']}"):
        got = await anon.get(path, headers=bearer(jwt))
        assert got.status_code == 200, got.text
        assert got.json()["runs"] == [r["id"] for r in body["runs"]]
        assert got.json()["runCount"] == 4 and got.json()["status"] == "COMPLETED"
    # The batch token reads the batch's runs too.
    run = await anon.get(f"/api/v3/runs/{body['runs'][0]['id']}", headers=bearer(jwt))
    assert run.status_code == 200
    listed = await api.get("/api/v1/runs", params={"filter[batch]": body["id"]})
    assert {r["id"] for r in listed.json()["data"]} == {r["id"] for r in body["runs"]}
    empty = await api.post("/api/v1/tasks/batch", json={"items": []})
    assert empty.status_code == 400 and "items" in empty.json()["error"]
    too_many = await api.post("/api/v1/tasks/batch", json={"items": [{"task": "a"}] * 1001})
    assert too_many.status_code == 400 and "items" in too_many.json()["error"]
    missing = await api.get("/api/v1/batches/batch_nope")
    assert missing.status_code == 404


async def test_list_runs_filters_and_pages(api: httpx.AsyncClient) -> None:
    ids = []
    for i in range(5):
        tags = ["even"] if i % 2 == 0 else ["odd"]
        r = await api.post(
            "/api/v1/tasks/lister/trigger", json={"payload": i, "options": {"tags": tags}}
        )
        ids.append(r.json()["id"])
    page = await api.get("/api/v1/runs", params={"page[size]": "2"})
    assert page.status_code == 200
    first = page.json()
    assert [r["id"] for r in first["data"]] == ids[::-1][:2]  # newest first
    assert first["data"][0]["env"]["name"] == "development"
    following = await api.get(
        "/api/v1/runs", params={"page[size]": "2", "page[after]": first["pagination"]["next"]}
    )
    assert [r["id"] for r in following.json()["data"]] == ids[::-1][2:4]
    even = await api.get("/api/v1/runs", params={"filter[tag]": "even"})
    assert len(even.json()["data"]) == 3
    by_task = await api.get(
        "/api/v1/runs", params={"filter[taskIdentifier]": "nobody", "filter[status]": "QUEUED"}
    )
    assert by_task.json()["data"] == []
    for params, field in (
        ({"filter[status]": "DONE"}, "filter[status]"),
        ({"page[size]": "500"}, "page[size]"),
        ({"filter[version]": "1"}, "filter[version]"),
        ({"nope": "1"}, "nope"),
        ({"filter[createdAt][from]": "yesterday"}, "filter[createdAt][from]"),
    ):
        bad = await api.get("/api/v1/runs", params=params)
        assert bad.status_code == 400 and field in bad.json()["error"], bad.text


async def test_cancel_replay_reschedule_tags_metadata_and_events(api: httpx.AsyncClient) -> None:
    made = await api.post(
        "/api/v1/tasks/steer/trigger", json={"payload": {"x": 1}, "options": {"delay": "1h"}}
    )
    run_id = made.json()["id"]
    moved = await api.post(f"/api/v1/runs/{run_id}/reschedule", json={"delay": "2h"})
    assert moved.status_code == 200 and moved.json()["status"] == "DELAYED"
    assert moved.json()["delayedUntil"] > made.json().get("delayedUntil", "")
    bad_delay = await api.post(f"/api/v1/runs/{run_id}/reschedule", json={"delay": "later"})
    assert bad_delay.status_code == 400

    tagged = await api.post(f"/api/v1/runs/{run_id}/tags", json={"tags": ["a", "b"]})
    assert tagged.status_code == 200 and "a, b" in tagged.json()["message"]
    meta = await api.put(
        f"/api/v1/runs/{run_id}/metadata",
        json={
            "metadata": {"count": 1},
            "operations": [
                {"type": "increment", "key": "count", "value": 2},
                {"type": "append", "key": "log", "value": "x"},
            ],
        },
    )
    assert meta.status_code == 200, meta.text
    assert meta.json() == {"metadata": {"count": 3, "log": ["x"]}}
    bad_op = await api.put(
        f"/api/v1/runs/{run_id}/metadata", json={"operations": [{"type": "explode"}]}
    )
    assert bad_op.status_code == 400 and "operations" in bad_op.json()["error"]

    replay = await api.post(f"/api/v1/runs/{run_id}/replay")
    assert replay.status_code == 200 and replay.json()["id"] != run_id
    replayed = (await api.get(f"/api/v3/runs/{replay.json()['id']}")).json()
    assert replayed["payload"] == {"x": 1} and set(replayed["tags"]) == {"a", "b"}
    override = await api.post(f"/api/v1/runs/{run_id}/replay", json={"payload": {"x": 2}})
    assert (await api.get(f"/api/v3/runs/{override.json()['id']}")).json()["payload"] == {"x": 2}
    unsupported = await api.post(f"/api/v1/runs/{run_id}/replay", json={"machine": "micro"})
    assert unsupported.status_code == 400 and "machine" in unsupported.json()["error"]

    canceled = await api.post(f"/api/v2/runs/{run_id}/cancel")
    assert canceled.status_code == 200 and canceled.json() == {"id": run_id}
    again = await api.post(f"/api/v2/runs/{run_id}/cancel")  # a final run stays as it is
    assert again.status_code == 200
    not_delayed = await api.post(f"/api/v1/runs/{run_id}/reschedule", json={"delay": "1h"})
    assert not_delayed.status_code == 400 and "DELAYED" in not_delayed.json()["error"]

    events = await api.get(f"/api/v1/runs/{run_id}/events", params={"page[size]": "2"})
    assert events.status_code == 200
    page = events.json()
    assert len(page["events"]) == 2 and page["pagination"]["next"]
    rest = await api.get(
        f"/api/v1/runs/{run_id}/events", params={"page[after]": page["pagination"]["next"]}
    )
    kinds = [e["kind"] for e in page["events"] + rest.json()["events"]]
    assert {"created", "tag", "metadata", "status"} <= set(kinds)
    assert "next" not in rest.json()["pagination"]
    bad_page = await api.get(f"/api/v1/runs/{run_id}/events", params={"page[after]": "x"})
    assert bad_page.status_code == 400


async def test_unknown_runs_are_404(api: httpx.AsyncClient) -> None:
    for method, path, body in (
        ("GET", "/api/v3/runs/run_nope", None),
        ("POST", "/api/v2/runs/run_nope/cancel", None),
        ("POST", "/api/v1/runs/run_nope/replay", None),
        ("POST", "/api/v1/runs/run_nope/reschedule", {"delay": "1m"}),
        ("PUT", "/api/v1/runs/run_nope/metadata", {"metadata": {}}),
        ("POST", "/api/v1/runs/run_nope/tags", {"tags": "a"}),
        ("GET", "/api/v1/runs/run_nope/events", None),
    ):
        response = await api.request(method, path, json=body)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["code"] == "RUN_NOT_FOUND"
    route = await api.get("/api/v1/nothing-here")
    assert route.status_code == 404 and "No route" in route.json()["error"]
    method = await api.delete("/api/v1/runs")
    assert method.status_code == 405 and "DELETE" in method.json()["error"]


async def test_tasks_list_and_idempotency_key_reset(
    engine: Engine, start_worker: Callable[..., Any], api: httpx.AsyncClient
) -> None:
    @task(id="listed", max_duration=30, ttl="5m")
    async def listed(payload: Any) -> None:
        return None

    await start_worker()
    tasks = await api.get("/api/v1/tasks")
    assert tasks.status_code == 200
    (item,) = [t for t in tasks.json()["data"] if t["id"] == "listed"]
    assert item["queue"] == "task/listed" and item["ttl"] == "5m" and item["updatedAt"]

    gone = await api.post("/api/v1/idempotencyKeys/k9/reset", json={"taskIdentifier": "listed"})
    assert gone.status_code == 404
    first = await api.post(
        "/api/v1/tasks/listed/trigger", json={"options": {"idempotencyKey": "k9"}}
    )
    run = await engine.retrieve_run(first.json()["id"])
    assert run.idempotency_key is not None
    reset = await api.post(
        f"/api/v1/idempotencyKeys/{run.idempotency_key}/reset",
        json={"taskIdentifier": "listed"},
    )
    assert reset.status_code == 200 and reset.json() == {"id": run.idempotency_key}
    fresh = await api.post(
        "/api/v1/tasks/listed/trigger", json={"options": {"idempotencyKey": "k9"}}
    )
    assert fresh.json()["isCached"] is False and fresh.json()["id"] != first.json()["id"]
    no_task = await api.post("/api/v1/idempotencyKeys/k/reset", json={})
    assert no_task.status_code == 400 and "taskIdentifier" in no_task.json()["error"]


async def test_a_hashed_key_from_an_sdk_matches_the_python_sdks_raw_key(
    engine: Engine, api: httpx.AsyncClient
) -> None:
    import hashlib

    local = await engine.trigger("agree", 1, {"idempotency_key": "k1"})
    hashed = hashlib.sha256(b"k1").hexdigest()  # what Trigger.dev's SDK sends for "k1"
    remote = await api.post(
        "/api/v1/tasks/agree/trigger", json={"options": {"idempotencyKey": hashed}}
    )
    raw = await api.post("/api/v1/tasks/agree/trigger", json={"options": {"idempotencyKey": "k1"}})
    assert remote.json() == raw.json() == {"id": local.id, "isCached": True}
