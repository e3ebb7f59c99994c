"""The store conformance suite runs against every backend listed in ``BACKENDS``.

Adding a backend means adding a factory here; every test in this folder then runs on it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from shipyard.store.postgres import PostgresStore
from shipyard.store.protocol import MigrateParams, Store
from shipyard.store.sqlite import SqliteStore
from shipyard.testing.postgres import databases, require_postgres


async def _sqlite(tmp_path: Path) -> tuple[Store, Callable[[], Awaitable[None]]]:
    async def cleanup() -> None:
        return None

    return SqliteStore(tmp_path / "conformance.db"), cleanup


async def _postgres(tmp_path: Path) -> tuple[Store, Callable[[], Awaitable[None]]]:
    require_postgres()
    url = await databases.create()

    async def cleanup() -> None:
        await databases.drop(url)

    return PostgresStore(url), cleanup


BACKENDS: dict[str, Callable[[Path], Awaitable[tuple[Store, Callable[[], Awaitable[None]]]]]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}


@pytest.fixture(params=sorted(BACKENDS))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A migrated, empty store of each backend."""
    instance, cleanup = await BACKENDS[request.param](tmp_path)
    await instance.migrate(MigrateParams(now=0))
    yield instance
    await instance.close()
    await cleanup()
