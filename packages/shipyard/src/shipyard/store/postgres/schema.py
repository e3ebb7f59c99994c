"""The engine's PostgreSQL schema: created when missing; an earlier install moved into it.

Until this layout, migrations created every table and function in ``public``, where
Supabase's Data API serves them to anyone holding the project's publishable key (the ``anon``
role, and ``authenticated`` for any signed-in user) — only the grants Supabase gives in
``public`` by default stood between them and every run's payload. Now everything lives in the
engine's own schema, which grants nothing to anyone but its owner.

:func:`adopt_public_install` moves an install made in ``public`` into the schema, in the
migration transaction, before the numbered migrations run. Which objects are the engine's is
read from the migrations the install recorded (their ``CREATE TABLE``/``CREATE FUNCTION``/
``CREATE SEQUENCE`` statements), so a table of the same name the user made is never touched and
later migrations need no list to update. Indexes, constraints, triggers and the sequences of
``BIGSERIAL`` columns move with their tables. The privileges objects carried in ``public``
(Supabase's default grants to ``anon``/``authenticated``/``service_role``) are revoked.
Idempotent: it acts only when ``public`` holds the engine's bookkeeping table and the schema
does not. :func:`revoke_api_roles` runs after every migration (a database may grant new
objects to those roles by default).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from shipyard.store.sql import migration_files

__all__ = [
    "SUPABASE_API_ROLES",
    "adopt_public_install",
    "create_schema",
    "engine_objects",
    "revoke_api_roles",
]

SUPABASE_API_ROLES = ("anon", "authenticated", "service_role")
"""Roles Supabase grants everything in ``public`` by default; the engine grants them nothing."""

_TABLE = re.compile(r"\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.IGNORECASE)
_SEQUENCE = re.compile(r"\bCREATE\s+SEQUENCE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.IGNORECASE)
_FUNCTION = re.compile(
    r"\bCREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(\w+)\s*\(([^)]*)\)", re.IGNORECASE
)
_BOOKKEEPING = "shipyard_migrations"


async def create_schema(conn: psycopg.AsyncConnection[Any], schema: str) -> None:
    """Create ``schema`` unless it exists, and make it the transaction's search path.

    Existence is checked first: ``CREATE SCHEMA IF NOT EXISTS`` needs the CREATE privilege on
    the database even when the schema exists, and a role given a schema made by an
    administrator may lack it.
    """
    cursor = await conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
    if await cursor.fetchone() is None:
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    await conn.execute(
        sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)),
    )


def engine_objects(files: list[Path]) -> tuple[list[str], list[str], list[str]]:
    """Tables, sequences and function signatures (``name(args)``) ``files`` create."""
    tables: list[str] = []
    sequences: list[str] = []
    functions: list[str] = []
    for file in files:
        text = file.read_text()
        tables += [t for t in _TABLE.findall(text) if t not in tables]
        sequences += [q for q in _SEQUENCE.findall(text) if q not in sequences]
        for name, args in _FUNCTION.findall(text):
            signature = f"{name}({' '.join(args.split())})"
            if signature not in functions:
                functions.append(signature)
    return tables, sequences, functions


async def adopt_public_install(
    conn: psycopg.AsyncConnection[Any], schema: str, migrations: Path
) -> list[str]:
    """Move an install an earlier version made in ``public`` into ``schema``; the objects
    moved (none when there is nothing to move). Runs inside the migration transaction."""
    cursor = await conn.execute(
        "SELECT to_regclass('public.shipyard_migrations') IS NOT NULL, to_regclass(%s) IS NOT NULL",
        (sql.Identifier(schema, _BOOKKEEPING).as_string(conn),),
    )
    found = await cursor.fetchone()
    if found is None or not found[0] or found[1]:
        return []
    cursor = await conn.execute("SELECT name FROM public.shipyard_migrations")
    recorded = {row[0] for row in await cursor.fetchall()}
    files = [f for f in migration_files(migrations) if f.name in recorded]
    tables, sequences, functions = engine_objects(files)
    target = sql.Identifier(schema)
    moved: list[str] = []
    for table in dict.fromkeys([*tables, _BOOKKEEPING]):
        if await _exists(conn, "to_regclass", f"public.{table}"):
            await conn.execute(
                sql.SQL("ALTER TABLE public.{} SET SCHEMA {}").format(sql.Identifier(table), target)
            )
            moved.append(table)
    for sequence in sequences:
        if await _exists(conn, "to_regclass", f"public.{sequence}"):
            await conn.execute(
                sql.SQL("ALTER SEQUENCE public.{} SET SCHEMA {}").format(
                    sql.Identifier(sequence), target
                )
            )
            moved.append(sequence)
    for signature in functions:
        if await _exists(conn, "to_regprocedure", f"public.{signature}"):
            name, _, args = signature.partition("(")
            await conn.execute(
                sql.SQL("ALTER FUNCTION public.{}({}) SET SCHEMA {}").format(
                    sql.Identifier(name), sql.SQL(args.rstrip(")")), target
                )
            )
            moved.append(signature)
    return moved


async def revoke_api_roles(conn: psycopg.AsyncConnection[Any], schema: str) -> None:
    """Take back every privilege Supabase's API roles hold in ``schema`` (those that exist).

    Reads the ACLs first and revokes only when one names such a role: a REVOKE rewrites the
    catalog rows of every object it covers (and invalidates every session's cached plans on
    them), which a process start must not do for nothing.
    """
    cursor = await conn.execute(
        _GRANTED_TO_API_ROLES, {"schema": schema, "roles": list(SUPABASE_API_ROLES)}
    )
    roles = [sql.Identifier(row[0]) for row in await cursor.fetchall()]
    if not roles:
        return
    who = sql.SQL(", ").join(roles)
    target = sql.Identifier(schema)
    for what in ("TABLES", "SEQUENCES", "FUNCTIONS"):
        await conn.execute(
            sql.SQL("REVOKE ALL ON ALL {} IN SCHEMA {} FROM {}").format(sql.SQL(what), target, who)
        )
    await conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(target, who))


# The API roles (those that exist) that some privilege in the schema names: on the schema
# itself, a table or sequence, or a function.
_GRANTED_TO_API_ROLES = """
SELECT DISTINCT r.rolname FROM pg_roles r
WHERE r.rolname = ANY(%(roles)s) AND (
    EXISTS (SELECT 1 FROM pg_namespace n, aclexplode(n.nspacl) a
            WHERE n.nspname = %(schema)s AND a.grantee = r.oid)
    OR EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
               aclexplode(c.relacl) a
               WHERE n.nspname = %(schema)s AND a.grantee = r.oid)
    OR EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace,
               aclexplode(p.proacl) a
               WHERE n.nspname = %(schema)s AND a.grantee = r.oid)
)
ORDER BY r.rolname
"""


async def _exists(conn: psycopg.AsyncConnection[Any], function: str, name: str) -> bool:
    cursor = await conn.execute(
        sql.SQL("SELECT {}(%s) IS NOT NULL").format(sql.Identifier(function)), (name,)
    )
    found = await cursor.fetchone()
    return bool(found and found[0])
