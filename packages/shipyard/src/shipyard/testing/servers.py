"""Real uvicorn servers for tests: an ASGI app on 127.0.0.1, a free port, in the test's event
loop (so an in-process engine and worker serve it), stopped when the block ends.

Example::

    async with uvicorn_servers() as serve:
        url = await serve(create_app(engine))  # "http://127.0.0.1:41234"
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import uvicorn
from starlette.types import ASGIApp

from shipyard.testing.eventually import eventually

__all__ = ["Serve", "uvicorn_servers"]

Serve = Callable[[ASGIApp], Awaitable[str]]


@contextlib.asynccontextmanager
async def uvicorn_servers() -> AsyncIterator[Serve]:
    """``serve(app)`` starts a server for ``app`` and returns its URL; every server started
    stops (within 10 s) when the block ends."""
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(app: ASGIApp) -> str:
        # IPPROTO_TCP, as the real server's socket: asyncio turns Nagle off only for TCP.
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
        if task.done():
            await task  # it failed to start: say why
        return f"http://127.0.0.1:{port}"

    try:
        yield start
    finally:
        for server, task in servers:
            server.should_exit = True
            server.force_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
