"""Shared fixtures: a real SQLite file (or PostgreSQL database) per test, an engine on an
injectable clock, and in-process workers.

Tests define their tasks inside the test function; each test gets its own
:class:`~shipyard.engine.definitions.Definitions` (tasks, queues, global hooks), so task ids
never clash across tests. A test marked ``@pytest.mark.fake_clock`` gets an engine on a
:class:`~shipyard.clock.FakeClock` (the ``clock`` fixture): it moves time with
``await clock.advance(seconds)`` instead of sleeping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.clock import Clock, FakeClock, SystemClock
from shipyard.config import Settings, load_settings
from shipyard.engine.definitions import Definitions, use_definitions
from shipyard.engine.engine import Engine
from shipyard.engine.registry import set_engine
from shipyard.testing.postgres import databases, require_postgres
from shipyard.worker.worker import Worker

# Make the next PostgreSQL test databases and reset finished ones for reuse in background
# threads (shipyard.testing.recycler: a DROP DATABASE per test checkpoints the server).
databases.background = True

REPO_ROOT = Path(__file__).resolve().parents[3]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fake_clock: the engine runs on a FakeClock")
    config.addinivalue_line(
        "markers", "long: takes a minute or more of wall time (mostly waiting); runs first"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long tests first, then slow ones: pytest-xdist hands tests out in order, so a test that
    waits for minutes starts while the rest of the suite runs beside it instead of at the
    end (the suite's wall time stays the longest test, not the sum of the last ones)."""

    def weight(item: pytest.Item) -> int:
        if item.get_closest_marker("long"):
            return 0
        return 1 if item.get_closest_marker("slow") else 2

    items.sort(key=weight)  # stable: the collection order holds within each group


@pytest.fixture(autouse=True)
def definitions() -> Iterator[Definitions]:
    """Each test defines tasks, queues and global hooks into a fresh definitions object."""
    with use_definitions(Definitions()) as fresh:
        yield fresh


@pytest.fixture
def clock(request: pytest.FixtureRequest) -> Clock:
    """The engine's clock: a FakeClock under ``@pytest.mark.fake_clock``, else the real one."""
    if request.node.get_closest_marker("fake_clock") is not None:
        return FakeClock()
    return SystemClock()


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database of each backend: a SQLite file, or a PostgreSQL database cloned from a
    migrated template (skipped without a server, failed under SHIPYARD_REQUIRE_POSTGRES=1)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shipyard.db'}"
        return
    require_postgres()
    url = await databases.create()
    yield url
    await databases.drop(url)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings on a fresh database. Heartbeats every second (a 3 s lease): lease tests drive a
    FakeClock, and a loaded CI machine must not starve a live worker of its lease."""
    (tmp_path / "trigger").mkdir(exist_ok=True)
    return load_settings(
        project_root=tmp_path,
        database_url=database_url,
        heartbeat_interval=1.0,
        poll_interval=0.1,
        retries_default={"max_attempts": 3, "min_timeout_ms": 10, "max_timeout_ms": 50},
    )


@pytest.fixture
async def engine(settings: Settings, clock: Clock) -> AsyncIterator[Engine]:
    """A started engine, installed as the process default."""
    instance = Engine(settings, clock=clock)
    await instance.start()
    set_engine(instance)
    yield instance
    set_engine(None)
    await instance.close()


@pytest.fixture
async def start_worker(engine: Engine) -> AsyncIterator[Callable[..., Any]]:
    """``await start_worker(concurrency=5)`` starts an in-process worker, stopped at teardown."""
    workers: list[Worker] = []

    async def start(**kwargs: Any) -> Worker:
        kwargs.setdefault("concurrency", 10)
        worker = Worker(engine, **kwargs)
        await worker.start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        await worker.stop(grace=0)
