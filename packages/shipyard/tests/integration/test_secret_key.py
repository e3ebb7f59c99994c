"""A call that needs the secret key resolves it before writing anything, on both backends.

Outside development without ``SHIPYARD_SECRET_KEY`` (or with one under 32 bytes), a trigger, a
batch trigger and a wait token creation raise :class:`ConfigError` and leave no row behind (a
failed trigger used to leave a QUEUED run that a worker would then execute).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from shipyard import ConfigError, task
from shipyard.config import Settings, load_settings
from shipyard.engine.engine import Engine
from shipyard.engine.registry import set_engine


def _count(settings: Settings, table: str) -> int:
    """Rows in ``table`` in every environment, read straight from the database."""
    sql = f"SELECT count(*) FROM {table}"
    if settings.database_url.startswith("sqlite"):
        conn = sqlite3.connect(settings.sqlite_path())
        try:
            return int(conn.execute(sql).fetchone()[0])
        finally:
            conn.close()
    import psycopg

    from shipyard.testing.postgres import ENGINE_OPTIONS

    with psycopg.connect(settings.database_url, options=ENGINE_OPTIONS) as pg:
        row = pg.execute(sql).fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture
async def production_engine(
    tmp_path: Path, database_url: str
) -> AsyncIterator[Callable[..., Awaitable[Engine]]]:
    engines: list[Engine] = []

    async def make(**overrides: Any) -> Engine:
        engine = Engine(
            load_settings(
                project_root=tmp_path,
                database_url=database_url,
                environment="production",
                **overrides,
            )
        )
        await engine.start()
        set_engine(engine)
        engines.append(engine)
        return engine

    yield make
    set_engine(None)
    for engine in engines:
        await engine.close()


@pytest.mark.parametrize(
    ("secret_key", "message"),
    [(None, "SHIPYARD_SECRET_KEY must be set"), ("short" * 6, "is 30 bytes long")],
)
async def test_no_usable_key_outside_development_writes_nothing(
    production_engine: Callable[..., Awaitable[Engine]], secret_key: str | None, message: str
) -> None:
    engine = await production_engine(secret_key=secret_key)

    @task(id="needs-key")
    async def needs_key(payload: Any) -> Any:
        return payload

    with pytest.raises(ConfigError, match=message):
        await needs_key.trigger({"n": 1})
    with pytest.raises(ConfigError, match=message):
        await needs_key.trigger({"n": 2}, idempotency_key="again")
    with pytest.raises(ConfigError, match=message):
        await needs_key.batch_trigger([{"n": 3}, {"n": 4}])
    with pytest.raises(ConfigError, match=message):
        await engine.create_token(tags=["t"])
    for table in ("runs", "batches", "waitpoints"):
        assert _count(engine.settings, table) == 0, table
    assert not (engine.settings.state_dir / "secret_key").exists()


async def test_a_long_enough_key_outside_development_triggers(
    production_engine: Callable[..., Awaitable[Engine]],
) -> None:
    engine = await production_engine(secret_key="p" * 32)

    @task(id="has-key")
    async def has_key(payload: Any) -> Any:
        return payload

    handle = await has_key.trigger(None)
    assert handle.public_access_token.count(".") == 2
    assert _count(engine.settings, "runs") == 1
