"""The API app under uvicorn starts, triggers a report that a real worker completes, and stops
cleanly: its lifespan closes Shipyard's default engine (``shipyard.aclose()``), so no pool
task is left pending and no connection or thread is left open when the event loop ends — on
SQLite and on PostgreSQL.

uvicorn is run by a small script (:data:`SERVE`) that, once the server has stopped, prints the
asyncio tasks and threads still alive: without ``aclose()`` the PostgreSQL pool's workers and
the SQLite store's thread would be listed there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import free_port

REPO_ROOT = Path(__file__).resolve().parents[3]
SECRET_KEY = "lifespan-test-secret-key-of-at-least-32-bytes"
pytestmark = pytest.mark.timeout(120)

# What an unclean stop prints: asyncio's pending-task report, unclosed resources, tracebacks.
UNCLEAN = (
    "Task was destroyed but it is pending",
    "ResourceWarning",
    "unclosed",
    "still open",
    "Traceback",
    "Exception in",
)


SERVE = """
import asyncio
import signal
import sys
import threading

import uvicorn


async def main() -> None:
    config = uvicorn.Config(
        "app.main:app", host="127.0.0.1", port=int(sys.argv[1]), lifespan="on"
    )
    server = uvicorn.Server(config)
    # Stop on SIGTERM ourselves: uvicorn re-raises a captured signal after its shutdown, which
    # would end the process before the report below.
    server.capture_signals = lambda: __import__("contextlib").nullcontext()
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGTERM, lambda: setattr(server, "should_exit", True)
    )
    await server.serve()
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    # AnyIO's idle worker threads run FastAPI's sync dependencies: the app's, not Shipyard's.
    threads = [
        t.name
        for t in threading.enumerate()
        if t is not threading.main_thread() and t.name != "AnyIO worker thread"
    ]
    print(f"after serve: {len(others)} task(s) {others!r}, threads {threads}", flush=True)


asyncio.run(main())
"""


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh SQLite file, or a fresh migrated PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shipyard.db'}"
        return
    from shipyard.testing.postgres import databases, require_postgres

    require_postgres()
    url = await databases.create()
    yield url
    await databases.drop(url)


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Child processes of the test, each in its own group, killed at teardown."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for child in started:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=10)


def _request(url: str, data: dict[str, Any] | None = None) -> tuple[int, str] | None:
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def _wait_for(probe: Callable[[], Any], what: str, logs: list[Path], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := probe():
            return result
        time.sleep(0.1)
    output = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs)
    raise AssertionError(f"timed out waiting for {what}\n{output}")


def test_the_api_closes_the_engine_when_it_stops(
    tmp_path: Path, database_url: str, children: list[subprocess.Popen[bytes]]
) -> None:
    project = tmp_path / "project"
    shutil.copytree(
        REPO_ROOT / "trigger", project / "trigger", ignore=shutil.ignore_patterns("__pycache__")
    )
    (project / "pyproject.toml").write_text('[tool.shipyard]\ndirs = ["trigger"]\n')
    (project / "serve.py").write_text(SERVE)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SHIPYARD_", "SUPABASE_", "APP_ENV"))
    }
    env.update(
        PYTHONUNBUFFERED="1",
        APP_ENV="development",  # requests pass as the development user
        SHIPYARD_PROJECT_ROOT=str(project),
        SHIPYARD_DATABASE_URL=database_url,
        SHIPYARD_SECRET_KEY=SECRET_KEY,
    )

    def spawn(name: str, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"{name}.log"
        with open(log, "wb") as out:
            child = subprocess.Popen(
                [sys.executable, *args],
                cwd=project,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        children.append(child)
        return child, log

    _, worker_log = spawn("worker", "-m", "shipyard", "worker", "--poll", "0.1")
    port = free_port()
    # Every warning shown: ResourceWarning and unclosed-resource ones are hidden by default.
    api, api_log = spawn("api", "-W", "always", "serve.py", str(port))
    logs = [api_log, worker_log]
    base = f"http://127.0.0.1:{port}"
    _wait_for(lambda: _request(base + "/"), "the API to answer", logs)

    rows = [{"label": "a", "value": 1}, {"label": "b", "value": 2}]

    def accepted() -> tuple[int, str] | None:
        answer = _request(base + "/reports", {"title": "lifespan", "rows": rows})
        return answer if answer and answer[0] == 202 else None  # 503 until the worker registers

    run_id = json.loads(_wait_for(accepted, "POST /reports to be accepted", logs)[1])["id"]

    def completed() -> dict[str, Any] | None:
        answer = _request(f"{base}/reports/{run_id}")
        assert answer is not None and answer[0] == 200, answer
        report: dict[str, Any] = json.loads(answer[1])
        return report if report["status"] == "COMPLETED" else None

    report = _wait_for(completed, "the report to complete", logs)
    assert report["output"]["overall"]["sum"] == 3.0

    os.killpg(api.pid, signal.SIGTERM)
    assert api.wait(timeout=30) == 0, api_log.read_text()[-3000:]
    output = api_log.read_text()
    assert "Application shutdown complete." in output, output
    assert "after serve: 0 task(s) [], threads []" in output, output
    for sign in UNCLEAN:
        assert sign not in output, output
