"""The engine image (``Dockerfile``) and the self-hosting stack (``compose.yaml``).

This machine has a docker CLI and no container engine (``docker info`` fails; no podman), so
the image itself cannot be built here. What can be, is tested:

* the files are linted for what the image promises: multi-stage with uv, a non-root user, a
  ``HEALTHCHECK`` on ``/healthz``, no secret baked in, ``.env`` kept out of the build context;
  the compose stack has PostgreSQL, the server and N workers, each with a healthcheck and a
  restart policy, and takes every secret from the environment;
* the image's entrypoints run for real: the exact ``shipyard server`` command line of the
  Dockerfile's ``CMD`` and the ``shipyard worker`` one of ``compose.yaml``, as subprocesses with
  the image's environment, against a real PostgreSQL database — ``/healthz`` answers, a run of
  the template's ``generate-report`` task completes on the worker, SIGTERM stops both cleanly;
* a transaction-pooler URL gets its one warning line.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipyard.testing.postgres import databases, require_postgres
from shipyard.tooling.deploy.engine import SERVER_COMMAND, WORKER_COMMAND
from shipyard.tooling.pooler import transaction_pooler_warning

REPO_ROOT = Path(__file__).resolve().parents[4]
DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())
SECRETISH = re.compile(r"(KEY|SECRET|PASSWORD|TOKEN|CREDENTIAL)", re.IGNORECASE)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in final_stage():
        if word == "ENV":
            for token in shlex.split(rest):
                key, _, value = token.partition("=")
                env[key] = value
    return env


def cmd() -> list[str]:
    (command,) = [rest for word, rest in final_stage() if word == "CMD"]
    parsed: list[str] = json.loads(command)
    return parsed


# -- lint -----------------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_with_uv_and_runs_as_a_user() -> None:
    steps = instructions()
    stages = [rest for word, rest in steps if word == "FROM"]
    assert len(stages) >= 3 and any(" AS build" in s for s in stages), stages
    assert any(word == "RUN" and "uv sync --frozen" in rest for word, rest in steps)
    # The engine image serves and runs workers on PostgreSQL: every extra, not the light base.
    syncs = [rest for word, rest in steps if word == "RUN" and "uv sync" in rest]
    assert syncs and all("--package shipyard --extra all" in rest for rest in syncs), syncs
    assert any(word == "COPY" and rest.startswith("--from=build") for word, rest in final_stage())
    users = [rest for word, rest in final_stage() if word == "USER"]
    assert users, "the final stage must switch to a non-root USER"
    assert users[-1].split(":")[0] not in ("root", "0")
    # The user is created in the image, with a fixed non-zero uid.
    assert re.search(r"useradd .*--uid (\d+)", DOCKERFILE).group(1) != "0"  # type: ignore[union-attr]


def test_dockerfile_healthcheck_and_commands() -> None:
    (health,) = [rest for word, rest in final_stage() if word == "HEALTHCHECK"]
    assert "/healthz" in health
    assert cmd() == list(SERVER_COMMAND)
    assert image_env()["SHIPYARD_SERVER_PORT"] == "3030"
    assert any(word == "EXPOSE" and rest == "3030" for word, rest in final_stage())


def test_no_secret_is_baked_into_the_image() -> None:
    for word, rest in instructions():
        if word in ("ENV", "ARG", "LABEL"):
            for token in shlex.split(rest):
                key = token.partition("=")[0]
                assert not SECRETISH.search(key), f"{word} {key}: secrets come at run time"
        assert not re.search(r"postgres(ql)?://[^@\s]*:[^@\s]*@", rest), rest
        if word in ("COPY", "ADD"):
            assert ".env" not in rest.split(), rest
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".env.*" in ignored and ".git" in ignored


def test_compose_runs_postgres_the_server_and_workers() -> None:
    services = COMPOSE["services"]
    assert set(services) >= {"postgres", "server", "worker"}
    for name, service in services.items():
        assert service.get("restart") in ("unless-stopped", "always"), name
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert services["server"]["command"] == list(SERVER_COMMAND)
    assert services["worker"]["command"] == list(WORKER_COMMAND)
    assert "/healthz" in " ".join(services["server"]["healthcheck"]["test"])
    assert str(services["worker"]["deploy"]["replicas"]).startswith("${SHIPYARD_WORKERS")
    for name in ("server", "worker"):
        service = services[name]
        assert service["build"] == "."
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        url = service["environment"]["SHIPYARD_DATABASE_URL"]
        assert url.startswith("postgresql://") and ":5432/" in url  # never the 6543 pooler


def test_compose_takes_every_secret_from_the_environment() -> None:
    def walk(node: Any, path: str) -> Iterator[tuple[str, str]]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, f"{path}[{index}]")
        elif isinstance(node, str):
            yield path, node

    for path, value in walk(COMPOSE, ""):
        key = path.rsplit(".", 1)[-1]
        if SECRETISH.search(key):
            assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", value), f"{path} must be ${{VAR:?…}}"
        password = re.search(r"postgres(ql)?://[^:/@]+:([^@]+)@", value)
        if password:
            assert password.group(2).startswith("${"), f"{path} has a literal password"


# -- the entrypoints, for real --------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh migrated PostgreSQL test database (the processes under test run blocking)."""
    require_postgres()
    url = asyncio.run(databases.create())
    yield url
    asyncio.run(databases.drop(url))


