"""What every request passes before routing: the ``Host`` check, the body size limit and CORS.

* **Hosts.** A request whose ``Host`` is not an allowed host is refused with 400 before
  anything else: a web page cannot reach the local server through a DNS name that resolves to
  127.0.0.1 (DNS rebinding). Allowed: ``server_allowed_hosts``; unset, ``localhost``,
  ``127.0.0.1`` and ``::1`` when the server listens on a loopback address, any host otherwise.
* **Body size.** A body over the limit (3 MiB of payload plus 64 KiB for the rest; 32 MiB on
  the batch route) is 413 before it is parsed: a ``Content-Length`` over it is refused without
  reading; a chunked body is read only up to the limit.
* **CORS.** Only the routes a public access token may call answer browsers, and only from
  ``server_cors_origins`` (none by default). Preflights elsewhere are refused.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.errors import PayloadTooLargeError
from shipyard.jsonutil import dumps
from shipyard.schemas.errors import ErrorResponse
from shipyard.schemas.headers import TRIGGER_JWT_HEADER

__all__ = [
    "BATCH_BODY_LIMIT",
    "BODY_LIMIT",
    "LOOPBACK_HOSTS",
    "Guard",
    "allowed_hosts",
    "api_routes",
    "public_route_matcher",
]

BODY_LIMIT = 3 * 1024 * 1024 + 64 * 1024
"""Largest request body: a 3 MiB payload and room for the options around it."""
BATCH_BODY_LIMIT = 32 * 1024 * 1024
"""Largest batch request body (each item's payload is still at most 3 MiB)."""
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
_BATCH_PATHS = frozenset({"/api/v1/tasks/batch"})
_CORS_METHODS = "GET, POST, PUT, OPTIONS"
_CORS_HEADERS = (
    "authorization, content-type, x-trigger-request-idempotency-key, x-trigger-api-version, "
    "trigger-version, x-trigger-source, x-trigger-branch, idempotency-key, last-event-id"
)


def allowed_hosts(configured: list[str] | None, bind_host: str) -> frozenset[str] | None:
    """The host names to answer (lower case), or None for any."""
    if configured is not None:
        hosts = {h.strip().lower().strip("[]") for h in configured if h.strip()}
        return None if "*" in hosts else frozenset(hosts)
    host = bind_host.strip("[]")
    if host == "localhost":
        return frozenset(LOOPBACK_HOSTS)
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return frozenset(LOOPBACK_HOSTS) if loopback else None


def _host_name(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:3030
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _json_error(status: int, message: str, code: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    body = dumps(ErrorResponse(error=message, code=code).to_wire()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-should-retry", b"false"),
    ]
    return body, headers


class _TooLarge(Exception):
    pass


class Guard:
    """ASGI middleware: hosts, body size and CORS (see the module docstring).

    ``is_public`` answers whether a path and method belong to a route a public access token
    may call (the app works it out from its routes).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        hosts: frozenset[str] | None,
        cors_origins: Iterable[str],
        is_public: Callable[[str, str], bool],
        body_limit: int = BODY_LIMIT,
        batch_body_limit: int = BATCH_BODY_LIMIT,
    ) -> None:
        self.app = app
        self.hosts = hosts
        origins = {o.strip().rstrip("/") for o in cors_origins if o.strip()}
        self.any_origin = "*" in origins
        self.origins = frozenset(origins - {"*"})
        self.is_public = is_public
        self.body_limit = body_limit
        self.batch_body_limit = batch_body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.hosts is not None:
            host = _host_name(headers.get("host", ""))
            if host not in self.hosts:
                await _respond(
                    send,
                    400,
                    f"Host {host or '(none)'!r} is not allowed here; set "
                    "SHIPYARD_SERVER_ALLOWED_HOSTS to serve it.",
                    "HOST_NOT_ALLOWED",
                )
                return
        path: str = scope["path"]
        method: str = scope["method"]
        origin = headers.get("origin")
        if method == "OPTIONS" and origin and "access-control-request-method" in headers:
            await self._preflight(send, path, origin, headers["access-control-request-method"])
            return
        cors = self._cors_headers(path, method, origin)
        if cors:
            send = _with_headers(send, cors)
        limit = self.batch_body_limit if path in _BATCH_PATHS else self.body_limit
        length = headers.get("content-length")
        if length is not None:
            if length.isdigit() and int(length) > limit:
                await _too_large(send, int(length), limit)
                return
            await self.app(scope, receive, send)
            return
        if method in ("GET", "HEAD", "DELETE", "OPTIONS") and "transfer-encoding" not in headers:
            await self.app(scope, receive, send)
            return
        # A body without Content-Length (chunked): read it up to the limit before routing.
        try:
            messages = await _read_limited(receive, limit)
        except _TooLarge:
            await _too_large(send, None, limit)
            return
        await self.app(scope, _replay(messages, receive), send)

    def _origin_allowed(self, origin: str) -> bool:
        return self.any_origin or origin.rstrip("/") in self.origins

    def _cors_headers(
        self, path: str, method: str, origin: str | None
    ) -> list[tuple[bytes, bytes]]:
        if not origin or not self._origin_allowed(origin) or not self.is_public(path, method):
            return []
        return [
            (b"access-control-allow-origin", b"*" if self.any_origin else origin.encode()),
            (b"access-control-expose-headers", TRIGGER_JWT_HEADER.encode()),
            (b"vary", b"Origin"),
        ]

    async def _preflight(self, send: Send, path: str, origin: str, wanted: str) -> None:
        method = wanted.strip().upper()
        if not self._origin_allowed(origin) or not self.is_public(path, method):
            why = (
                "this origin is not in SHIPYARD_SERVER_CORS_ORIGINS"
                if not self._origin_allowed(origin)
                else "only the routes a public access token may call answer browsers"
            )
            await _respond(send, 403, f"Cross-origin {method} {path} refused: {why}.", "CORS")
            return
        headers = [
            (b"access-control-allow-origin", b"*" if self.any_origin else origin.encode()),
            (b"access-control-allow-methods", _CORS_METHODS.encode()),
            (b"access-control-allow-headers", _CORS_HEADERS.encode()),
            (b"access-control-max-age", b"600"),
            (b"vary", b"Origin"),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


async def _read_limited(receive: Receive, limit: int) -> list[Message]:
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages
        size += len(message.get("body", b""))
        if size > limit:
            raise _TooLarge
        if not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sender


async def _respond(send: Send, status: int, message: str, code: str) -> None:
    body, headers = _json_error(status, message, code)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _too_large(send: Send, size: int | None, limit: int) -> None:
    error = PayloadTooLargeError(
        f"The request body is {f'{size:,} bytes' if size is not None else 'over the limit'}; "
        f"the limit is {limit:,} bytes (a payload is at most 3 MiB).",
        limit=limit,
        size=size,
    )
    await _respond(send, 413, error.message, error.code)


def api_routes(routes: Iterable[Any]) -> list[Any]:
    """Every ``APIRoute`` of an app, included routers opened up (FastAPI keeps an included
    router as one entry of ``app.routes``; its ``original_router`` holds the routes; this app
    includes routers without a prefix)."""
    from fastapi.routing import APIRoute

    found: list[Any] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif (inner := getattr(route, "original_router", None)) is not None:
            found.extend(api_routes(inner.routes))
    return found


def public_route_matcher(routes: Iterable[Any]) -> Callable[[str, str], bool]:
    """``is_public(path, method)`` for :class:`Guard`: the routes whose dependencies include
    :func:`~shipyard.server.auth.public_caller`, and every realtime route."""
    from shipyard.server.auth import public_caller

    patterns: list[tuple[re.Pattern[str], frozenset[str]]] = []
    for route in api_routes(routes):
        calls = {d.call for d in route.dependant.dependencies}
        if public_caller in calls or route.path.startswith("/realtime/"):
            patterns.append((route.path_regex, frozenset(route.methods or ())))

    def is_public(path: str, method: str) -> bool:
        return any(method in methods and regex.match(path) for regex, methods in patterns)

    return is_public
