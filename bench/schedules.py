"""Schedules: ticks fired exactly once by N schedulers over a simulated day, tick lateness with
a live worker on the real clock, and the scheduler's cost with 10,000 active schedules.

Three parts (``--parts`` picks some), each on a fresh database (a temp SQLite file, or with
``--backend postgres`` a fresh database on the local server, dropped afterwards):

* ``once`` — ``--engines`` engines (each its own store and connections) share one FakeClock and
  a per-minute schedule; the clock moves one minute at a time over ``--ticks`` minutes (1,440:
  a day) and after each step every engine's ``fire_due_schedules`` runs at the same moment, so
  they all race for every tick. Prints ticks, runs, duplicates and missing ticks.
* ``lateness`` — one in-process worker (scheduler service included) on the real clock,
  ``--lateness-schedules`` per-minute schedules for ``--lateness-minutes`` minute boundaries;
  lateness = run created − nominal tick (fire) and run started − nominal tick (start), p50/p99.
* ``load`` — ``--load-schedules`` active per-minute schedules and the scheduler service alone
  (no executor): process CPU seconds over one minute that holds one tick, and fire lateness of
  that tick's runs (p50/p99/max).

Prints one JSON line per part and one human line. No assertion on times.

    uv run python bench/schedules.py [--backend sqlite|postgres] [--parts once,lateness,load]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from shipyard import schedules
from shipyard.clock import FakeClock
from shipyard.config import Settings, load_settings
from shipyard.engine.definitions import Definitions, use_definitions
from shipyard.engine.engine import Engine
from shipyard.engine.registry import set_engine
from shipyard.models.schedules import ScheduledPayload
from shipyard.worker.services import Outage, SchedulerService
from shipyard.worker.worker import Worker


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


@asynccontextmanager
async def database(backend: str) -> AsyncIterator[tuple[str, Path]]:
    """A fresh database URL and a temp project folder."""
    folder = Path(tempfile.mkdtemp(prefix="shipyard-bench-schedules-"))
    (folder / "trigger").mkdir()
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'shipyard.db'}", folder
        return
    from shipyard.testing.postgres import databases

    url = await databases.create()
    try:
        yield url, folder
    finally:
        await databases.drop(url)


def settings_for(url: str, folder: Path) -> Settings:
    return load_settings(
        project_root=folder,
        database_url=url,
        secret_key="bench-secret-key-bench-secret-key",
        log_level="warning",
    )


def define(definitions: Definitions, cron: str | None) -> None:
    with use_definitions(definitions):

        @schedules.task(id="tick", cron=cron)
        async def tick(payload: ScheduledPayload) -> None:
            return None


async def part_once(backend: str, engines_n: int, ticks: int) -> dict[str, Any]:
    async with database(backend) as (url, folder):
        definitions = Definitions()
        define(definitions, "* * * * *")
        start_ms = 1_767_225_630_000  # 2026-01-01T00:00:30Z
        clock = FakeClock(start_ms=start_ms)
        settings = settings_for(url, folder)
        engines = [Engine(settings, clock=clock, definitions=definitions) for _ in range(engines_n)]
        for engine in engines:
            await engine.start()
        await engines[0].sync_declarative_schedules()
        started = time.perf_counter()
        for _ in range(ticks):
            await clock.advance(60)
            await asyncio.gather(*(e.fire_due_schedules() for e in engines))
        elapsed = time.perf_counter() - started
        schedule = (await engines[0].list_schedules()).data[0]
        stamps: list[str] = []
        cursor = None
        while True:
            page = await engines[0].list_runs(schedule_id=schedule.id, limit=1000, cursor=cursor)
            stamps += [run.payload["timestamp"] for run in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        for engine in engines:
            await engine.close()
    return {
        "part": "once",
        "backend": backend,
        "engines": engines_n,
        "ticks": ticks,
        "runs": len(stamps),
        "duplicates": len(stamps) - len(set(stamps)),
        "missing": ticks - len(set(stamps)),
        "wall_s": round(elapsed, 2),
    }


async def wait_for_boundary(margin_s: float = 2.0) -> None:
    """Sleep until ``margin_s`` before the next minute boundary has passed, if too close."""
    into = time.time() % 60
    if into > 60 - margin_s:
        await asyncio.sleep(60 - into + 0.5)


async def part_lateness(backend: str, count: int, minutes: int) -> dict[str, Any]:
    async with database(backend) as (url, folder):
        definitions = Definitions()
        define(definitions, None)
        engine = Engine(settings_for(url, folder), definitions=definitions)
        await engine.start()
        set_engine(engine)
        worker = Worker(engine, concurrency=max(10, count))
        await worker.start()
        await wait_for_boundary()
        for i in range(count):
            await engine.create_schedule(task="tick", cron="* * * * *", deduplication_key=f"s{i}")
        first = (int(time.time()) // 60 + 1) * 60
        last = first + (minutes - 1) * 60
        await asyncio.sleep(max(0.0, last - time.time() + 3))
        fire: list[float] = []
        start: list[float] = []
        page = await engine.list_runs(limit=1000)
        for run in page.items:
            nominal_s = datetime.datetime.fromisoformat(
                run.payload["timestamp"].replace("Z", "+00:00")
            ).timestamp()
            fire.append((run.created_at.timestamp() - nominal_s) * 1000)
            if run.started_at is not None:
                start.append((run.started_at.timestamp() - nominal_s) * 1000)
        await worker.stop(grace=1)
        set_engine(None)
        await engine.close()
    return {
        "part": "lateness",
        "backend": backend,
        "schedules": count,
        "ticks": minutes,
        "runs": len(fire),
        "fire_p50_ms": round(percentile(fire, 50), 1),
        "fire_p99_ms": round(percentile(fire, 99), 1),
        "start_p50_ms": round(percentile(start, 50), 1),
        "start_p99_ms": round(percentile(start, 99), 1),
        "start_max_ms": round(max(start, default=float("nan")), 1),
    }


async def part_load(backend: str, count: int) -> dict[str, Any]:
    async with database(backend) as (url, folder):
        definitions = Definitions()
        define(definitions, None)
        engine = Engine(settings_for(url, folder), definitions=definitions)
        await engine.start()
        created = time.perf_counter()
        await asyncio.gather(
            *(
                engine.create_schedule(task="tick", cron="* * * * *", deduplication_key=f"s{i}")
                for i in range(count)
            )
        )
        create_s = time.perf_counter() - created
        await wait_for_boundary(margin_s=5)
        tick_s = (int(time.time()) // 60 + 1) * 60
        service = SchedulerService(
            engine.fire_due_schedules, engine.now, 0.25, Outage(engine.is_unavailable)
        )
        cpu0 = time.process_time()
        wall0 = time.time()
        service.start()
        await asyncio.sleep(max(0.0, tick_s + 59 - time.time()))
        await service.stop()
        cpu = time.process_time() - cpu0
        wall = time.time() - wall0
        fire: list[float] = []
        cursor = None
        while True:
            page = await engine.list_runs(limit=1000, cursor=cursor)
            fire += [(r.created_at.timestamp() - tick_s) * 1000 for r in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        await engine.close()
    return {
        "part": "load",
        "backend": backend,
        "schedules": count,
        "create_per_s": round(count / create_s, 1),
        "runs_fired": len(fire),
        "cpu_s_per_min": round(cpu * 60 / wall, 2),
        "fire_p50_ms": round(percentile(fire, 50), 1),
        "fire_p99_ms": round(percentile(fire, 99), 1),
        "fire_max_ms": round(max(fire, default=float("nan")), 1),
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--parts", default="once,lateness,load")
    ap.add_argument("--engines", type=int, default=3)
    ap.add_argument("--ticks", type=int, default=1440)
    ap.add_argument("--lateness-schedules", type=int, default=20)
    ap.add_argument("--lateness-minutes", type=int, default=2)
    ap.add_argument("--load-schedules", type=int, default=10_000)
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    results = []
    if "once" in parts:
        results.append(await part_once(args.backend, args.engines, args.ticks))
    if "lateness" in parts:
        results.append(
            await part_lateness(args.backend, args.lateness_schedules, args.lateness_minutes)
        )
    if "load" in parts:
        results.append(await part_load(args.backend, args.load_schedules))
    for result in results:
        result["loadavg_1m"] = round(os.getloadavg()[0], 2)
        print(json.dumps(result), flush=True)
        print(f"{sys.argv[0]}: {result}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
