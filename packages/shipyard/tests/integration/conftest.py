"""Helpers for the integration tests: polling a condition, and engines with custom settings.

Tests here use a real SQLite file and a real in-process worker (fixtures from
``tests/conftest.py``); nothing is mocked. Outcomes are awaited with
``engine.wait_for_final`` or by polling a condition, never with a fixed sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from shipyard.config import load_settings
from shipyard.engine.engine import Engine
from shipyard.engine.registry import set_engine
from shipyard.store.postgres import PostgresStore
from shipyard.store.protocol import MigrateParams
from shipyard.testing.postgres import databases, require_postgres
from shipyard.worker.worker import Worker

Condition = Callable[[], Any]


async def _wait_until(condition: Condition, timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll ``condition`` (sync or async) until it returns a truthy value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


@pytest.fixture
def wait_until() -> Callable[..., Awaitable[Any]]:
    """``await wait_until(lambda: cond, timeout=5)``: poll until truthy."""
    return _wait_until


@pytest.fixture
async def custom_engine(
    tmp_path: Path, database_url: str
) -> AsyncIterator[Callable[..., Awaitable[Engine]]]:
    """``await custom_engine(**settings)``: an engine (installed as default) plus a worker.

    Define the test's tasks first: the worker registers the tasks that exist when it starts.
    Settings default to the same fast values as the shared ``settings`` fixture; keyword
    arguments override them (e.g. ``retries_enabled_in_dev=False``).
    """
    engines: list[Engine] = []
    workers: list[Worker] = []

    async def make(**overrides: Any) -> Engine:
        (tmp_path / "trigger").mkdir(exist_ok=True)
        values: dict[str, Any] = {
            "project_root": tmp_path,
            "database_url": database_url,
            "heartbeat_interval": 1.0,
            "poll_interval": 0.1,
            "retries_default": {"max_attempts": 3, "min_timeout_ms": 10, "max_timeout_ms": 50},
        }
        values.update(overrides)
        engine = Engine(load_settings(**values))
        await engine.start()
        set_engine(engine)
        engines.append(engine)
        worker = Worker(engine, concurrency=5)
        await worker.start()
        workers.append(worker)
        return engine

    yield make
    for worker in workers:
        await worker.stop(grace=0)
    set_engine(None)
    for engine in engines:
        await engine.close()


@pytest.fixture
async def postgres_store() -> AsyncIterator[PostgresStore]:
    """A PostgreSQL store on a fresh migrated database (skipped without a server)."""
    require_postgres()
    url = await databases.create()
    store = PostgresStore(url)
    await store.migrate(MigrateParams(now=0))
    try:
        yield store
    finally:
        await store.close()
        await databases.drop(url)


@pytest.fixture
async def pool_of_one() -> AsyncIterator[AsyncConnectionPool]:
    """A pool of one autocommit connection on a fresh PostgreSQL database (skipped without a
    server): whatever it lends next is what came back."""
    require_postgres()
    url = await databases.create()
    pool: AsyncConnectionPool = AsyncConnectionPool(
        url, min_size=1, max_size=1, open=False, kwargs={"autocommit": True}
    )
    await pool.open()
    try:
        yield pool
    finally:
        await pool.close()
        await databases.drop(url)
