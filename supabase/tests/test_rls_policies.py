"""The migrations' row-level security, on a real PostgreSQL database.

Each test run creates a fresh database on the machine's server, reproduces what Supabase has
before a project's migrations (``supabase_roles.sql``: roles anon/authenticated/service_role,
``auth.users``, ``auth.uid()`` reading ``request.jwt.claims``), applies every file in
``supabase/migrations`` in order, then queries as each role the way PostgREST does: inside a
transaction, ``set local role <role>`` and the JWT claims in ``request.jwt.claims``.
Skipped (with the reason) when PostgreSQL is unreachable, failed instead with
``SHIPYARD_REQUIRE_POSTGRES=1`` (the policy of :mod:`shipyard.testing.postgres`).
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from shipyard.testing.postgres import require_postgres, with_database

SUPABASE = Path(__file__).resolve().parents[1]
ALICE = uuid.UUID("11111111-1111-4111-8111-111111111111")
BOB = uuid.UUID("22222222-2222-4222-8222-222222222222")


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """An empty database ``<prefix>_<random>`` on the test server, dropped afterwards."""
    admin = require_postgres()
    name = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield with_database(admin, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    """A fresh database with Supabase's basics, the migrations, and two users' notes."""
    with fresh_database("shipyard_rls") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute((SUPABASE / "tests" / "supabase_roles.sql").read_text())
            for migration in sorted((SUPABASE / "migrations").glob("*.sql")):
                conn.execute(migration.read_text())
            conn.execute(
                "insert into auth.users (id, email) values (%s, 'alice@example.com'), "
                "(%s, 'bob@example.com')",
                (ALICE, BOB),
            )
            conn.execute(
                "insert into public.notes (user_id, title) values "
                "(%s, 'alice 1'), (%s, 'alice 2'), (%s, 'bob 1')",
                (ALICE, ALICE, BOB),
            )
        yield url


def as_role(
    dsn: str, role: str, sql: str, params: tuple[Any, ...] = (), sub: uuid.UUID | None = None
) -> list[tuple[Any, ...]]:
    """Run ``sql`` as PostgREST would for a request with that role (and user)."""
    claims: dict[str, Any] = {"role": role}
    if sub is not None:
        claims["sub"] = str(sub)
    with psycopg.connect(dsn) as conn, conn.transaction():
        conn.execute(f"set local role {role}")
        conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def titles(rows: list[tuple[Any, ...]]) -> list[str]:
    return sorted(str(row[0]) for row in rows)


def test_a_user_reads_only_their_own_notes(dsn: str) -> None:
    alice = as_role(dsn, "authenticated", "select title from public.notes", sub=ALICE)
    bob = as_role(dsn, "authenticated", "select title from public.notes", sub=BOB)
    assert titles(alice) == ["alice 1", "alice 2"]
    assert titles(bob) == ["bob 1"]


def test_auth_uid_reads_the_jwt_claims(dsn: str) -> None:
    rows = as_role(dsn, "authenticated", "select auth.uid()", sub=ALICE)
    assert rows == [(ALICE,)]


def test_anon_reads_nothing(dsn: str) -> None:
    assert as_role(dsn, "anon", "select title from public.notes") == []


def test_anon_cannot_insert(dsn: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        as_role(dsn, "anon", "insert into public.notes (user_id, title) values (%s, 'x')", (ALICE,))


def test_service_role_reads_every_row(dsn: str) -> None:
    rows = as_role(dsn, "service_role", "select title from public.notes")
    assert titles(rows) == ["alice 1", "alice 2", "bob 1"]


def test_a_user_inserts_rows_owned_by_themselves_only(dsn: str) -> None:
    created = as_role(
        dsn,
        "authenticated",
        "insert into public.notes (title) values ('mine') returning user_id",
        sub=BOB,
    )
    assert created == [(BOB,)]  # user_id defaults to auth.uid()
    with pytest.raises(errors.InsufficientPrivilege):  # RLS: new row violates the policy
        as_role(
            dsn,
            "authenticated",
            "insert into public.notes (user_id, title) values (%s, 'forged')",
            (ALICE,),
            sub=BOB,
        )


def test_a_user_cannot_change_or_delete_another_users_notes(dsn: str) -> None:
    updated = as_role(
        dsn,
        "authenticated",
        "update public.notes set title = 'hacked' where user_id = %s returning id",
        (ALICE,),
        sub=BOB,
    )
    deleted = as_role(
        dsn,
        "authenticated",
        "delete from public.notes where user_id = %s returning id",
        (ALICE,),
        sub=BOB,
    )
    assert updated == [] and deleted == []
    alice = as_role(dsn, "authenticated", "select title from public.notes", sub=ALICE)
    assert titles(alice) == ["alice 1", "alice 2"]


def test_a_user_cannot_hand_a_note_to_someone_else(dsn: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        as_role(
            dsn,
            "authenticated",
            "update public.notes set user_id = %s where title = 'alice 1'",
            (BOB,),
            sub=ALICE,
        )


def test_updated_at_is_maintained_by_the_database(dsn: str) -> None:
    rows = as_role(
        dsn,
        "authenticated",
        "update public.notes set body = 'edited' where title = 'alice 2' "
        "returning updated_at > created_at",
        sub=ALICE,
    )
    assert rows == [(True,)]
