"""A trigger whose answer is lost is retried by the remote client with the same request id,
and the server answers the retry with the run the first attempt created: one run, not two.

Between the client and a real engine server sits a real TCP proxy that forwards the first
request, reads the server's answer, and drops the connection instead of passing it on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from acceptance_support import Procs
from remote_support import SECRET_KEY, RemoteEngine, start_remote_engine, url_project

from shipyard import runs, tasks
from shipyard.client import RemoteClient
from shipyard.sdk.backend import set_client

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


async def _read_message(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 message (headers and a Content-Length body); b"" at end of stream."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return head + (await reader.readexactly(length) if length else b"")


class LossyProxy:
    """Forwards HTTP requests to ``upstream``; the answers to the first ``drop`` requests are
    read from the server and thrown away, and their connections closed."""

    def __init__(self, upstream_port: int, drop: int) -> None:
        self.upstream_port = upstream_port
        self.drop = drop
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            while True:
                try:
                    request = await _read_message(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.requests.append(request)
                up_writer.write(request)
                await up_writer.drain()
                answer = await _read_message(up_reader)
                if self.drop > 0:
                    self.drop -= 1
                    return  # the server did the work; the client never hears of it
                writer.write(answer)
                await writer.drain()
        finally:
            up_writer.close()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


@pytest.fixture
async def remote(tmp_path: Path, procs: Procs, database_url: str) -> RemoteEngine:
    return await start_remote_engine(
        url_project(tmp_path / "engine", procs, database_url), worker=False
    )


@pytest.fixture
async def proxy(remote: RemoteEngine) -> AsyncIterator[tuple[LossyProxy, str]]:
    lossy = LossyProxy(int(remote.url.rsplit(":", 1)[1]), drop=1)
    server = await asyncio.start_server(lossy.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield lossy, f"http://127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


async def test_a_retried_trigger_creates_one_run(proxy: tuple[LossyProxy, str]) -> None:
    lossy, url = proxy
    client = RemoteClient(url, SECRET_KEY)
    set_client(client)
    try:
        handle = await tasks.trigger("double", {"n": 1}, tags=["retried"])
        assert lossy.drop == 0, "the first answer was not dropped"
        triggers = [r for r in lossy.requests if r.startswith(b"POST /api/v1/tasks/")]
        assert len(triggers) == 2  # sent twice …
        ids = {
            line.split(b":", 1)[1].strip()
            for r in triggers
            for line in r.split(b"\r\n")
            if line.lower().startswith(b"x-trigger-request-idempotency-key:")
        }
        assert len(ids) == 1  # … as one request
        found = [run.id async for run in runs.list(tag="retried")]
        assert found == [handle.id]  # … which made one run
    finally:
        set_client(None)
        await client.close()
