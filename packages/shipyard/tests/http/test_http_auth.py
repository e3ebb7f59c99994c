"""Who may call what: every route of the app's route table without a key, with a wrong key,
with a public access token out of its scopes; tokens (expired, single-use, scoped); secret
keys of other environments; CORS preflights."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from http_support import bearer, engine_with

from shipyard.engine.auth import sign_token
from shipyard.engine.engine import Engine
from shipyard.server.app import create_app
from shipyard.server.guard import api_routes

# Every route with a request that passes validation, so only access decides the answer.
# {run}, {batch}, {token} are replaced by real ids; the rest by names.
ROUTES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/tasks/{task_id}/trigger"): {"json": {"payload": 1}},
    ("POST", "/api/v1/tasks/batch"): {"json": {"items": [{"task": "t", "payload": 1}]}},
    ("GET", "/api/v1/tasks"): {},
    ("POST", "/api/v1/idempotencyKeys/{key}/reset"): {"json": {"taskIdentifier": "t"}},
    ("GET", "/api/v3/runs/{run_id}"): {},
    ("GET", "/api/v1/runs"): {},
    ("POST", "/api/v2/runs/{run_id}/cancel"): {},
    ("POST", "/api/v1/runs/{run_id}/replay"): {},
    ("POST", "/api/v1/runs/{run_id}/reschedule"): {"json": {"delay": "1m"}},
    ("PUT", "/api/v1/runs/{run_id}/metadata"): {"json": {"metadata": {}}},
    ("POST", "/api/v1/runs/{run_id}/tags"): {"json": {"tags": "a"}},
    ("GET", "/api/v1/runs/{run_id}/events"): {},
    ("GET", "/api/v1/batches/{batch_id}"): {},
    ("GET", "/api/v2/batches/{batch_id}"): {},
    ("GET", "/api/v1/queues"): {},
    ("GET", "/api/v1/queues/{queue}"): {"params": {"type": "custom"}},
    ("POST", "/api/v1/queues/{queue}/pause"): {"json": {"type": "custom", "action": "pause"}},
    ("POST", "/api/v1/queues/{queue}/concurrency/override"): {
        "json": {"type": "custom", "concurrencyLimit": 1}
    },
    ("POST", "/api/v1/queues/{queue}/concurrency/reset"): {"json": {"type": "custom"}},
    ("POST", "/api/v1/schedules"): {
        "json": {"task": "t", "cron": "0 0 * * *", "deduplicationKey": "k"}
    },
    ("GET", "/api/v1/schedules"): {},
    ("GET", "/api/v1/schedules/{schedule_id}"): {},
    ("PUT", "/api/v1/schedules/{schedule_id}"): {"json": {"cron": "0 0 * * *"}},
    ("DELETE", "/api/v1/schedules/{schedule_id}"): {},
    ("POST", "/api/v1/schedules/{schedule_id}/activate"): {},
    ("POST", "/api/v1/schedules/{schedule_id}/deactivate"): {},
    ("GET", "/api/v1/timezones"): {},
    ("POST", "/api/v1/waitpoints/tokens"): {"json": {}},
    ("GET", "/api/v1/waitpoints/tokens"): {},
    ("GET", "/api/v1/waitpoints/tokens/{token_id}"): {},
    ("POST", "/api/v1/waitpoints/tokens/{token_id}/complete"): {"json": {"data": 1}},
    ("POST", "/api/v1/auth/jwt"): {"json": {}},
    ("GET", "/realtime/v1/runs/{run_id}"): {},
    ("GET", "/realtime/v1/runs"): {"params": {"tags": "x"}},
    ("GET", "/realtime/v1/batches/{batch_id}"): {},
    ("GET", "/realtime/v1/streams/{run_id}/{stream_id}"): {},
    ("POST", "/realtime/v1/streams/{run_id}/input/{stream_id}"): {"json": {"data": 1}},
}
PUBLIC = {
    ("POST", "/api/v1/tasks/{task_id}/trigger"),
    ("POST", "/api/v1/tasks/batch"),
    ("GET", "/api/v3/runs/{run_id}"),
    ("GET", "/api/v1/batches/{batch_id}"),
    ("GET", "/api/v2/batches/{batch_id}"),
    ("GET", "/api/v1/waitpoints/tokens/{token_id}"),
    ("POST", "/api/v1/waitpoints/tokens/{token_id}/complete"),
    *((m, p) for m, p in ROUTES if p.startswith("/realtime/")),
}
WITHOUT_KEY = {
    ("GET", "/healthz"),
    ("POST", "/api/v1/waitpoints/tokens/{token_id}/callback/{signature}"),
}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    found = set()
    for route in api_routes(app.routes):
        if route.path.startswith("/dashboard"):
            continue  # signed-in browser sessions, not keys: tests/dashboard covers them
        found |= {(method, route.path) for method in route.methods}
    return found


async def ids(engine: Engine) -> dict[str, str]:
    run = await engine.trigger("t", 1, {"queue": "q"})
    batch = await engine.batch_trigger([{"task": "t", "payload": 1}], {})
    token = await engine.create_token()
    return {
        "task_id": "t",
        "key": "k",
        "run_id": run.id,
        "batch_id": batch.batch_id,
        "queue": "q",
        "token_id": token.id,
        "stream_id": "s",
        "schedule_id": "sched_x",
    }


def fill(path: str, values: dict[str, str]) -> str:
    return path.format(**values)


def test_the_table_covers_every_route_of_the_app(app: FastAPI) -> None:
    assert app_routes(app) == set(ROUTES) | WITHOUT_KEY


async def test_every_route_refuses_a_missing_or_wrong_key(
    engine: Engine, anon: httpx.AsyncClient
) -> None:
    values = await ids(engine)
    for (method, path), request in ROUTES.items():
        url = fill(path, values)
        missing = await anon.request(method, url, **request)
        assert missing.status_code == 401, (method, path, missing.text)
        assert "Missing credentials" in missing.json()["error"]
        wrong = await anon.request(method, url, headers=bearer("sk_dev_" + "x" * 40), **request)
        assert wrong.status_code == 401, (method, path, wrong.text)
        assert wrong.json()["code"] == "UNAUTHORIZED"


async def test_a_public_token_out_of_scope_is_403_everywhere(
    engine: Engine, anon: httpx.AsyncClient
) -> None:
    values = await ids(engine)
    token = engine.public_token(["read:runs:run_other", "write:tasks:other"])
    for (method, path), request in ROUTES.items():
        response = await anon.request(method, fill(path, values), headers=bearer(token), **request)
        assert response.status_code == 403, (method, path, response.text)
        expected = "cannot" if (method, path) in PUBLIC else "needs a secret key"
        assert expected in response.json()["error"], (method, path, response.text)


async def test_public_tokens_do_what_their_scopes_say(
    engine: Engine, api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    values = await ids(engine)
    run_path = fill("/api/v3/runs/{run_id}", values)
    made = await api.post(
        "/api/v1/auth/jwt", json={"claims": {"scopes": ["read:runs"]}, "expirationTime": "1m"}
    )
    assert made.status_code == 200, made.text
    reader = made.json()["token"]
    assert (await anon.get(run_path, headers=bearer(reader))).status_code == 200
    # read:runs does not trigger, and no token lists runs.
    refused = await anon.post("/api/v1/tasks/t/trigger", json={}, headers=bearer(reader))
    assert refused.status_code == 403 and "write:tasks:t" in refused.json()["error"]
    assert (await anon.get("/api/v1/runs", headers=bearer(reader))).status_code == 403

    nothing = (await api.post("/api/v1/auth/jwt", json={})).json()["token"]
    assert (await anon.get(run_path, headers=bearer(nothing))).status_code == 403

    now = int(time.time())
    expired = sign_token(engine.environment, ["read:runs"], now - 3600, 60, engine.secret_key())
    late = await anon.get(run_path, headers=bearer(expired))
    assert late.status_code == 401 and "expired" in late.json()["error"]
    forged = sign_token(engine.environment, ["read:runs"], now, 60, "x" * 40)
    bad = await anon.get(run_path, headers=bearer(forged))
    assert bad.status_code == 401 and "not signed" in bad.json()["error"]

    # A wait token's token completes it (and only it).
    token = await api.post("/api/v1/waitpoints/tokens", json={"tags": ["x"]})
    completer = token.headers["x-trigger-jwt"]
    done = await anon.post(
        f"/api/v1/waitpoints/tokens/{token.json()['id']}/complete",
        json={"data": {"ok": True}},
        headers=bearer(completer),
    )
    assert done.status_code == 200
    other = await anon.post(
        f"/api/v1/waitpoints/tokens/{values['token_id']}/complete",
        json={"data": 1},
        headers=bearer(completer),
    )
    assert other.status_code == 403

    for body, field in (
        ({"claims": {"scopes": ["read:everything"]}}, "scope"),
        ({"expirationTime": "soon"}, "expirationTime"),
        ({"expirationTime": now - 10}, "expirationTime"),
    ):
        invalid = await api.post("/api/v1/auth/jwt", json=body)
        assert invalid.status_code == 400 and field in invalid.json()["error"], invalid.text


async def test_a_single_use_trigger_token_triggers_once(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    made = await api.post(
        "/api/v1/auth/jwt",
        json={"claims": {"scopes": ["write:tasks:welcome"]}, "oneTimeUse": True},
    )
    token = made.json()["token"]
    first = await anon.post(
        "/api/v1/tasks/welcome/trigger", json={"payload": 1}, headers=bearer(token)
    )
    assert first.status_code == 200, first.text
    # The run's own token reads it.
    run = await anon.get(
        f"/api/v3/runs/{first.json()['id']}", headers=bearer(first.headers["x-trigger-jwt"])
    )
    assert run.status_code == 200
    second = await anon.post(
        "/api/v1/tasks/welcome/trigger", json={"payload": 1}, headers=bearer(token)
    )
    assert second.status_code == 403 and "already been used" in second.json()["error"]
    many = await api.post("/api/v1/auth/jwt", json={"claims": {"scopes": ["write:tasks:welcome"]}})
    for _ in range(2):
        again = await anon.post(
            "/api/v1/tasks/welcome/trigger", json={}, headers=bearer(many.json()["token"])
        )
        assert again.status_code == 200


async def test_a_key_acts_in_its_own_environment_only(
    engine: Engine, api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    dev_run = await engine.trigger("t", 1, {})
    created = await engine.create_key("production", name="ci")
    assert created.key.startswith("sk_prod_")
    prod = bearer(created.key)
    # Another environment's run does not exist for this key.
    assert (await anon.get(f"/api/v3/runs/{dev_run.id}", headers=prod)).status_code == 404
    made = await anon.post("/api/v1/tasks/t/trigger", json={"payload": 2}, headers=prod)
    assert made.status_code == 200
    prod_id = made.json()["id"]
    assert (await api.get(f"/api/v3/runs/{prod_id}")).status_code == 404
    listed = await anon.get("/api/v1/runs", headers=prod)
    assert [r["id"] for r in listed.json()["data"]] == [prod_id]
    assert listed.json()["data"][0]["env"]["name"] == "production"
    # Its public tokens are signed with production's key and read production's runs.
    jwt = made.headers["x-trigger-jwt"]
    assert (await anon.get(f"/api/v3/runs/{prod_id}", headers=bearer(jwt))).status_code == 200
    other = await anon.get(f"/api/v3/runs/{dev_run.id}", headers=bearer(jwt))
    assert other.status_code == 404
    dev_token = engine.public_token([f"read:runs:{prod_id}"])
    assert (await anon.get(f"/api/v3/runs/{prod_id}", headers=bearer(dev_token))).status_code == 404

    # A revoked key is refused.
    spare = await engine.create_key("production")
    await engine.revoke_key(spare.info.id)
    revoked = await anon.get("/api/v1/runs", headers=bearer(spare.key))
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]
    # A token for an environment this server has no key for.
    stranger = sign_token("staging", ["read:runs"], int(time.time()), 60, "y" * 40)
    unknown = await anon.get("/api/v1/batches/b", headers=bearer(stranger))
    assert unknown.status_code == 401 and "another environment" in unknown.json()["error"]


@pytest.mark.parametrize("origins", [["https://app.example.com"], ["*"]])
async def test_cors_preflight_only_on_public_routes(engine: Engine, origins: list[str]) -> None:
    app = create_app(engine_with(engine, server_cors_origins=origins))
    values = await ids(engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        for method, path in ROUTES:
            response = await client.options(
                fill(path, values),
                headers={
                    "Origin": "https://app.example.com",
                    "Access-Control-Request-Method": method,
                    "Access-Control-Request-Headers": "authorization, content-type",
                },
            )
            if (method, path) in PUBLIC:
                assert response.status_code == 204, (method, path, response.text)
                allowed = response.headers["access-control-allow-origin"]
                assert allowed in ("https://app.example.com", "*")
                assert "authorization" in response.headers["access-control-allow-headers"]
            else:
                assert response.status_code == 403, (method, path)
                assert "access-control-allow-origin" not in response.headers
        other = await client.options(
            fill("/api/v3/runs/{run_id}", values),
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert other.status_code == (204 if origins == ["*"] else 403)
        token = engine.public_token([f"read:runs:{values['run_id']}"])
        got = await client.get(
            fill("/api/v3/runs/{run_id}", values),
            headers={**bearer(token), "Origin": "https://app.example.com"},
        )
        assert got.status_code == 200 and got.headers["access-control-allow-origin"]
        secret = await client.get(
            "/api/v1/runs",
            headers={**bearer(engine.secret_key()), "Origin": "https://app.example.com"},
        )
        assert secret.status_code == 200 and "access-control-allow-origin" not in secret.headers


async def test_no_cors_by_default(engine: Engine, anon: httpx.AsyncClient) -> None:
    values = await ids(engine)
    response = await anon.options(
        fill("/api/v3/runs/{run_id}", values),
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"},
    )
    assert (
        response.status_code == 403 and "SHIPYARD_SERVER_CORS_ORIGINS" in response.json()["error"]
    )


async def test_a_callback_url_of_another_environment_completes_its_token(
    engine: Engine, anon: httpx.AsyncClient
) -> None:
    created = await engine.create_key("staging")
    made = await anon.post("/api/v1/waitpoints/tokens", json={}, headers=bearer(created.key))
    path = "/" + made.json()["url"].split("/", 3)[3]
    forged = await anon.post(path[:-4] + "0000", json={"ok": True})
    assert forged.status_code == 401
    done = await anon.post(path, json={"ok": True})
    assert done.status_code == 200, done.text
    got = await anon.get(
        f"/api/v1/waitpoints/tokens/{made.json()['id']}", headers=bearer(created.key)
    )
    assert got.json()["status"] == "COMPLETED"
