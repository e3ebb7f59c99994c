"""Migrations are numbered and apply cleanly; named queries load the same way on both backends."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from shipyard.store import procedures
from shipyard.store.protocol import MigrateParams
from shipyard.store.sql import (
    DIALECTS,
    STORE_DIR,
    dialect_sources,
    load_queries,
    migration_files,
    parse_blocks,
    placeholders,
    to_psycopg,
)
from shipyard.store.sqlite import SqliteStore
from shipyard.store.sqlite import claim as sqlite_claim
from shipyard.store.sqlite import finish as sqlite_finish

SQLITE = STORE_DIR / "sqlite"
POSTGRES = STORE_DIR / "postgres"


@pytest.mark.parametrize("folder", [SQLITE, POSTGRES], ids=["sqlite", "postgres"])
def test_migrations_are_numbered_without_gaps(folder: Path) -> None:
    numbers = [int(p.name[:4]) for p in migration_files(folder / "migrations")]
    # Numbers are assigned to features built in parallel; one not merged yet leaves its gap.
    assigned_elsewhere = {8, 9, 10, 11} - set(numbers)
    expected = [n for n in range(1, max(numbers) + 1) if n not in assigned_elsewhere]
    assert numbers == expected


def test_both_backends_have_the_same_migrations() -> None:
    names = [[p.name for p in migration_files(f / "migrations")] for f in (SQLITE, POSTGRES)]
    assert names[0] == names[1]


async def test_fresh_database_has_the_expected_tables(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    applied = await store.migrate(MigrateParams(now=1_234))
    assert await store.migrate(MigrateParams(now=5_678)) == []
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
    # The store reads no clock: applied_at is the caller's now.
    assert {r[0] for r in conn.execute("SELECT applied_at FROM shipyard_migrations")} == {1_234}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_query_uses_named_parameters_only(dialect: str) -> None:
    shared, own = dialect_sources(dialect)
    for name, sql in {**shared, **own}.items():
        assert "?" not in sql, name
        # '{}' is an empty JSON object (a created event's metadata), not a placeholder.
        assert not re.search(r"%s|%\(|(?<!')\{\w*\}", sql), name
        assert "--" not in sql, name  # comments are dropped at load time


def test_a_query_name_lives_in_one_file() -> None:
    for dialect in DIALECTS:
        shared, own = dialect_sources(dialect)
        assert not shared.keys() & own.keys()


def test_shared_and_dialect_files_define_every_query_the_procedures_run() -> None:
    folder = Path(procedures.__file__).parent
    source = "".join(p.read_text() for p in sorted(folder.glob("*.py")))
    # The SQLite store's own procedures (its claim and its batched finish) run queries only
    # SQLite defines.
    sqlite_own = "".join(Path(m.__file__).read_text() for m in (sqlite_claim, sqlite_finish))
    source += sqlite_own
    used = set(re.findall(r'\b(?:count|rows|row|runs|many)\(\s*"(\w+)"', source))
    locks = set(re.findall(r'\block\(\s*"(\w+)"', source))
    assert used and locks
    sqlite, postgres = load_queries("sqlite"), load_queries("postgres")
    sqlite_only = set(re.findall(r'"(\w+)"', sqlite_own)) & set(sqlite)
    assert used - sqlite_only <= set(postgres), used - sqlite_only - set(postgres)
    assert used <= set(sqlite), used - set(sqlite)
    # Row locks are PostgreSQL's; SQLite's write transaction holds the whole database.
    assert locks <= set(postgres)
    assert "run_insert" in sqlite and "run_insert" in postgres  # the INSERT_RUNS step


def test_psycopg_translation_keeps_casts_and_percent_signs() -> None:
    sql = "SELECT :a::text, CAST(:b AS json), x % 2, ':c' FROM t WHERE y = :a"
    assert to_psycopg(sql) == (
        "SELECT %(a)s::text, CAST(%(b)s AS json), x %% 2, ':c' FROM t WHERE y = %(a)s"
    )
    assert placeholders(sql) == {"a", "b"}


def test_a_fragment_is_written_once_and_used_by_name() -> None:
    text = (
        "-- fragment: live\n-- about it\nstatus = 'LIVE'\n"
        "-- name: a\nSELECT 1 WHERE {{live}} AND {{shared}};\n"
    )
    assert parse_blocks(text, "x.sql", {"shared": "y = 2"}) == {
        "a": "SELECT 1 WHERE status = 'LIVE' AND y = 2"
    }
    with pytest.raises(ValueError, match="unknown fragment 'gone'"):
        parse_blocks("-- name: a\nSELECT {{gone}};\n", "x.sql")
    with pytest.raises(ValueError, match="fragment 'f' is defined twice"):
        parse_blocks("-- fragment: f\n1\n-- fragment: f\n2\n", "x.sql")


def test_loading_drops_comments_and_rejects_duplicates() -> None:
    text = "-- name: a\n-- about a\nSELECT 1 -- trailing\n, '--kept' ;\n-- name: b\nSELECT 2;\n"
    assert parse_blocks(text, "x.sql") == {"a": "SELECT 1\n, '--kept'", "b": "SELECT 2"}
    with pytest.raises(ValueError, match="defined twice"):
        parse_blocks("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n", "x.sql")


def test_every_postgres_query_fits_psycopgs_conversion_cache() -> None:
    """psycopg converts a query's ``%(name)s`` placeholders once and caches the result only
    for texts up to 4,096 characters (``psycopg._queries.MAX_CACHED_STATEMENT_LENGTH``); a
    longer one is converted again at every execution: ~80 µs of a worker's CPU per claim."""
    longest = max(load_queries("postgres").items(), key=lambda item: len(item[1]))
    assert len(longest[1]) <= 4096, longest[0]
