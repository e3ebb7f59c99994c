"""Helpers for the API tests: a fake Supabase on real loopback HTTP, tokens, free ports.

``FakeSupabase`` is a small HTTP server (uvicorn in a thread, on a free 127.0.0.1 port) that
answers the endpoints the API calls — ``/auth/v1/health`` and ``/rest/v1/<table>`` — and records
every request's method, path and headers, so tests assert what was really sent on the wire.
Its behaviour is adjustable per test (status, delay).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

JWT_SECRET = "test-jwt-secret-with-at-least-32-characters!"
ANON_KEY = "sb_publishable_TESTanonKEY1234567890abcdef"
SECRET_KEY = "sb_secret_TESTsecretKEY1234567890abcdef"


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeSupabase:
    """State of the fake server: what it answers and what it was sent."""

    url: str = ""
    health_status: int = 200
    delay: float = 0.0
    requests: list[Recorded] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)

    def last(self, path_prefix: str) -> Recorded:
        matching = [r for r in self.requests if r.path.startswith(path_prefix)]
        assert matching, f"no request to {path_prefix}; got {[r.path for r in self.requests]}"
        return matching[-1]


def _app(state: FakeSupabase) -> Starlette:
    async def record(request: Request) -> None:
        state.requests.append(
            Recorded(
                request.method,
                request.url.path,
                request.url.query,
                {k.lower(): v for k, v in request.headers.items()},
                await request.body(),
            )
        )
        if state.delay:
            await asyncio.sleep(state.delay)

    async def health(request: Request) -> Response:
        await record(request)
        return JSONResponse({"version": "fake", "name": "GoTrue"}, status_code=state.health_status)

    async def rest(request: Request) -> Response:
        await record(request)
        if request.method == "POST":
            row = {"id": "n-1", **(await request.json()), "created_at": "2026-01-01T00:00:00Z"}
            return JSONResponse([row], status_code=201)
        return JSONResponse(state.notes)

    async def anything(request: Request) -> Response:
        await record(request)
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/auth/v1/health", health),
            Route("/rest/v1/{table}", rest, methods=["GET", "POST", "PATCH", "DELETE"]),
            Route("/{path:path}", anything, methods=["GET", "POST"]),
        ]
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def user_token(sub: str, *, secret: str = JWT_SECRET, expires_in: int = 3600, **claims: Any) -> str:
    """An access token as Supabase Auth issues it (HS256, aud authenticated)."""
    now = int(time.time())
    payload = {"sub": sub, "aud": "authenticated", "role": "authenticated", "iat": now}
    payload["exp"] = now + expires_in
    payload.update(claims)
    return jwt.encode(payload, secret, algorithm="HS256")


@contextmanager
def serve_fake_supabase() -> Iterator[FakeSupabase]:
    """Run a fake Supabase on a free 127.0.0.1 port until the block ends."""
    state = FakeSupabase()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(_app(state), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "fake Supabase did not start"
        time.sleep(0.01)
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(timeout=10)
