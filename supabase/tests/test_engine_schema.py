"""The engine's tables are out of reach of Supabase's Data API roles.

Supabase's Data API (PostgREST) serves the ``public`` schema to anyone holding the project's
publishable key (role ``anon``) and to every signed-in user (``authenticated``), and Supabase
grants those roles every table created in ``public`` by default. The engine therefore keeps
everything in its own schema (``shipyard``) and grants those roles nothing.

Each test makes a fresh database with Supabase's roles and default grants
(``supabase_roles.sql``), migrates the engine into it — fresh, or over an install an earlier
version made in ``public`` — and queries as each role the way PostgREST does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import errors
from test_rls_policies import as_role, fresh_database

from shipyard.store.postgres import PostgresStore
from shipyard.store.protocol import MigrateParams
from shipyard.store.sql import STORE_DIR, migration_files

SUPABASE = Path(__file__).resolve().parents[1]
ENGINE_TABLES = ("runs", "attempts", "run_events", "waitpoints", "workers", "versions")
API_ROLES = ("anon", "authenticated")


def with_supabase_roles(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((SUPABASE / "tests" / "supabase_roles.sql").read_text())


def migrate_engine(url: str) -> list[str]:
    async def run() -> list[str]:
        store = PostgresStore(url)
        try:
            return await store.migrate(MigrateParams(now=0))
        finally:
            await store.close()

    return asyncio.run(run())


def public_tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select table_name from information_schema.tables where table_schema = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


@pytest.fixture(scope="module")
def fresh() -> Iterator[str]:
    """Supabase's basics, the app's migrations, then the engine's: one database for the
    module, as every test using it only tries what the roles must be refused (a database per
    test cost a CREATE and a DROP each, and every DROP checkpoints the server)."""
    with fresh_database("shipyard_engine_schema") as url:
        with_supabase_roles(url)
        with psycopg.connect(url, autocommit=True) as conn:
            for migration in sorted((SUPABASE / "migrations").glob("*.sql")):
                conn.execute(migration.read_text())
        migrate_engine(url)
        yield url


@pytest.mark.parametrize("role", API_ROLES)
@pytest.mark.parametrize("table", ENGINE_TABLES)
def test_the_api_roles_cannot_read_the_engines_tables(fresh: str, role: str, table: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied for schema"):
        as_role(fresh, role, f"select count(*) from shipyard.{table}")


@pytest.mark.parametrize("role", API_ROLES)
def test_the_api_roles_cannot_write_or_call_into_the_engine(fresh: str, role: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        as_role(fresh, role, "delete from shipyard.runs")
    with pytest.raises(errors.InsufficientPrivilege):
        as_role(fresh, role, "select shipyard.shipyard_slot_change()")


def test_public_holds_only_the_apps_tables(fresh: str) -> None:
    assert public_tables(fresh) == {"notes"}


def test_an_install_in_public_is_moved_out_of_the_api_roles_reach() -> None:
    """An earlier version's tables in public carried Supabase's default grants to the API
    roles; after the move they are in the engine's schema and the grants are gone."""
    with fresh_database("shipyard_engine_moved") as url:
        with_supabase_roles(url)
        old = [f for f in migration_files(STORE_DIR / "postgres" / "migrations") if f.name < "0006"]
        with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
            conn.execute(
                "create table shipyard_migrations (name text primary key, applied_at bigint "
                "not null)"
            )
            for file in old:
                conn.execute(file.read_text().encode())
                conn.execute("insert into shipyard_migrations values (%s, 0)", (file.name,))
        # What the publishable key could read before the move.
        assert as_role(url, "anon", "select count(*) from public.runs") == [(0,)]

        migrate_engine(url)
        assert public_tables(url) == set()
        for role in API_ROLES:
            with pytest.raises(errors.UndefinedTable):
                as_role(url, role, "select count(*) from public.runs")
            with pytest.raises(errors.InsufficientPrivilege):
                as_role(url, role, "select count(*) from shipyard.runs")
        with psycopg.connect(url) as conn:
            granted = conn.execute(
                "select count(*) from information_schema.role_table_grants "
                "where table_schema = 'shipyard' and grantee in ('anon', 'authenticated', "
                "'service_role')"
            ).fetchone()
        assert granted == (0,)
