"""schemathesis against ``/openapi.json`` of a real server (bounded examples per route): no
server errors, and every response matches its documented status, content type and schema.

The realtime routes are left out (an accepted subscription streams until the run ends)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shipyard.config import load_settings
from shipyard.engine.engine import Engine
from shipyard.server.app import create_app

KEY = "schemathesis-secret-key-schemathesis-key"


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An engine server on SQLite, in a thread with its own event loop."""
    root: Path = tmp_path_factory.mktemp("schemathesis")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    engine = Engine(load_settings(project_root=root, secret_key=KEY))
    server = uvicorn.Server(uvicorn.Config(create_app(engine), log_level="error", lifespan="off"))

    async def main() -> None:
        await engine.start()
        await engine.trigger("st-task", {"a": 1}, {"tags": ["st"]})
        try:
            await server.serve(sockets=[sock])
        finally:
            await engine.close()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.05)
    assert server.started, "the server did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_api_answers_as_documented(server_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{server_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    checked = 0
    statuses: dict[int, int] = {}
    for operation in operations:
        if operation.path.startswith("/realtime/"):
            continue

        @given(case=operation.as_strategy())
        @settings(
            max_examples=8,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def call(case: schemathesis.Case) -> None:
            response = case.call_and_validate(
                base_url=server_url,
                headers={"Authorization": f"Bearer {KEY}"},
                checks=CHECKS,
                timeout=30,
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        call()
        checked += 1
    assert checked >= 25  # every API route but realtime
    assert sum(statuses.values()) >= checked and 200 in statuses, statuses
