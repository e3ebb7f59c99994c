"""Shared fixtures: a real SQLite file per test, an engine, and an in-process worker.

Tests define their tasks inside the test function; the task registry and global hooks are
emptied before each test and restored after, so task ids never clash across tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.config import Settings, load_settings
from shipyard.engine.engine import Engine
from shipyard.engine.registry import set_engine
from shipyard.sdk.task import registry
from shipyard.sdk.tasks import global_hooks
from shipyard.testing.postgres import databases, require_postgres
from shipyard.worker.worker import Worker

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def isolated_registry() -> Iterator[None]:
    """Each test starts with no tasks and no global hooks."""
    saved_tasks = dict(registry._tasks)
    saved_hooks = {k: list(v) for k, v in global_hooks._hooks.items()}
    registry.clear()
    global_hooks.clear()
    yield
    registry.clear()
    registry._tasks.update(saved_tasks)
    global_hooks.clear()
    for name, hooks in saved_hooks.items():
        global_hooks._hooks[name].extend(hooks)


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
    """Settings on a fresh database, with short heartbeats so lease tests run fast."""
    (tmp_path / "trigger").mkdir(exist_ok=True)
    return load_settings(
        project_root=tmp_path,
        database_url=database_url,
        heartbeat_interval=0.2,
        poll_interval=0.1,
        retries_default={"max_attempts": 3, "min_timeout_ms": 10, "max_timeout_ms": 50},
    )


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[Engine]:
    """A started engine, installed as the process default."""
    instance = Engine(settings)
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
