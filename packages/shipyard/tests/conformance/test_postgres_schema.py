"""On PostgreSQL the engine lives in a schema of its own, never ``public``.

Proves, on real databases: after migrating, ``public`` holds no engine table, function or
sequence; an install an earlier version made in ``public`` (migrations 0001–0005 applied
there, data in it) is moved into the schema by the next migrate — data, indexes, sequences,
functions and triggers included, a user's own table left alone — and migrating again changes
nothing; a non-default schema name works end to end (trigger, worker, COMPLETED); a trigger
inside the caller's own transaction writes to the engine's schema and gives the caller's
search path back.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from shipyard.config import load_settings
from shipyard.engine.definitions import Definitions, use_definitions
from shipyard.engine.engine import Engine
from shipyard.sdk.task import task
from shipyard.store.postgres import PostgresStore
from shipyard.store.protocol import (
    MigrateParams,
    RunClaimParams,
    RunEventsListParams,
    RunGetParams,
)
from shipyard.store.sql import STORE_DIR, migration_files
from shipyard.testing.postgres import admin_url, databases, require_postgres, with_database
from shipyard.worker.worker import Worker

MIGRATIONS = migration_files(STORE_DIR / "postgres" / "migrations")
OLD_LAYOUT = [f for f in MIGRATIONS if f.name < "0006"]  # what earlier versions put in public


@pytest.fixture
async def empty_db() -> AsyncIterator[str]:
    """A fresh, empty database (not cloned from the migrated template)."""
    require_postgres()
    name = f"shipyard_test_{secrets.token_hex(6)}"
    async with await psycopg.AsyncConnection.connect(admin_url(), autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(admin_url(), name)
    yield url
    await databases.drop(url)


async def objects_in(url: str, schema: str) -> dict[str, set[str]]:
    """Tables, sequences and functions in ``schema``."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(
            "SELECT c.relkind, c.relname FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'S')",
            (schema,),
        )
        found: dict[str, set[str]] = {"tables": set(), "sequences": set(), "functions": set()}
        for kind, name in await cursor.fetchall():
            found["tables" if kind == "r" else "sequences"].add(name)
        cursor = await conn.execute(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = %s",
            (schema,),
        )
        found["functions"] = {r[0] for r in await cursor.fetchall()}
    return found


async def install_old_layout(url: str) -> None:
    """What an earlier Shipyard left: migrations 0001–0005 in public, recorded in
    public.shipyard_migrations, a queued run in it — and a table of the user's own."""
    async with (
        await psycopg.AsyncConnection.connect(url, autocommit=True) as conn,
        conn.transaction(),
    ):
        await conn.execute(
            "CREATE TABLE shipyard_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)"
        )
        for file in OLD_LAYOUT:
            await conn.execute(file.read_text().encode())
            await conn.execute(
                "INSERT INTO shipyard_migrations (name, applied_at) VALUES (%s, 1)",
                (file.name,),
            )
        await conn.execute(
            "INSERT INTO runs (id, environment, task_id, status, queue, queued_at, sort_key,"
            " available_at, created_at, updated_at) VALUES ('run_old', 'test', 't', "
            "'QUEUED', 'task/t', 1, 1, 0, 1, 1)"
        )
        await conn.execute(
            "INSERT INTO run_events (run_id, ts, kind, message) VALUES "
            "('run_old', 1, 'log', 'before the move')"
        )
        await conn.execute("CREATE TABLE notes (id BIGSERIAL PRIMARY KEY, body TEXT)")
        await conn.execute("INSERT INTO notes (body) VALUES ('mine')")


async def test_a_fresh_install_puts_nothing_in_public(empty_db: str) -> None:
    store = PostgresStore(empty_db)
    try:
        assert await store.migrate(MigrateParams(now=0)) == [f.name for f in MIGRATIONS]
    finally:
        await store.close()
    assert await objects_in(empty_db, "public") == {
        "tables": set(),
        "sequences": set(),
        "functions": set(),
    }
    engine = await objects_in(empty_db, "shipyard")
    assert {"runs", "attempts", "workers", "versions", "shipyard_migrations"} <= engine["tables"]
    assert {"shipyard_slot_change", "shipyard_run_changes"} <= engine["functions"]
    assert {"attempts_id_seq", "run_events_id_seq"} <= engine["sequences"]
    # ANALYZE skips the columns no query finds rows by (0016).
    async with await psycopg.AsyncConnection.connect(empty_db) as conn:
        cursor = await conn.execute(
            "SELECT attrelid::regclass::text || '.' || attname FROM pg_attribute "
            "WHERE attrelid IN ('shipyard.runs'::regclass, 'shipyard.run_events'::regclass, "
            "'shipyard.attempts'::regclass) AND attnum > 0 AND attstattarget = 0 ORDER BY 1"
        )
        skipped = [str(row[0]) for row in await cursor.fetchall()]
    assert skipped == [
        "shipyard.attempts.error",
        "shipyard.run_events.attributes",
        "shipyard.run_events.message",
        "shipyard.runs.error",
        "shipyard.runs.metadata",
        "shipyard.runs.output",
        "shipyard.runs.payload",
        "shipyard.runs.tags",
    ]


