"""Both backends' migrations build the same schema, and apply safely: fresh, twice, at once.

Triggers and functions may differ between the backends (SQLite has no statement-level
triggers); tables, their columns and the indexes (by name) may not.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from shipyard.store.postgres import PostgresStore
from shipyard.store.protocol import MigrateParams
from shipyard.store.sql import STORE_DIR, migration_files
from shipyard.store.sqlite import SqliteStore
from shipyard.testing.postgres import (
    ENGINE_OPTIONS,
    admin_url,
    databases,
    require_postgres,
    with_database,
)

ALL = [p.name for p in migration_files(STORE_DIR / "postgres" / "migrations")]

Schema = tuple[dict[str, list[str]], set[str]]


def sqlite_schema(path: Path) -> Schema:
    conn = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        columns = {
            t: sorted(r[1] for r in conn.execute("SELECT * FROM pragma_table_info(?)", (t,)))
            for t in tables
        }
        # Indexes SQLite makes for PRIMARY KEY / UNIQUE constraints have no SQL of their own.
        indexes = {
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        }
    finally:
        conn.close()
    return columns, indexes


async def postgres_schema(url: str) -> Schema:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'shipyard'"
        )
        columns: dict[str, list[str]] = {}
        for table, column in await cursor.fetchall():
            columns.setdefault(table, []).append(column)
        cursor = await conn.execute(
            "SELECT i.indexname FROM pg_indexes i WHERE i.schemaname = 'shipyard' AND NOT EXISTS ("
            " SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
        )
        indexes = {r[0] for r in await cursor.fetchall()}
    return {t: sorted(c) for t, c in columns.items()}, indexes


@pytest.fixture
async def empty_postgres() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database (not cloned from the migrated template)."""
    require_postgres()
    name = f"shipyard_test_{secrets.token_hex(6)}"
    async with await psycopg.AsyncConnection.connect(admin_url(), autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(admin_url(), name)
    yield url
    await databases.drop(url)


async def test_both_backends_build_the_same_tables_columns_and_indexes(
    tmp_path: Path, empty_postgres: str
) -> None:
    sqlite = SqliteStore(tmp_path / "parity.db")
    postgres = PostgresStore(empty_postgres)
    try:
        assert await sqlite.migrate(MigrateParams(now=0)) == ALL
        assert await postgres.migrate(MigrateParams(now=0)) == ALL
    finally:
        await sqlite.close()
        await postgres.close()
    sqlite_columns, sqlite_indexes = sqlite_schema(tmp_path / "parity.db")
    postgres_columns, postgres_indexes = await postgres_schema(empty_postgres)
    assert sorted(sqlite_columns) == sorted(postgres_columns)
    for table, columns in sqlite_columns.items():
        assert columns == postgres_columns[table], table
    assert sqlite_indexes == postgres_indexes
    assert {"runs_idempotency_key", "runs_ready_by_group", "waitpoints_tokens"} <= sqlite_indexes


async def test_postgres_fresh_database_applies_every_migration_once(empty_postgres: str) -> None:
    store = PostgresStore(empty_postgres)
    try:
        assert await store.migrate(MigrateParams(now=1_234)) == ALL
        assert await store.migrate(MigrateParams(now=5_678)) == []
    finally:
        await store.close()
    async with await psycopg.AsyncConnection.connect(
        empty_postgres, options=ENGINE_OPTIONS
    ) as conn:
        cursor = await conn.execute(
            "SELECT name, applied_at FROM shipyard_migrations ORDER BY name"
        )
        assert await cursor.fetchall() == [(name, 1_234) for name in ALL]


async def test_postgres_concurrent_migrations_apply_each_file_once(empty_postgres: str) -> None:
    stores = [PostgresStore(empty_postgres) for _ in range(4)]
    try:
        results = await asyncio.gather(*[s.migrate(MigrateParams(now=1)) for s in stores])
    finally:
        for store in stores:
            await store.close()
    assert sorted(name for applied in results for name in applied) == ALL
    assert sum(1 for applied in results if applied) == 1  # one did it all under the lock
    async with await psycopg.AsyncConnection.connect(
        empty_postgres, options=ENGINE_OPTIONS
    ) as conn:
        cursor = await conn.execute("SELECT count(*) FROM shipyard_migrations")
        assert await cursor.fetchone() == (len(ALL),)


async def test_sqlite_concurrent_migrations_apply_each_file_once(tmp_path: Path) -> None:
    stores = [SqliteStore(tmp_path / "race.db") for _ in range(4)]
    try:
        results = await asyncio.gather(*[s.migrate(MigrateParams(now=1)) for s in stores])
    finally:
        for store in stores:
            await store.close()
    assert sorted(name for applied in results for name in applied) == ALL
    conn = sqlite3.connect(tmp_path / "race.db")
    assert conn.execute("SELECT count(*) FROM shipyard_migrations").fetchone() == (len(ALL),)
    conn.close()
