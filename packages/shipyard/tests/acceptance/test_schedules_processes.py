"""Every tick of a schedule fires exactly once across several real worker processes.

Three worker processes (each its own engine, store connections and scheduler service) share
a database and a clock (:class:`~shipyard.testing.fileclock.FileClock`: the time is a number in
a file this test moves). The test moves the time over 200 ticks of a per-minute declarative
schedule, one tick at a time; every process sees every tick due at once and races for it.
Each nominal tick must create exactly one run.
"""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from acceptance_support import PgProject, Procs, Project, make_project, wait_until

from shipyard.testing.fileclock import FileClock
from shipyard.testing.postgres import databases, require_postgres

TICKS = 200
START_MS = 1_767_225_630_000  # 2026-01-01T00:00:30Z
WORKER = """
import asyncio, sys

from shipyard import schedules
from shipyard.config import load_settings
from shipyard.engine.engine import Engine
from shipyard.testing.fileclock import FileClock
from shipyard.worker.worker import Worker


@schedules.task(id="every-minute", cron="* * * * *")
async def every_minute(payload):
    return payload.timestamp.isoformat()


async def main():
    settings = load_settings(project_root=sys.argv[1], database_url=sys.argv[2])
    engine = Engine(settings, clock=FileClock(sys.argv[3]))
    worker = Worker(engine, concurrency=4, heartbeat_interval=5.0, scheduler_interval=0.01)
    await worker.start()
    await asyncio.Event().wait()


asyncio.run(main())
"""


@pytest.fixture(params=["sqlite", "postgres"])
async def any_project(
    request: pytest.FixtureRequest, tmp_path: Path, procs: Procs
) -> AsyncIterator[Project]:
    base = make_project(tmp_path / "project", procs)
    if request.param == "sqlite":
        yield base
        return
    require_postgres()
    url = await databases.create()
    try:
        yield PgProject(root=base.root, procs=procs, url=url)
    finally:
        procs.kill_all()
        await databases.drop(url)


def iso(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.mark.slow
async def test_three_worker_processes_fire_each_of_200_ticks_once(any_project: Project) -> None:
    project = any_project
    clock_file = project.root / "clock"
    FileClock.write(clock_file, START_MS)
    script = project.root / "scheduled_worker.py"
    script.write_text(WORKER)
    workers = [
        project.procs.spawn(
            [sys.executable, str(script), str(project.root), project.database_url, str(clock_file)],
            env=project.env(),
            cwd=project.root,
            name=f"w{i}",
        )
        for i in range(3)
    ]
    for worker in workers:
        await project.wait_registered(worker)
    schedule = await wait_until(
        lambda: project.query("SELECT id, next_run FROM schedules"),
        timeout=30,
        what="the declarative schedule",
        context=project.procs.dump,
    )
    schedule_id = schedule[0]["id"]
    first_tick = START_MS + 30_000
    assert schedule[0]["next_run"] == first_tick

    def fired() -> int:
        rows = project.query("SELECT COUNT(*) AS n FROM runs WHERE schedule_id = ?", [schedule_id])
        return int(rows[0]["n"]) if rows else 0

    for i in range(TICKS):
        FileClock.write(clock_file, first_tick + i * 60_000 + 1)
        await wait_until(
            lambda n=i + 1: fired() >= n,
            timeout=30,
            what=f"tick {i + 1}",
            interval=0.005,
            context=project.procs.dump,
        )
    rows = project.query(
        "SELECT payload, idempotency_key FROM runs WHERE schedule_id = ?", [schedule_id]
    )
    keys = sorted(r["idempotency_key"] for r in rows)
    expected = [f"schedule:{schedule_id}:{iso(first_tick + i * 60_000)}" for i in range(TICKS)]
    assert len(rows) == TICKS, f"{len(rows)} runs for {TICKS} ticks"
    assert keys == sorted(expected)  # each nominal tick once, none missing
    assert sorted(json.loads(r["payload"])["timestamp"] for r in rows) == [
        iso(first_tick + i * 60_000) for i in range(TICKS)
    ]


REAL_TIME_TASKS = """
from shipyard import schedules


@schedules.task(id="every-minute-real", cron="* * * * *", ttl="5m")
async def every_minute_real(payload):
    return payload.timestamp.isoformat()
"""


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.timeout(240)  # two minute boundaries on the real clock: up to 2 min of waiting
async def test_real_time_two_minute_boundaries_two_runs(project: Project) -> None:
    """On the real clock, two `shipyard worker` processes: the next two minute boundaries
    create two runs, one each, with the nominal minutes as timestamps (takes up to 2 min)."""
    project.write_tasks("minutely", REAL_TIME_TASKS)
    workers = [project.spawn_worker(name=f"w{i}") for i in range(2)]
    for worker in workers:
        await project.wait_registered(worker)
    rows = await wait_until(
        lambda: (
            found
            if len(found := project.query("SELECT payload FROM runs WHERE schedule_id IS NOT NULL"))
            >= 2
            else None
        ),
        timeout=150,
        what="two ticks",
        interval=0.5,
        context=project.procs.dump,
    )
    stamps = sorted(json.loads(r["payload"])["timestamp"] for r in rows)
    assert len(stamps) == len(set(stamps)) == 2
    assert all(s.endswith(":00.000Z") for s in stamps)
    first, second = (datetime.datetime.fromisoformat(s.replace("Z", "+00:00")) for s in stamps)
    assert second - first == datetime.timedelta(minutes=1)
