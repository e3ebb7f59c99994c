"""CORS reaches the routes of included routers: the public routes (trigger with a trigger
token, realtime) answer an allowed origin's preflight and requests; secret-key routes and
other origins get no CORS headers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from shipyard.config import Settings
from shipyard.engine.engine import Engine
from shipyard.server.app import create_app

ORIGIN = "https://app.example.com"


@pytest.fixture
async def cors_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    engine = Engine(settings.model_copy(update={"server_cors_origins": [ORIGIN]}))
    await engine.start()
    transport = httpx.ASGITransport(app=create_app(engine))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            yield http
    finally:
        await engine.close()


def preflight(method: str, origin: str = ORIGIN) -> dict[str, str]:
    return {"origin": origin, "access-control-request-method": method}


async def test_public_routes_answer_an_allowed_origin(cors_client: httpx.AsyncClient) -> None:
    for method, path in (
        ("POST", "/api/v1/tasks/send-email/trigger"),
        ("GET", "/realtime/v1/runs/run_x"),
    ):
        answer = await cors_client.options(path, headers=preflight(method))
        assert answer.status_code in (200, 204), (path, answer.text)
        assert answer.headers["access-control-allow-origin"] == ORIGIN
        # The request itself (unauthenticated here) still carries the header, so the
        # browser lets the page read the 401.
        real = await cors_client.request(method, path, headers={"origin": ORIGIN})
        assert real.status_code == 401
        assert real.headers["access-control-allow-origin"] == ORIGIN


async def test_secret_key_routes_and_other_origins_get_no_cors(
    cors_client: httpx.AsyncClient,
) -> None:
    refused = await cors_client.options("/api/v1/runs", headers=preflight("GET"))
    assert "access-control-allow-origin" not in refused.headers
    other = await cors_client.options(
        "/realtime/v1/runs/run_x", headers=preflight("GET", "https://evil.example")
    )
    assert "access-control-allow-origin" not in other.headers
    plain = await cors_client.get("/api/v1/runs", headers={"origin": ORIGIN})
    assert "access-control-allow-origin" not in plain.headers