async def test_an_install_in_public_is_moved_into_the_schema(empty_db: str) -> None:
    await install_old_layout(empty_db)
    store = PostgresStore(empty_db)
    try:
        # The bookkeeping moved too: only the migrations the old install lacked run.
        assert await store.migrate(MigrateParams(now=5)) == [
            f.name for f in MIGRATIONS if f not in OLD_LAYOUT
        ]
        assert await store.migrate(MigrateParams(now=6)) == []  # idempotent
        # The data came along, and the moved triggers still count slots and write events.
        run = await store.run_get(RunGetParams("test", "run_old"))
        assert run is not None and run.status == "QUEUED"
        claimed = await store.run_claim(
            RunClaimParams("test", "w1", ["t"], 10, 2_000, 3_000, version="v1")
        )
        assert [(r.id, r.status, r.version) for r in claimed] == [("run_old", "EXECUTING", "v1")]
        events = await store.run_events_list(RunEventsListParams("test", "run_old"))
        assert [(e.kind, e.message) for e in events] == [
            ("log", "before the move"),
            ("status", "EXECUTING"),
        ]
    finally:
        await store.close()
    public = await objects_in(empty_db, "public")
    assert public == {"tables": {"notes"}, "sequences": {"notes_id_seq"}, "functions": set()}
    moved = await objects_in(empty_db, "shipyard")
    assert {"runs", "run_events", "queues", "waitpoints", "shipyard_migrations"} <= moved["tables"]
    assert {"attempts_id_seq", "run_events_id_seq"} <= moved["sequences"]
    assert {"shipyard_slot_change", "shipyard_run_changes"} <= moved["functions"]
    async with await psycopg.AsyncConnection.connect(empty_db) as conn:
        cursor = await conn.execute(
            "SELECT running FROM shipyard.environment_slots WHERE environment = 'test'"
        )
        assert await cursor.fetchone() == (1,)
        cursor = await conn.execute("SELECT body FROM public.notes")
        assert await cursor.fetchall() == [("mine",)]
        cursor = await conn.execute(
            "SELECT count(*) FROM shipyard.shipyard_migrations WHERE applied_at = 1"
        )
        assert await cursor.fetchone() == (len(OLD_LAYOUT),)


async def test_the_trigger_functions_find_their_tables_whatever_the_search_path(
    empty_db: str,
) -> None:
    store = PostgresStore(empty_db)
    try:
        await store.migrate(MigrateParams(now=0))
    finally:
        await store.close()
    async with await psycopg.AsyncConnection.connect(empty_db, autocommit=True) as conn:
        # A session in public only (an operator's psql): the triggers still write events.
        await conn.execute(
            "INSERT INTO shipyard.runs (id, environment, task_id, status, queue, queued_at, "
            "sort_key, available_at, created_at, updated_at) VALUES ('run_x', 'e', 't', "
            "'QUEUED', 'q', 1, 1, 0, 1, 1)"
        )
        await conn.execute("UPDATE shipyard.runs SET status = 'EXECUTING', updated_at = 2")
        cursor = await conn.execute("SELECT kind, message FROM shipyard.run_events ORDER BY id")
        # No 'created' event: the engine's insert statements write it, no trigger (0013).
        assert await cursor.fetchall() == [("status", "EXECUTING")]
        cursor = await conn.execute(
            "SELECT running FROM shipyard.environment_slots WHERE environment = 'e'"
        )
        assert await cursor.fetchone() == (1,)


async def test_a_schema_of_another_name_works_end_to_end(empty_db: str, tmp_path: Path) -> None:
    settings = load_settings(
        project_root=tmp_path,
        database_url=empty_db,
        database_schema="engine_x",
        heartbeat_interval=0.2,
        poll_interval=0.1,
    )
    with use_definitions(Definitions()):

        @task(id="in-engine-x")
        async def in_engine_x(payload: int) -> int:
            return payload * 2

        engine = Engine(settings)
        await engine.start()
        worker = Worker(engine, concurrency=2)
        await worker.start()
        try:
            handle = await engine.trigger("in-engine-x", 21, {})
            done = await engine.wait_for_final(handle.id, timeout=30)
            assert (done.status, done.output, done.version) == ("COMPLETED", "42", worker.version)
        finally:
            await worker.stop(grace=0)
            await engine.close()
    assert "runs" in (await objects_in(empty_db, "engine_x"))["tables"]
    assert (await objects_in(empty_db, "shipyard"))["tables"] == set()
    assert (await objects_in(empty_db, "public"))["tables"] == set()


async def test_a_trigger_in_the_callers_transaction_keeps_the_callers_search_path(
    empty_db: str, tmp_path: Path
) -> None:
    async with await psycopg.AsyncConnection.connect(empty_db, autocommit=True) as conn:
        # The user's own tables, named like the engine's: never touched by it.
        await conn.execute("CREATE TABLE runs (id TEXT PRIMARY KEY)")
        await conn.execute("CREATE TABLE orders (id TEXT PRIMARY KEY)")
    settings = load_settings(project_root=tmp_path, database_url=empty_db)
    with use_definitions(Definitions()):

        @task(id="after-order")
        async def after_order(payload: str) -> None:
            return None

        engine = Engine(settings)
        await engine.start()
        try:
            async with (
                await psycopg.AsyncConnection.connect(empty_db) as conn,
                conn.transaction(),
            ):
                await conn.execute("INSERT INTO orders (id) VALUES ('o-1')")
                handle = await engine.trigger("after-order", "o-1", {"connection": conn})
                cursor = await conn.execute("SHOW search_path")
                assert await cursor.fetchone() == ('"$user", public',)
                await conn.execute("INSERT INTO runs (id) VALUES ('mine')")
            run = await engine.get_run(handle.id)
            assert run.status == "PENDING_VERSION"  # no worker has the task
        finally:
            await engine.close()
    async with await psycopg.AsyncConnection.connect(empty_db) as conn:
        cursor = await conn.execute("SELECT id FROM public.runs")
        assert await cursor.fetchall() == [("mine",)]
        cursor = await conn.execute("SELECT id FROM shipyard.runs")
        assert await cursor.fetchall() == [(handle.id,)]
