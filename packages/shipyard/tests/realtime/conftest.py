"""Realtime test helpers: a real uvicorn server on a free port (in the test's event loop, so
the in-process engine and worker serve it), and an HTTP client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from shipyard.engine.engine import Engine
from shipyard.server.app import create_app
from shipyard.testing.servers import Serve, uvicorn_servers


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``url = await serve(app)``: serve ``app`` with uvicorn on 127.0.0.1, a free port."""
    async with uvicorn_servers() as start:
        yield start


@pytest.fixture
async def server_url(engine: Engine, serve: Serve) -> str:
    """The engine server (``create_app``, realtime routes included) on a free port."""
    return await serve(create_app(engine))


@pytest.fixture
async def client(server_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the engine server."""
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as http:
        yield http
