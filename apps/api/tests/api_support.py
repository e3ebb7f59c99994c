"""Helpers for the API tests: a fake Supabase on real loopback HTTP, tokens, free ports.

``FakeSupabase`` is a small HTTP server (uvicorn in a thread, on a free 127.0.0.1 port) that
answers the endpoints the API calls — ``/auth/v1/health``, ``/auth/v1/.well-known/jwks.json``
and ``/rest/v1/<table>`` — and records every request's method, path and headers, so tests
assert what was really sent on the wire. Its behaviour is adjustable per test (status, delay,
the published signing keys). :class:`SigningKey` makes real ES256/RS256 keys and signs tokens
with them as Supabase Auth does.
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
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
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
    jwks: list[dict[str, Any]] = field(default_factory=list)
    jwks_status: int = 200

    @property
    def issuer(self) -> str:
        """The ``iss`` of this project's access tokens."""
        return f"{self.url}/auth/v1"

    def publish(self, *keys: SigningKey) -> None:
        """Add these keys' public JWKs to the published set."""
        self.jwks.extend(key.jwk for key in keys)

    def jwks_fetches(self) -> int:
        """How many times the JWKS was fetched."""
        return sum(1 for r in self.requests if r.path == "/auth/v1/.well-known/jwks.json")

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

    async def jwks(request: Request) -> Response:
        await record(request)
        return JSONResponse({"keys": state.jwks}, status_code=state.jwks_status)

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
            Route("/auth/v1/.well-known/jwks.json", jwks),
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


@dataclass
class SigningKey:
    """A real asymmetric signing key (ES256 on P-256, or RS256), its ``kid`` and public JWK."""

    kid: str
    algorithm: str
    private: Any
    jwk: dict[str, Any]

    @classmethod
    def generate(cls, kid: str, algorithm: str = "ES256") -> SigningKey:
        if algorithm == "ES256":
            private: Any = ec.generate_private_key(ec.SECP256R1())
            public = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
        jwk = {**public, "kid": kid, "alg": algorithm, "use": "sig", "key_ops": ["verify"]}
        return cls(kid, algorithm, private, jwk)

    def sign(
        self,
        sub: str,
        *,
        issuer: str,
        expires_in: int = 3600,
        kid: str | None = None,
        **claims: Any,
    ) -> str:
        """An access token as Supabase Auth issues it with this key."""
        now = int(time.time())
        payload = {"sub": sub, "aud": "authenticated", "role": "authenticated", "iat": now}
        payload.update(exp=now + expires_in, iss=issuer)
        payload.update(claims)
        return jwt.encode(
            {k: v for k, v in payload.items() if v is not None},
            self.private,
            algorithm=self.algorithm,
            headers={"kid": kid or self.kid},
        )


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
