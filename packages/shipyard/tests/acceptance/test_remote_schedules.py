"""Schedules through the remote client: ``shipyard.schedules`` in a process that knows only an
engine server's URL and key (a real ``shipyard server`` and worker on SQLite and PostgreSQL),
returning the same objects an engine on the database returns; and ``shipyard schedules …
--api-url`` in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from acceptance_support import Procs, clean_env
from remote_support import SECRET_KEY, TASKS, RemoteEngine, start_remote_engine, url_project

import shipyard
from shipyard import schedules
from shipyard.client import RemoteClient
from shipyard.config import Settings, load_settings
from shipyard.engine.engine import Engine
from shipyard.errors import ScheduleNotFoundError, ValidationError
from shipyard.models.schedules import Schedule
from shipyard.sdk.backend import default_backend

pytestmark = pytest.mark.timeout(180)

SCHEDULED_TASKS = (
    TASKS
    + """
from shipyard import schedules


@schedules.task(
    id="nightly",
    cron={
        "pattern": "0 3 * * *",
        "timezone": "Europe/Paris",
        "environments": ["development", "staging"],
    },
)
async def nightly(payload):
    return payload.timestamp.isoformat()
"""
)


@pytest.fixture
async def remote(tmp_path: Path, procs: Procs, database_url: str) -> RemoteEngine:
    """The engine server and a worker (with a declarative schedule), on this test's database."""
    project = url_project(tmp_path / "engine", procs, database_url)
    return await start_remote_engine(project, tasks=SCHEDULED_TASKS)


@pytest.fixture
async def app_settings(remote: RemoteEngine, tmp_path: Path) -> AsyncIterator[Settings]:
    """This process configured as a remote app: an API URL and a key, nothing else."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "0"\n')
    settings = shipyard.configure(project_root=app, api_url=remote.url, secret_key=SECRET_KEY)
    assert isinstance(default_backend(), RemoteClient)
    yield settings
    await shipyard.aclose()
    assert not (app / ".shipyard").exists(), "a remote app opened a database of its own"


async def _in_process(remote: RemoteEngine, schedule_id: str) -> Schedule:
    """The schedule as an engine on the same database returns it."""
    local = Engine(
        load_settings(
            project_root=remote.project.root,
            database_url=remote.project.database_url,
            secret_key=SECRET_KEY,
        )
    )
    try:
        await local.start()
        return await local.retrieve_schedule(schedule_id)
    finally:
        await local.close()


async def test_schedules_over_http_are_the_engines(
    remote: RemoteEngine, app_settings: Settings
) -> None:
    created = await schedules.create(
        task="double",
        cron="0 9 * * 1-5",
        deduplication_key="user_1",
        timezone="America/New_York",
        external_id="u1",
    )
    assert created.id.startswith("sched_") and created.type == "IMPERATIVE"
    assert (created.task, created.active, created.external_id) == ("double", True, "u1")
    assert created.generator.expression == "0 9 * * 1-5" and created.generator.description
    assert created.next_run is not None and created.next_run.tzinfo is not None
    assert created.environments == ()
    # The same object an engine on the database returns, field for field.
    assert created == await _in_process(remote, created.id)

    # The same deduplication key updates that schedule instead of creating another.
    again = await schedules.create(
        task="double", cron="30 18 * * *", deduplication_key="user_1", window="10%"
    )
    assert again.id == created.id
    assert (again.generator.expression, again.timezone, again.window) == (
        "30 18 * * *",
        "UTC",
        "10%",
    )
    assert await schedules.retrieve(created.id) == again

    listed = await schedules.list()
    assert listed.pagination.count == 2 and listed.pagination.current_page == 1
    by_type = {s.type: s for s in listed.data}
    assert by_type["IMPERATIVE"] == again
    nightly = by_type["DECLARATIVE"]
    assert (nightly.task, nightly.timezone) == ("nightly", "Europe/Paris")
    assert nightly.environments == ("DEVELOPMENT", "STAGING")
    assert nightly == await _in_process(remote, nightly.id)
    only = await schedules.list(task="double", per_page=1)
    assert [s.id for s in only.data] == [created.id] and only.pagination.count == 1
    second = await schedules.list(page=2, per_page=1)
    assert len(second.data) == 1 and second.pagination.total_pages == 2

    updated = await schedules.update(created.id, cron="0 7 * * *", external_id="u2")
    assert (updated.generator.expression, updated.external_id) == ("0 7 * * *", "u2")
    assert updated.window == "10%" and updated.deduplication_key == "user_1"

    off = await schedules.deactivate(created.id)
    assert off.active is False and off.next_run is None
    on = await schedules.activate(created.id)
    assert on.active is True and on.next_run is not None
    assert on == await _in_process(remote, created.id)

    zones = await schedules.timezones()
    assert zones[0] == "UTC" and "Europe/Paris" in zones
    assert "UTC" not in await schedules.timezones(exclude_utc=True)

    # Bad input is the engine's ValidationError with its message.
    with pytest.raises(ValidationError, match="seconds"):
        await schedules.create(task="double", cron="0 0 9 * * *", deduplication_key="bad")

    deleted = await schedules.delete(created.id)
    assert deleted.id == created.id
    with pytest.raises(ScheduleNotFoundError) as missing:
        await schedules.retrieve(created.id)
    assert created.id in str(missing.value)
    with pytest.raises(ScheduleNotFoundError):
        await schedules.delete(created.id)
    with pytest.raises(ScheduleNotFoundError):
        await schedules.activate("sched_nope")
    assert [s.id for s in (await schedules.list()).data] == [nightly.id]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_schedules_cli_with_api_url(remote: RemoteEngine, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shipyard", "schedules", *args, "--api-url", remote.url],
            cwd=elsewhere,
            env=clean_env(COLUMNS="200", SHIPYARD_SECRET_KEY=SECRET_KEY),
            capture_output=True,
            text=True,
            timeout=90,
        )

    made = cli("create", "--task", "double", "--cron", "0 9 * * *", "--deduplication-key", "k1")
    assert made.returncode == 0, made.stderr
    listed = cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    body = json.loads(listed.stdout)
    assert body["pagination"]["count"] == 2
    assert {s["task"] for s in body["data"]} == {"double", "nightly"}
    missing = cli("get", "sched_nope")
    assert missing.returncode == 1 and "sched_nope" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert not (elsewhere / ".shipyard").exists(), "a remote command opened a database here"
