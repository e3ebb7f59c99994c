"""The store conformance suite runs against every backend listed in ``BACKENDS``.

Adding a backend means adding a factory here; every test in this folder then runs on it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from shipyard.store.protocol import Store
from shipyard.store.sqlite import SqliteStore


async def _sqlite(tmp_path: Path) -> Store:
    return SqliteStore(tmp_path / "conformance.db")


BACKENDS: dict[str, Callable[[Path], Awaitable[Store]]] = {"sqlite": _sqlite}


@pytest.fixture(params=sorted(BACKENDS))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A migrated, empty store of each backend."""
    instance = await BACKENDS[request.param](tmp_path)
    await instance.migrate()
    yield instance
    await instance.close()
