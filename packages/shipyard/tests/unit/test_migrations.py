"""Migrations are numbered, apply cleanly, and produce the expected schema."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from shipyard.store.queries import load_queries, migration_files
from shipyard.store.sqlite import store as sqlite_store

SQLITE = Path(sqlite_store.__file__).parent


def test_migrations_are_numbered_without_gaps() -> None:
    numbers = [int(p.name[:4]) for p in migration_files(SQLITE / "migrations")]
    assert numbers == list(range(1, len(numbers) + 1))


async def test_fresh_database_has_the_expected_tables(tmp_path: Path) -> None:
    store = sqlite_store.SqliteStore(tmp_path / "s.db")
    applied = await store.migrate()
    await store.close()
    assert applied == [p.name for p in migration_files(SQLITE / "migrations")]
    conn = sqlite3.connect(tmp_path / "s.db")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {
        "runs",
        "run_tags",
        "attempts",
        "batches",
        "run_events",
        "tasks",
        "workers",
        "shipyard_migrations",
    } <= tables
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "runs_idempotency_key" in indexes
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_every_query_uses_named_parameters_only() -> None:
    for name, sql in load_queries(SQLITE / "queries.sql").items():
        assert "?" not in sql, name
        assert not re.search(r"%s|\{\w*\}", sql), name
