"""``shipyard dev`` gives every part the same settings, masks secrets, and fails in one line.

Real ``python -m shipyard dev`` processes on free ports against temp projects:

* the database URL (from ``.env``, with a password) and the secret key (from ``.env``) reach the
  engine server and the worker alike; the password never appears in the output;
* a task in the dev worker creates a wait token: its callback URL names dev's real port (given
  with ``--port``, not the default) and dev's server accepts its signature, completing the run;
* a second ``dev`` on a port that is taken exits 1 with one line naming the port and how to pick
  another, without a traceback.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from acceptance_support import Child, Procs, Project, clean_env, free_port, wait_until

from shipyard.config import load_settings
from shipyard.engine.engine import Engine
from shipyard.testing.postgres import databases, require_postgres

pytestmark = [pytest.mark.timeout(120)]

APPROVAL = """
from shipyard import task, wait


@task(id="approval")
async def approval(payload: None) -> dict:
    token = await wait.create_token(timeout="1m")
    mark("token-url", token.url)
    result = await wait.for_token(token)
    return {"ok": result.ok, "output": result.output}
"""


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _healthy(port: int, dev: Child) -> bool:
    if not dev.alive():
        raise AssertionError(f"shipyard dev exited early:\n{dev.output()[-4000:]}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return bool(json.loads(response.read())["tasks"] >= 1)
    except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
        return False


def _spawn_dev(project: Project, procs: Procs, *args: str, name: str) -> Child:
    """``shipyard dev`` with no SHIPYARD_DATABASE_URL in its environment: .env provides it."""
    import sys

    env = clean_env(
        SHIPYARD_PROJECT_ROOT=str(project.root),
        SHIPYARD_API_PORT="0",
        SHIPYARD_FUNCTIONS_PORT="0",
        SHIPYARD_LOG_LEVEL="info",
    )
    return procs.spawn(
        [sys.executable, "-m", "shipyard", "dev", *args], env=env, cwd=project.root, name=name
    )


@pytest.fixture
async def pg_url_with_password() -> AsyncIterator[tuple[str, str]]:
    """A fresh PostgreSQL database URL with a password in it (trust auth ignores it)."""
    require_postgres()
    url = await databases.create()
    parts = urlsplit(url)
    password = parts.password or "Dev-Pa55word-never-printed"
    netloc = f"{parts.username or 'postgres'}:{password}@{parts.hostname}:{parts.port or 5432}"
    try:
        yield urlunsplit(parts._replace(netloc=netloc)), password
    finally:
        await databases.drop(url)


async def test_dev_shares_its_settings_masks_the_password_and_signs_for_its_own_port(
    project: Project, procs: Procs, pg_url_with_password: tuple[str, str]
) -> None:
    url, password = pg_url_with_password
    secret = "dev-settings-test-key-" + "k" * 20
    (project.root / ".env").write_text(
        f"SHIPYARD_DATABASE_URL={url}\nSHIPYARD_SECRET_KEY={secret}\nOTHER=1\n"
    )
    project.write_tasks("approval", APPROVAL)
    port = free_port()
    dev = _spawn_dev(project, procs, "--port", str(port), name="dev")
    await wait_until(
        lambda: _healthy(port, dev), timeout=60, what="dev healthy with tasks", context=dev.output
    )

    client = Engine(load_settings(project_root=project.root, database_url=url))
    await client.start()
    try:
        handle = await client.trigger("approval", None, {})
        token_url = await project.wait_marker("token-url", timeout=30)
        assert token_url.startswith(f"http://127.0.0.1:{port}/api/v1/waitpoints/tokens/"), token_url
        status, body = await asyncio.to_thread(_post, token_url, {"approved": True})
        assert (status, body) == (200, {"success": True}), dev.output()[-3000:]
        record = await client.wait_for_final(handle.id, timeout=30)
        assert record.status == "COMPLETED", record
        assert json.loads(record.output or "null") == {"ok": True, "output": {"approved": True}}
    finally:
        await client.close()

    # A second dev on the same port, same project: one line, exit 1.
    second = _spawn_dev(project, procs, "--port", str(port), name="second-dev")
    assert await second.wait_exit(60) == 1
    _assert_one_port_line(second.output(), port)

    dev.signal_group(signal.SIGINT)
    assert await dev.wait_exit(30) in (0, 130, -signal.SIGINT)
    output = dev.output()
    assert password not in output and password not in second.output()
    assert secret not in output
    assert f"database       postgresql://{urlsplit(url).username}:" in output
    assert "chars)@" in output  # masked as check-envs masks: a prefix and the length


def _assert_one_port_line(output: str, port: int) -> None:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert f"Port {port}" in lines[0] and "already in use" in lines[0]
    assert "--port" in lines[0] and "SHIPYARD_SERVER_PORT" in lines[0]
    assert "Traceback" not in output


async def test_dev_on_a_taken_port_exits_1_with_one_line(project: Project, procs: Procs) -> None:
    project.write_tasks("approval", APPROVAL)
    (project.root / ".env").write_text(f"SHIPYARD_DATABASE_URL={project.database_url}\n")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        dev = _spawn_dev(project, procs, "--port", str(port), name="dev")
        assert await dev.wait_exit(60) == 1
    _assert_one_port_line(dev.output(), port)
    assert project.query("SELECT id FROM workers") == []  # nothing was started


def test_dev_help_shows_the_log_format_and_port_settings(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "shipyard", "dev", "--help"],
        env=clean_env(COLUMNS="200"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "--log-format" in result.stdout and "SHIPYARD_LOG_FORMAT" in result.stdout
    assert "SHIPYARD_SERVER_PORT" in result.stdout


async def test_server_fails_in_one_line_without_a_key_or_on_a_taken_port(
    project: Project, procs: Procs
) -> None:
    port = free_port()
    no_key = project.spawn_shipyard(
        "server", "--port", str(port), name="no-key", SHIPYARD_ENVIRONMENT="production"
    )
    assert await no_key.wait_exit(60) == 1
    lines = [line for line in no_key.output().splitlines() if line.strip()]
    assert len(lines) == 1 and "SHIPYARD_SECRET_KEY must be set" in lines[0], lines

    server = project.spawn_shipyard("server", "--port", str(port), name="server")
    await wait_until(
        lambda: _healthy_any(port, server), timeout=60, what="server healthy", context=procs.dump
    )
    second = project.spawn_shipyard("server", "--port", str(port), name="second")
    assert await second.wait_exit(60) == 1
    _assert_one_port_line(second.output(), port)
    server.signal_group(signal.SIGINT)
    assert await server.wait_exit(30) in (0, 130, -signal.SIGINT)
    assert "Traceback" not in server.output()


def _healthy_any(port: int, child: Child) -> bool:
    if not child.alive():
        raise AssertionError(f"{child.name} exited early:\n{child.output()[-4000:]}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return bool(json.loads(response.read())["status"] == "ok")
    except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
        return False
