"""A real remote engine for the remote client's tests: ``shipyard server`` (uvicorn on a free
port) and ``shipyard worker`` as child processes of a temp project, on the test's database
(SQLite file or PostgreSQL), sharing one secret key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from acceptance_support import (
    HEARTBEAT,
    POLL,
    Child,
    Procs,
    Project,
    free_port,
    listens,
    make_project,
    wait_until,
)

SECRET_KEY = "sk_test_remote_client_0123456789abcdefghijklmnop"
TASKS = """
from shipyard import logger, metadata, task, wait


@task(id="double")
async def double(payload):
    logger.info("doubling", n=payload["n"])
    metadata.set("seen", payload["n"])
    return payload["n"] * 2


@task(id="approve")
async def approve(payload):
    result = await wait.for_token(payload["token"])
    return {"approved": result.unwrap()}


@task(id="later")
async def later(payload):
    return "late"
"""


@dataclass
class UrlProject(Project):
    """A temp project on any database URL (the ``database_url`` fixture's)."""

    url: str = ""

    @property
    def database_url(self) -> str:
        return self.url


def url_project(root: Path, procs: Procs, database_url: str) -> UrlProject:
    """A fresh project folder (``trigger/`` package) whose engine database is ``database_url``."""
    base = make_project(root, procs)
    return UrlProject(root=base.root, procs=procs, url=database_url)


@dataclass
class RemoteEngine:
    """A running engine server (and worker) of ``project``: its URL and key."""

    project: Project
    url: str
    server: Child
    worker: Child | None = None

    def env(self, **extra: str) -> dict[str, str]:
        """The project's environment plus the engine's database and key."""
        return self.project.env(SHIPYARD_SECRET_KEY=SECRET_KEY, **extra)


async def start_remote_engine(
    project: Project, *, worker: bool = True, tasks: str = TASKS
) -> RemoteEngine:
    """Start ``shipyard server`` (and a worker) on the project's database; wait until the
    server answers ``/healthz`` and the worker registered its tasks."""
    (project.root / "trigger" / "remote_tasks.py").write_text(tasks, encoding="utf-8")
    env = {"SHIPYARD_SECRET_KEY": SECRET_KEY}
    for _ in range(3):
        port = free_port()
        server = project.spawn_shipyard("server", "--port", str(port), name="server", **env)
        url = f"http://127.0.0.1:{port}"

        def healthy(server: Child = server, port: int = port, url: str = url) -> Any:
            if not server.alive():
                if "already in use" in server.output():
                    return "taken"  # by a test running beside this one: another port
                raise AssertionError(f"the server exited:\n{server.output()[-4000:]}")
            if not listens(server.pid, port):
                return None  # still starting, or another server holds the port
            try:
                response = httpx.get(f"{url}/healthz", timeout=2)
            except httpx.HTTPError:
                return None
            return response.json() if response.status_code == 200 else None

        found = await wait_until(
            healthy, timeout=60, what="the engine server", context=project.procs.dump
        )
        if found != "taken":
            break
    else:
        raise AssertionError(f"no free port for the engine server:\n{project.procs.dump()}")
    remote = RemoteEngine(project=project, url=url, server=server)
    if worker:
        remote.worker = project.spawn_shipyard(
            "worker",
            "--heartbeat",
            str(HEARTBEAT),
            "--poll",
            str(POLL),
            "--concurrency",
            "4",
            name="worker",
            **env,
        )

        def registered() -> bool:
            assert remote.worker is not None
            if not remote.worker.alive():
                raise AssertionError(f"the worker exited:\n{remote.worker.output()[-4000:]}")
            health = healthy()
            return bool(health and int(str(health.get("tasks", 0))) > 0)

        await wait_until(registered, timeout=60, what="the worker", context=project.procs.dump)
    return remote
