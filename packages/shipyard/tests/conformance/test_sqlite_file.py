"""The SQLite file itself (issue 10, defect 11): private modes, and read-only, damaged or full
databases raise a ShipyardError that says what to do instead of a raw sqlite3 traceback.

Tests run as root, which ignores permission bits, so read-only and full are made by SQLite
itself: a ``mode=ro`` open (what SQLite does by itself for a write-protected file) and
``PRAGMA max_page_count``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from pathlib import Path

import pytest
from test_store_runs import ENV, run_params

from shipyard.errors import (
    DatabaseCorruptError,
    DatabaseFullError,
    DatabaseReadOnlyError,
    ShipyardError,
    StoreError,
)
from shipyard.store import is_unavailable
from shipyard.store.protocol import (
    MigrateParams,
    RunGetParams,
    RunInsertManyParams,
    RunListParams,
)
from shipyard.store.sqlite import SqliteStore
from shipyard.store.sqlite.store import INLINE_CHECKPOINT_EVERY
from shipyard.testing.eventually import eventually


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_folder_and_files_are_created_private(tmp_path: Path) -> None:
    db = tmp_path / ".shipyard" / "shipyard.db"
    store = SqliteStore(db)
    try:
        await store.migrate(MigrateParams(now=0))
        await store.run_insert(run_params())
        assert mode(db.parent) == 0o700
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            assert path.exists(), path
            assert mode(path) == 0o600, (path, oct(mode(path)))
    finally:
        await store.close()


async def test_an_existing_folder_keeps_its_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    store = SqliteStore(tmp_path / "s.db")
    try:
        await store.migrate(MigrateParams(now=0))
    finally:
        await store.close()
    assert mode(tmp_path) == 0o755
    assert mode(tmp_path / "s.db") == 0o600


async def test_a_read_only_database_can_be_read_but_not_written(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    writer = SqliteStore(db)
    await writer.migrate(MigrateParams(now=0))
    made = await writer.run_insert_many(RunInsertManyParams(ENV, [run_params() for _ in range(3)]))
    await writer.close()

    reader = SqliteStore(db, read_only=True)
    try:
        # Up to date: migrate only reads, so it needs no write lock.
        assert await reader.migrate(MigrateParams(now=1)) == []
        page = await reader.run_list(RunListParams(ENV))
        assert sorted(r.id for r in page.items) == sorted(r.run.id for r in made)
        assert await reader.run_get(RunGetParams(ENV, made[0].run.id)) is not None
        with pytest.raises(DatabaseReadOnlyError) as caught:
            await reader.run_insert(run_params())
        message = str(caught.value)
        assert "read-only" in message and str(db) in message and "writable" in message
        assert not is_unavailable(caught.value)
    finally:
        await reader.close()


async def test_migrating_a_read_only_database_that_needs_it_says_so(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    db.touch()  # an empty database: every migration is pending
    reader = SqliteStore(db, read_only=True)
    try:
        with pytest.raises(DatabaseReadOnlyError, match="read-only"):
            await reader.migrate(MigrateParams(now=1))
    finally:
        await reader.close()


async def test_a_damaged_file_raises_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    writer = SqliteStore(db)
    await writer.migrate(MigrateParams(now=0))
    await writer.run_insert(run_params())
    await writer.close()
    with db.open("r+b") as handle:
        handle.write(b"this is not a database header!!" * 4)
    store = SqliteStore(db)
    try:
        with pytest.raises(DatabaseCorruptError) as caught:
            await store.migrate(MigrateParams(now=0))
        message = str(caught.value)
        assert str(db) in message and "backup" in message
        with pytest.raises(DatabaseCorruptError):
            await store.run_list(RunListParams(ENV))
    finally:
        await store.close()


async def test_a_full_database_raises_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    try:
        await store.migrate(MigrateParams(now=0))

        def cap(conn: object) -> None:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]  # type: ignore[attr-defined]
            conn.execute(f"PRAGMA max_page_count = {int(pages)}")  # type: ignore[attr-defined]

        # The cap is per connection: set it on the store's own (a private hook, test only).
        await store._thread.call(lambda: cap(store._db()))
        big = [run_params(payload='"' + "x" * 100_000 + '"') for _ in range(20)]
        with pytest.raises(DatabaseFullError) as caught:
            await store.run_insert_many(RunInsertManyParams(ENV, big))
        assert "full" in str(caught.value) and "Free disk space" in str(caught.value)
        assert isinstance(caught.value, StoreError) and isinstance(caught.value, ShipyardError)
        assert (await store.run_list(RunListParams(ENV))).items == []
    finally:
        await store.close()


# -- the single insert on the caller's thread (issue 16) ------------------------------------------


async def test_an_insert_waits_for_a_write_lock_held_elsewhere_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    """The caller-thread insert never waits: a locked database sends it to the store thread,
    which waits for the lock; the event loop keeps running meanwhile."""
    db = tmp_path / "s.db"
    store = SqliteStore(db)
    other = sqlite3.connect(db, isolation_level=None)
    try:
        await store.migrate(MigrateParams(now=0))
        await store.run_insert(run_params())  # the caller-thread connection exists
        other.execute("BEGIN IMMEDIATE")
        insert = asyncio.ensure_future(store.run_insert(run_params()))
        ticks = 0
        for _ in range(20):
            await asyncio.sleep(0.005)
            ticks += 1
        assert ticks == 20 and not insert.done()
        other.execute("COMMIT")
        made = await insert
        assert not made.cached
        assert await store.run_get(RunGetParams(ENV, made.run.id)) is not None
    finally:
        other.close()
        await store.close()


async def test_inline_inserts_are_checkpointed_into_the_database_file(tmp_path: Path) -> None:
    """Caller-thread inserts do not checkpoint the WAL themselves; the store thread does, every
    INLINE_CHECKPOINT_EVERY of them, so the WAL does not grow without bound: the database file
    grows by the pages a checkpoint copies into it."""
    db = tmp_path / "s.db"
    store = SqliteStore(db)
    try:
        await store.migrate(MigrateParams(now=0))
        await store.run_list(RunListParams(ENV))  # the store thread's connection is open
        before = db.stat().st_size  # the migrations are still in the WAL
        count = INLINE_CHECKPOINT_EVERY + 5
        for _ in range(count):
            await store.run_insert(run_params())
        # Nothing else committed (no auto-checkpoint of the store thread's connection), so
        # only the posted checkpoint can have copied pages into the file.
        await eventually(lambda: db.stat().st_size > before)
        assert len((await store.run_list(RunListParams(ENV, limit=500))).items) == count
    finally:
        await store.close()
