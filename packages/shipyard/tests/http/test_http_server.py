"""What only a real server on a socket shows (uvicorn on a free port): bodies over the limit
refused before they are read, unknown hosts refused, realtime on another environment's key;
and the OpenAPI document, /docs, the rate limit."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import httpx
from http_support import Serve, bearer, engine_with

from shipyard.engine.engine import Engine
from shipyard.server.app import create_app
from shipyard.server.guard import BODY_LIMIT, api_routes


async def raw_request(url: str, head: bytes, chunks: list[bytes]) -> bytes:
    """Send a request by hand (head, then each chunk) and read the answer until EOF."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(head)
        for chunk in chunks:
            writer.write(chunk)
            try:
                await asyncio.wait_for(writer.drain(), 10)
            except (ConnectionError, TimeoutError):
                break  # the server answered and closed: read what it said
        try:
            return await asyncio.wait_for(reader.read(65536), 30)
        except ConnectionError:
            return b""
    finally:
        writer.close()


async def test_bodies_over_the_limit_are_413_without_being_read(
    engine: Engine, serve: Serve
) -> None:
    url = await serve(create_app(engine))
    key = engine.secret_key()
    big = b'{"payload": "' + b"x" * (BODY_LIMIT + 10) + b'"}'
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=bearer(key)) as http:
        response = await http.post(
            "/api/v1/tasks/t/trigger", content=big, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413, response.text
        assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
        assert "limit" in response.json()["error"]
        # Just under the limit the body is read, and the engine's own 3 MiB rule speaks.
        near = b'{"payload": "' + b"x" * (3 * 1024 * 1024 + 100) + b'"}'
        under = await http.post(
            "/api/v1/tasks/t/trigger", content=near, headers={"content-type": "application/json"}
        )
        assert under.status_code == 413 and "Payload is" in under.json()["error"]
        ok = await http.post("/api/v1/tasks/t/trigger", json={"payload": "small"})
        assert ok.status_code == 200

    # A chunked body (no Content-Length) is cut off once it passes the limit.
    head = (
        "POST /api/v1/tasks/t/trigger HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    piece = b"x" * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    answer = await raw_request(url, head, [b'd\r\n{"payload": "\r\n'] + [chunk] * 60)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"PAYLOAD_TOO_LARGE" in answer
    page = await engine.list_runs(task_ids=["t"])
    assert len(page.items) == 1  # only the small one


async def test_an_unknown_host_is_refused(engine: Engine, serve: Serve) -> None:
    url = await serve(create_app(engine))
    for host, status in (
        ("evil.example", b"400"),
        ("localhost:3030", b"200"),
        ("127.0.0.1", b"200"),
        ("[::1]:3030", b"200"),
    ):
        head = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
        answer = await raw_request(url, head, [])
        assert answer.startswith(b"HTTP/1.1 " + status), (host, answer[:300])
        if status == b"400":
            assert b"SHIPYARD_SERVER_ALLOWED_HOSTS" in answer
    # A server meant for a domain says so.
    named = await serve(create_app(engine_with(engine, server_allowed_hosts=["engine.example"])))
    head = b"GET /healthz HTTP/1.1\r\nHost: engine.example\r\nConnection: close\r\n\r\n"
    assert (await raw_request(named, head, [])).startswith(b"HTTP/1.1 200")
    head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    assert (await raw_request(named, head, [])).startswith(b"HTTP/1.1 400")


async def test_realtime_takes_the_same_keys_as_the_api(engine: Engine, serve: Serve) -> None:
    url = await serve(create_app(engine))
    created = await engine.create_key("production")
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=bearer(created.key)) as http:
        made = await http.post("/api/v1/tasks/t/trigger", json={"payload": 1})
        run_id = made.json()["id"]
        for credentials in (bearer(created.key), bearer(made.headers["x-trigger-jwt"])):
            async with http.stream(
                "GET", f"/realtime/v1/runs/{run_id}", headers=credentials
            ) as stream:
                assert stream.status_code == 200
                async for line in stream.aiter_lines():
                    if line.startswith("data:"):
                        body = json.loads(line[5:])
                        assert body["run"]["id"] == run_id
                        break
        # Development's key does not see production's run.
        other = await http.get(f"/realtime/v1/runs/{run_id}", headers=bearer(engine.secret_key()))
        assert other.status_code == 404


async def test_openapi_describes_every_route_with_models(
    engine: Engine, anon: httpx.AsyncClient
) -> None:
    document = (await anon.get("/openapi.json")).json()
    assert "bearer" in json.dumps(document["components"]["securitySchemes"]).lower()
    app = create_app(engine)
    for route in api_routes(app.routes):
        if route.path.startswith("/realtime/") or route.path == "/healthz":
            continue  # event streams and the health check
        if route.path.startswith("/dashboard"):
            continue  # HTML pages, not the API (left out of the schema)
        for method in route.methods:
            operation = document["paths"][route.path][method.lower()]
            ok = operation["responses"].get("200") or operation["responses"].get("202")
            schema = ok["content"]["application/json"]["schema"]
            assert "$ref" in schema, (method, route.path, schema)
            assert "400" in operation["responses"] or "401" in operation["responses"]
            if route.body_field is not None:
                body = operation["requestBody"]["content"]["application/json"]["schema"]
                assert "$ref" in json.dumps(body), (method, route.path, body)
    assert (await anon.get("/docs")).status_code == 200  # development only
    production = create_app(engine_with(engine, environment="production", secret_key="p" * 40))
    transport = httpx.ASGITransport(app=production)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
        assert (await http.get("/docs")).status_code == 404
        assert (await http.get("/openapi.json")).status_code == 200


async def test_the_trigger_rate_limit_is_429_with_retry_after(engine: Engine) -> None:
    limited = engine_with(
        engine,
        trigger_rate_limit=True,
        trigger_rate_bucket=2,
        trigger_rate_refill=1,
        trigger_rate_interval="1h",
    )
    transport = httpx.ASGITransport(app=create_app(limited))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://localhost", headers=bearer(engine.secret_key())
    ) as http:
        codes = [
            (await http.post("/api/v1/tasks/t/trigger", json={})).status_code for _ in range(2)
        ]
        assert codes == [200, 200]
        refused = await http.post("/api/v1/tasks/t/trigger", json={})
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["retry-after"]) >= 1
        assert int(refused.headers["x-ratelimit-reset"]) > 0
        assert refused.json()["code"] == "RATE_LIMITED"
