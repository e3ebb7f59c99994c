"""``shipyard schedules list|get|create|update|activate|deactivate|delete`` and
``shipyard runs list --schedule``, as real ``python -m shipyard`` processes against a temp
project whose worker registered a scheduled task: ``--json`` shapes, the deduplication-key
update, and bad input as one line with exit code 2 (1 for an unknown id)."""

from __future__ import annotations

import pytest
from acceptance_support import Project, run_cli

pytestmark = pytest.mark.timeout(120)

TASKS = """
from shipyard import schedules


@schedules.task(id="nightly", cron={"pattern": "0 3 * * *", "timezone": "Europe/London"})
async def nightly(payload):
    return payload.timestamp.isoformat()


@schedules.task(id="per-customer")
async def per_customer(payload):
    return payload.external_id
"""


async def test_schedules_commands(project: Project) -> None:
    project.write_tasks("tasks", TASKS)
    worker = project.spawn_worker()
    await project.wait_registered(worker)

    listed = await run_cli(project, "schedules", "list", "--json")
    assert listed.code == 0, listed
    data = listed.json()
    assert data["pagination"] == {"currentPage": 1, "totalPages": 1, "count": 1}
    [nightly] = data["data"]
    assert (nightly["type"], nightly["task"], nightly["timezone"]) == (
        "DECLARATIVE",
        "nightly",
        "Europe/London",
    )
    assert nightly["generator"]["description"] == "At 03:00 every day"

    args = ("--task", "per-customer", "--cron", "0 9 * * 1-5", "--deduplication-key", "c-1")
    created = await run_cli(project, "schedules", "create", *args, "--external-id", "c1", "--json")
    assert created.code == 0, created
    schedule = created.json()
    again = await run_cli(
        project, "schedules", "create", *args[:3], "0 10 * * *", *args[4:], "--json"
    )
    assert again.json()["id"] == schedule["id"]  # the same key updates
    assert again.json()["generator"]["expression"] == "0 10 * * *"

    got = await run_cli(project, "schedules", "get", schedule["id"])
    assert got.code == 0 and "per-customer (imperative)" in got.stdout, got
    assert "At 10:00" in got.stdout and "c-1" in got.stdout
    updated = await run_cli(
        project, "schedules", "update", schedule["id"], "--timezone", "Asia/Tokyo", "--json"
    )
    assert updated.json()["timezone"] == "Asia/Tokyo"
    off = await run_cli(project, "schedules", "deactivate", schedule["id"], "--json")
    assert off.json()["active"] is False and off.json()["nextRun"] is None
    on = await run_cli(project, "schedules", "activate", schedule["id"])
    assert on.code == 0 and "activated" in on.stdout
    text = await run_cli(project, "schedules", "list", "--task", "per-customer")
    assert text.code == 0 and schedule["id"] in text.stdout and "page 1 of 1" in text.stdout
    runs = await run_cli(project, "runs", "list", "--schedule", schedule["id"], "--json")
    assert runs.code == 0 and runs.json() == []
    deleted = await run_cli(project, "schedules", "delete", schedule["id"], "--json")
    assert deleted.code == 0 and deleted.json()["id"] == schedule["id"]

    seconds = await run_cli(
        project,
        "schedules",
        "create",
        "--task",
        "per-customer",
        "--cron",
        "0 0 9 * * *",
        "--deduplication-key",
        "x",
    )
    assert seconds.code == 2 and "seconds are not allowed" in seconds.stderr, seconds
    assert "Traceback" not in seconds.stderr
    zone = await run_cli(
        project,
        "schedules",
        "create",
        "--task",
        "per-customer",
        "--cron",
        "0 0 * * *",
        "--deduplication-key",
        "x",
        "--timezone",
        "Mars/Olympus",
    )
    assert zone.code == 2 and "Unknown time zone 'Mars/Olympus'" in zone.stderr, zone
    missing = await run_cli(project, "schedules", "get", "sched_nope")
    assert missing.code == 1 and "not found" in missing.stderr, missing
    declarative = await run_cli(project, "schedules", "delete", nightly["id"])
    assert declarative.code == 2 and "declarative" in declarative.stderr, declarative
