"""A run waits for a worker that has its task, then a real ``shipyard worker`` runs it.

Proves, with real processes on both backends: ``shipyard trigger`` of a task no worker has
leaves a PENDING_VERSION run (not an error); a ``shipyard worker`` started afterwards logs
its version (a content hash of the task files, or ``SHIPYARD_VERSION``), picks the run up and
COMPLETES it on that version; ``shipyard versions list --json``, ``shipyard workers list
--json`` and ``shipyard runs get --json`` show it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from acceptance_support import PgProject, Procs, Project, make_project, wait_until

from shipyard.config import load_settings
from shipyard.discovery import code_version
from shipyard.testing.postgres import databases, require_postgres

pytestmark = pytest.mark.timeout(90)

TASKS = """
from shipyard import task


@task(id="summarise")
async def summarise(payload, ctx):
    return {"total": sum(payload["values"]), "version": ctx.run.version}
"""


@pytest.fixture(params=["sqlite", "postgres"])
async def any_project(
    request: pytest.FixtureRequest, tmp_path: Path, procs: Procs
) -> AsyncIterator[Project]:
    """A temp project on SQLite, or on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        project = make_project(tmp_path / "project", procs)
        project.write_tasks("summaries", TASKS)
        yield project
        return
    require_postgres()
    url = await databases.create()
    make_project(tmp_path / "project", procs)
    pg = PgProject(root=tmp_path / "project", procs=procs, url=url)
    pg.write_tasks("summaries", TASKS)
    try:
        yield pg
    finally:
        procs.kill_all()
        await databases.drop(url)


def cli_json(project: Project, *args: str) -> object:
    done = project.cli(*args, "--json")
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout)


async def test_a_worker_started_after_the_trigger_runs_the_pending_run(
    any_project: Project,
) -> None:
    project = any_project
    triggered = cli_json(project, "trigger", "summarise", "--payload", '{"values": [1, 2, 3]}')
    assert isinstance(triggered, dict)
    run_id = triggered["id"]
    assert project.run_row(run_id)["status"] == "PENDING_VERSION"
    assert cli_json(project, "versions", "list") == []

    expected = code_version(load_settings(project_root=project.root))
    worker = project.spawn_worker()
    await project.wait_registered(worker)
    row = await project.wait_status(run_id, "COMPLETED", timeout=30)
    assert row["version"] == expected
    assert json.loads(row["output"]) == {"total": 6, "version": expected}
    await wait_until(
        lambda: f"version {expected}" in worker.output(),
        timeout=10,
        what="the worker's start line with its version",
        context=project.procs.dump,
    )

    versions = cli_json(project, "versions", "list")
    assert isinstance(versions, list)
    assert [(v["version"], v["task_ids"], v["live_workers"]) for v in versions] == [
        (expected, ["summarise"], 1)
    ]
    workers = cli_json(project, "workers", "list")
    assert isinstance(workers, list)
    assert [(w["version"], w["pid"]) for w in workers] == [(expected, worker.pid)]
    shown = cli_json(project, "runs", "get", run_id)
    assert isinstance(shown, dict)
    assert (shown["status"], shown["version"]) == ("COMPLETED", expected)


async def test_shipyard_version_names_the_workers_version(project: Project) -> None:
    project.write_tasks("summaries", TASKS)
    triggered = cli_json(project, "trigger", "summarise", "--payload", '{"values": [4]}')
    assert isinstance(triggered, dict)
    worker = project.spawn_shipyard(
        "worker", "--heartbeat", "0.2", "--poll", "0.1", name="worker", SHIPYARD_VERSION="9f1c2ab"
    )
    row = await project.wait_status(triggered["id"], "COMPLETED", timeout=30)
    assert row["version"] == "9f1c2ab"
    assert "version 9f1c2ab" in worker.output()
