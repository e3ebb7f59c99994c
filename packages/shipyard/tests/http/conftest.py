"""HTTP API test helpers: the engine server app in-process (httpx over ASGI, for route logic)
and on a real uvicorn server on a free port (for what only a socket shows: body limits, hosts).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from http_support import bearer

from shipyard.engine.engine import Engine
from shipyard.server.app import create_app
from shipyard.testing.servers import Serve, uvicorn_servers


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
    async with uvicorn_servers() as start:
        yield start