def get(url: str) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def shipyard_bin() -> str:
    found = shutil.which("shipyard")
    assert found, "the shipyard console script is not on PATH (run the tests with uv run)"
    return found


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [shipyard_bin(), *argv[1:]],
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def eventually(probe: Any, what: str, processes: list[tuple[subprocess.Popen[bytes], Path]]) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for process, log in processes:
            if process.poll() is not None:
                raise AssertionError(f"{what}: a process exited:\n{log.read_text()[-3000:]}")
        if result := probe():
            return result
        time.sleep(0.2)
    logs = "\n".join(log.read_text()[-2000:] for _, log in processes)
    raise AssertionError(f"timed out waiting for {what}:\n{logs}")


@pytest.mark.timeout(180)
def test_image_entrypoints_serve_and_run_a_task_on_postgres(database: str, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "SUPABASE_"))}
    env.update(image_env())
    env.update(
        # What the container runtime / compose provides; the image's own ENV stays as is,
        # except where this host differs from a container (paths, a free loopback port).
        SHIPYARD_PROJECT_ROOT=str(REPO_ROOT),
        SHIPYARD_SERVER_HOST="127.0.0.1",
        SHIPYARD_SERVER_PORT=str(port),
        SHIPYARD_DATABASE_URL=database,
        SHIPYARD_SECRET_KEY=secrets.token_hex(32),
        PATH=os.environ["PATH"],
    )
    assert env["SHIPYARD_ENVIRONMENT"] == "production"
    server_cmd = cmd()
    worker_cmd = list(COMPOSE["services"]["worker"]["command"])
    server = start(server_cmd, env, tmp_path / "server.log")
    worker = start(worker_cmd, env, tmp_path / "worker.log")
    running = [(server, tmp_path / "server.log"), (worker, tmp_path / "worker.log")]
    try:
        health = eventually(lambda: get(f"http://127.0.0.1:{port}/healthz"), "/healthz", running)
        assert health[0] == 200, health

        def task_registered() -> bool:
            listed = subprocess.run(
                [shipyard_bin(), "tasks", "list", "--json"],
                env=env,
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=60,
            )
            return listed.returncode == 0 and "generate-report" in listed.stdout

        eventually(task_registered, "the worker to register generate-report", running)
        payload = {
            "title": "image",
            "rows": [{"label": "a", "value": 2}, {"label": "a", "value": 4}],
        }
        triggered = subprocess.run(
            [
                shipyard_bin(),
                *("trigger", "generate-report", "--payload", json.dumps(payload)),
                *("--wait", "--timeout", "60", "--json"),
            ],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert triggered.returncode == 0, triggered.stdout + triggered.stderr
        assert '"COMPLETED"' in triggered.stdout, triggered.stdout
        assert '"sum": 6.0' in triggered.stdout, triggered.stdout
    finally:
        for process, _ in running:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        codes = [process.wait(timeout=60) for process, _ in running]
    assert codes[1] == 0, (tmp_path / "worker.log").read_text()[-3000:]
    for _, log in running:
        assert env["SHIPYARD_SECRET_KEY"] not in log.read_text()


# -- transaction pooler ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("postgresql://postgres.ref:pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres", True),
        ("postgresql://postgres.ref:pw@aws-0-eu-west-1.pooler.supabase.com:5432/postgres", False),
        ("postgresql://postgres:pw@db.abcdefghijklmnopqrst.supabase.co:5432/postgres", False),
        ("postgresql://u:pw@10.0.0.5:6543/app", True),
        ("postgresql://u:pw@pgbouncer.internal/app?pgbouncer=true", True),
        ("sqlite:///.shipyard/shipyard.db", False),
        ("postgresql://u:pw@host:notaport/app", False),
    ],
)
def test_transaction_pooler_urls_are_spotted(url: str, warned: bool) -> None:
    warning = transaction_pooler_warning(url)
    assert (warning is not None) == warned
    if warning:
        assert "pw" not in warning.replace("pgbouncer", "")
        assert "LISTEN/NOTIFY" in warning and "5432" in warning


def test_a_worker_on_a_transaction_pooler_logs_one_warning(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update(
        SHIPYARD_PROJECT_ROOT=str(REPO_ROOT),
        SHIPYARD_DATABASE_URL=f"postgresql://u:pw-secret@127.0.0.1:{6543}/none",
    )
    done = subprocess.run(
        [shipyard_bin(), "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    lines = [line for line in done.stderr.splitlines() if "transaction-mode pooler" in line]
    assert len(lines) == 1, done.stderr[-2000:]
    assert "pw-secret" not in done.stderr + done.stdout
    assert done.returncode != 0  # nothing listens on 127.0.0.1:6543 here
