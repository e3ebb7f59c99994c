"""Dashboard test helpers: the engine server on a real uvicorn (free port, the test's event
loop, so the in-process engine and worker serve it) and an HTTP client of it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from shipyard.engine.engine import Engine
from shipyard.server.app import create_app
from shipyard.testing.eventually import eventually

Serve = Callable[[ASGIApp], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``url = await serve(app)``: serve ``app`` with uvicorn on 127.0.0.1, a free port."""
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(app: ASGIApp) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        servers.append((server, task))
        await eventually(lambda: server.started or task.done())
        return f"http://127.0.0.1:{port}"

    yield start
    for server, task in servers:
        server.should_exit = True
        server.force_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


@pytest.fixture
async def server_url(engine: Engine, serve: Serve) -> str:
    """The engine server with its dashboard closed (a login is needed)."""
    return await serve(create_app(engine))


@pytest.fixture
async def client(server_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the engine server, not signed in."""
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as http:
        yield http
