"""HTTP API test helpers: the engine server app in-process (httpx over ASGI, for route logic)
and on a real uvicorn server on a free port (for what only a socket shows: body limits, hosts).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from http_support import Serve, bearer
from starlette.types import ASGIApp

from shipyard.engine.engine import Engine
from shipyard.server.app import create_app
from shipyard.testing.eventually import eventually


@pytest.fixture
def app(engine: Engine) -> FastAPI:
    """The engine server app over the test's engine."""
    return create_app(engine)


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app with no credentials."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
        yield http


@pytest.fixture
async def api(app: FastAPI, engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app with the environment's secret key."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://localhost", headers=bearer(engine.secret_key())
    ) as http:
        yield http


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``url = await serve(app)``: serve ``app`` with uvicorn on 127.0.0.1, a free port."""
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(app: ASGIApp) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
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
