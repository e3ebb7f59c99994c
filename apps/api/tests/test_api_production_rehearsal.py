"""A production rehearsal: every part started the way production starts it, on PostgreSQL.

* the engine server and two workers from the image's entrypoints (``shipyard server``,
  ``shipyard worker``), ``SHIPYARD_ENVIRONMENT=production``, engine tables in the ``shipyard``
  schema of a fresh database;
* the API app served as the Worker runs it: ``APP_ENV=production``, no database URL, only the
  engine's URL and key (``SHIPYARD_API_URL``, ``SHIPYARD_SECRET_KEY``), the PostgreSQL driver
  made unimportable, so the app can only reach runs through the light HTTP client (uvicorn
  stands in for the Workers runtime's ASGI host);
* Supabase Auth as a local JWKS server publishing a real ES256 key.

A user's ES256 token → ``POST /reports`` → the run COMPLETES on one of the workers →
``GET /reports/{id}`` returns the report; ``public`` holds no engine table.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from api_support import SigningKey, free_port, serve_fake_supabase

from shipyard.testing.postgres import databases, require_postgres

REPO_ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.timeout(240)

# The API process must never load what only the engine side needs: the PostgreSQL driver and
# the file watcher are not in the Worker bundle, so importing them fails here; a fallback to
# a local SQLite engine would leave a database under the app's project root (checked below).
BLOCKER = """
import importlib.abc, sys
BLOCKED = ("psycopg", "psycopg_pool", "psycopg_binary", "watchfiles")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in BLOCKED or name.startswith(tuple(b + "." for b in BLOCKED)):
            raise ImportError(f"{name} is not in the Worker bundle")
        return None
sys.meta_path.insert(0, Block())
import uvicorn
uvicorn.run("app.main:app", host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""

Processes = list[tuple[subprocess.Popen[bytes], Path]]


@pytest.fixture
def database() -> Iterator[str]:
    require_postgres()
    url = asyncio.run(databases.create())
    yield url
    asyncio.run(databases.drop(url))


def call(
    url: str, data: Any = None, token: str | None = None, method: str | None = None
) -> tuple[int, Any] | None:
    """(status, JSON body) of a request, or None while nothing listens."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, _body(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _body(exc.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def _body(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw.decode(errors="replace")


def start(argv: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def eventually(probe: Callable[[], Any], what: str, running: Processes, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process, log in running:
            if process.poll() is not None:
                raise AssertionError(f"{what}: {log.name} exited:\n{log.read_text()[-3000:]}")
        if result := probe():
            return result
        time.sleep(0.2)
    logs = "\n".join(f"--- {log.name}\n{log.read_text()[-2000:]}" for _, log in running)
    raise AssertionError(f"timed out waiting for {what}:\n{logs}")


def test_production_rehearsal(database: str, tmp_path: Path) -> None:
    shipyard = shutil.which("shipyard")
    assert shipyard, "the shipyard console script is not on PATH (run the tests with uv run)"
    engine_port, api_port = free_port(), free_port()
    engine_key = secrets.token_urlsafe(32)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "SUPABASE_"))}
    base.pop("APP_ENV", None)
    engine_env = {
        **base,
        "SHIPYARD_PROJECT_ROOT": str(REPO_ROOT),
        "SHIPYARD_ENVIRONMENT": "production",
        "SHIPYARD_DATABASE_URL": database,
        "SHIPYARD_SECRET_KEY": engine_key,
        "SHIPYARD_SERVER_HOST": "127.0.0.1",
        "SHIPYARD_SERVER_PORT": str(engine_port),
        "PYTHONUNBUFFERED": "1",
    }
    running: Processes = []
    key = SigningKey.generate("rehearsal-key", "ES256")
    with serve_fake_supabase() as supabase:
        supabase.publish(key)
        app_root = tmp_path / "app-root"
        app_root.mkdir()
        api_env = {
            **base,
            "APP_ENV": "production",
            "SUPABASE_URL": supabase.url,
            "SUPABASE_PUBLISHABLE_KEY": "sb_publishable_REHEARSALkey1234567890",
            "SHIPYARD_API_URL": f"http://127.0.0.1:{engine_port}",
            "SHIPYARD_SECRET_KEY": engine_key,
            "SHIPYARD_ENVIRONMENT": "production",
            "SHIPYARD_PROJECT_ROOT": str(app_root),
            "PYTHONPATH": str(REPO_ROOT / "apps" / "api" / "src"),
            "PYTHONUNBUFFERED": "1",
        }
        try:
            server = start([shipyard, "server"], engine_env, tmp_path / "server.log", REPO_ROOT)
            running.append((server, tmp_path / "server.log"))
            for n in (1, 2):
                log = tmp_path / f"worker{n}.log"
                running.append((start([shipyard, "worker"], engine_env, log, REPO_ROOT), log))
            api = start(
                [sys.executable, "-c", BLOCKER, str(api_port)],
                api_env,
                tmp_path / "api.log",
                REPO_ROOT / "apps" / "api",
            )
            running.append((api, tmp_path / "api.log"))
            engine = f"http://127.0.0.1:{engine_port}"
            eventually(lambda: call(f"{engine}/healthz"), "the engine server", running)
            eventually(lambda: call(f"http://127.0.0.1:{api_port}/"), "the API", running)

            token = key.sign("user-42", issuer=supabase.issuer)
            payload = {
                "title": "rehearsal",
                "rows": [{"label": "a", "value": 2}, {"label": "b", "value": 5}],
            }
            # Without a token the API refuses; with an unverifiable one too.
            refused = call(f"http://127.0.0.1:{api_port}/reports", payload)
            assert refused is not None and refused[0] == 401, refused
            created = call(f"http://127.0.0.1:{api_port}/reports", payload, token=token)
            assert created is not None and created[0] == 202, created
            run_id = created[1]["id"]
            assert run_id.startswith("run_")

            def done() -> Any:
                got = call(f"http://127.0.0.1:{api_port}/reports/{run_id}", token=token)
                return got if got and got[1].get("status") == "COMPLETED" else None

            status, report = eventually(done, "the report run to complete", running)
            assert status == 200
            assert report["output"] is not None, report
            # Another user cannot read it.
            other = key.sign("user-99", issuer=supabase.issuer)
            hidden = call(f"http://127.0.0.1:{api_port}/reports/{run_id}", token=other)
            assert hidden is not None and hidden[0] == 404, hidden
        finally:
            for process, _ in running:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            for process, _ in running:
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)

    # A worker ran it (the engine recorded which worker; the API process never opened a db).
    assert not (app_root / ".shipyard").exists()
    with psycopg.connect(database) as conn:
        public = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
        engine_tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'shipyard'"
        ).fetchone()
        status_row = conn.execute(
            "SELECT status FROM shipyard.runs WHERE id = %s", (run_id,)
        ).fetchone()
    assert public == [], f"engine tables in public: {public}"
    assert engine_tables is not None and engine_tables[0] > 5
    assert status_row == ("COMPLETED",)
    for _, log in running:
        assert engine_key not in log.read_text()
