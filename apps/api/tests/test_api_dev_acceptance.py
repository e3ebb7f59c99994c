"""Acceptance: ``uv run shipyard dev`` in this checkout serves the API and the functions.

Started as a user would (a subprocess in its own process group, from the repository root),
on free ports and a temp database through ``SHIPYARD_*`` variables. Checks the printed URLs,
``GET /`` on the API port, ``/functions/v1/hello-world?name=X`` on the functions port, and a
report generated end to end by the dev worker; then SIGINTs it and expects a clean stop.
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import JWT_SECRET, free_port, user_token

REPO_ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.timeout(150)


def request(url: str, data: dict[str, Any] | None = None, token: str | None = None) -> Any:
    """(status, body) of a request, or None while nothing listens."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=3) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def wait_for(probe: Any, what: str, dev: subprocess.Popen[bytes], log: Path, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dev.poll() is not None:
            raise AssertionError(f"shipyard dev exited early:\n{log.read_text()[-4000:]}")
        if result := probe():
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-4000:]}")


@pytest.fixture
def ports() -> dict[str, int]:
    return {"engine": free_port(), "api": free_port(), "functions": free_port()}


@pytest.fixture
def dev(tmp_path: Path, ports: dict[str, int]) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "SUPABASE_"))}
    env.update(
        PYTHONUNBUFFERED="1",
        SHIPYARD_DATABASE_URL=f"sqlite:///{tmp_path / 'dev.db'}",
        SHIPYARD_SERVER_PORT=str(ports["engine"]),
        SHIPYARD_API_PORT=str(ports["api"]),
        SHIPYARD_FUNCTIONS_PORT=str(ports["functions"]),
        SUPABASE_JWT_SECRET=JWT_SECRET,
    )
    log = tmp_path / "dev.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["uv", "run", "shipyard", "dev"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process, log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_dev_serves_the_api_and_the_functions(
    dev: tuple[subprocess.Popen[bytes], Path], ports: dict[str, int]
) -> None:
    process, log = dev
    api = f"http://127.0.0.1:{ports['api']}"
    hello = f"http://127.0.0.1:{ports['functions']}/functions/v1/hello-world"

    status, body = wait_for(lambda: request(api + "/"), "the API on :api", process, log, 90)
    assert (status, body) == (200, "AI start!")

    # The functions server starts right after the API one: wait for it too.
    status, body = wait_for(
        lambda: request(hello + "?name=Shipyard"), "the functions on :functions", process, log, 30
    )
    assert status == 200, body
    greeting = json.loads(body)
    assert greeting["message"] == "Hello Shipyard!"
    assert greeting["function"] == "hello-world"

    # The summary is printed once every server is up, which can be just after the API answers.
    output = wait_for(
        lambda: (text := log.read_text()) and "Press Ctrl-C" in text and text,
        "the dev summary",
        process,
        log,
        30,
    )
    assert f"{api}  (apps/api)" in output, output
    assert hello in output, output
    assert f"http://127.0.0.1:{ports['engine']}/healthz" in output

    # The example feature through the dev stack: the API process triggers, the worker runs.
    token = user_token("11111111-1111-4111-8111-111111111111")
    rows = [{"label": "a", "value": 1}, {"label": "b", "value": 3}]

    def created() -> Any:
        answer = request(api + "/reports", {"title": "dev", "rows": rows}, token)
        # None until the API answers; the run waits for the worker if it is not up yet.
        return answer if answer and answer[0] == 202 else None

    _, body = wait_for(created, "POST /reports to be accepted", process, log, 60)
    run_id = json.loads(body)["id"]

    def finished() -> Any:
        answer = request(f"{api}/reports/{run_id}", token=token)
        assert answer is not None and answer[0] == 200, answer
        report = json.loads(answer[1])
        return report if report["status"] == "COMPLETED" else None

    report = wait_for(finished, "the report to complete", process, log, 60)
    assert report["output"]["overall"]["sum"] == 4.0
    assert report["metadata"]["progress"] == 1.0

    os.killpg(process.pid, signal.SIGINT)
    code = process.wait(timeout=30)
    assert code in (0, 130, -signal.SIGINT), log.read_text()[-3000:]
    assert "Stopping" in log.read_text()
    assert request(api + "/") is None  # the API went away with it


def test_dev_with_the_example_env_behaves_like_no_env(tmp_path: Path) -> None:
    """``cp .env.example .env && shipyard dev``: the placeholders are not loaded (one warning
    line names them), so the API answers as it does without a ``.env``: ``/db-test`` is
    ``not_configured`` (not 502), and requests pass as the development user (not 401)."""
    project = tmp_path / "project"
    ignore = shutil.ignore_patterns("__pycache__", "tests")
    shutil.copytree(REPO_ROOT / "apps/api/src", project / "apps/api/src", ignore=ignore)
    shutil.copytree(REPO_ROOT / "functions", project / "functions", ignore=ignore)
    shutil.copytree(REPO_ROOT / "trigger", project / "trigger", ignore=ignore)
    (project / "pyproject.toml").write_text('[tool.shipyard]\ndirs = ["trigger"]\n')
    shutil.copy(REPO_ROOT / ".env.example", project / ".env")
    ports = {"engine": free_port(), "api": free_port(), "functions": free_port()}
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SHIPYARD_", "SUPABASE_", "CLOUDFLARE_", "APP_ENV"))
    }
    env.update(
        PYTHONUNBUFFERED="1",
        SHIPYARD_PROJECT_ROOT=str(project),
        SHIPYARD_DATABASE_URL=f"sqlite:///{tmp_path / 'dev.db'}",
        SHIPYARD_SERVER_PORT=str(ports["engine"]),
        SHIPYARD_API_PORT=str(ports["api"]),
        SHIPYARD_FUNCTIONS_PORT=str(ports["functions"]),
    )
    log = tmp_path / "dev.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "shipyard", "dev", "--no-reload"],
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        api = f"http://127.0.0.1:{ports['api']}"
        wait_for(lambda: request(api + "/"), "the API", process, log, 90)
        status, body = request(api + "/db-test")
        assert status == 200, body
        assert json.loads(body)["status"] == "not_configured"
        status, body = request(api + "/notes", token="anything")
        assert status == 503 and "Supabase is not configured" in body, body

        def created() -> Any:
            answer = request(api + "/reports", {"title": "t", "rows": [{"label": "a", "value": 1}]})
            return answer if answer and answer[0] == 202 else None

        wait_for(created, "POST /reports as the development user", process, log, 60)
        output = log.read_text()
        warnings = [line for line in output.splitlines() if "placeholder values" in line]
        assert len(warnings) == 1, output[-3000:]
        assert "SUPABASE_JWT_SECRET" in warnings[0] and "CLOUDFLARE_API" in warnings[0]
        assert "<your_" not in output
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
