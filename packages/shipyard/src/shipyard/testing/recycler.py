"""Test databases handed back are reset and used again instead of dropped.

Every ``DROP DATABASE`` makes PostgreSQL run an immediate checkpoint: it writes every dirty
buffer of the whole server and ``fsync``s each file. A test suite that drops a database per
test therefore stalls every commit on the server, its own and its neighbours', hundreds of
times a run (a heartbeat's commit waited long enough there for a live worker's leases to
lapse). A database a test is done with is instead emptied and kept:

1. its connections are ended and it is renamed to a name of this process's own, so a stray
   process still pointing at the old name can never write into the next test's database;
2. every table its test wrote to is truncated (the others are as a fresh clone's already),
   sequences restarted, the template's rows (the applied migrations) written back, planner
   statistics and activity counters cleared;
3. its catalog (schemas, relations and their sizes, columns, functions, triggers, constraints,
   policies, privileges, statistics, sequence positions, database settings) is compared with
   a fresh clone's: anything a test added or changed means it is dropped after all;
4. it is renamed ``shipyard_test_r<digest>_…``: ready for any process of any later run on the
   same migrations, which claims it by renaming it (a rename is atomic, and refused while
   anyone is connected).

Databases named ``shipyard_test_p<pid>_…`` belong to that process; one whose process is gone
(a run killed midway) is recycled the same way by the next process that starts.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from shipyard.processes import alive

PREFIX = "shipyard_test_"

# One line per catalog fact that makes two databases differ for a test; system schemas
# excluded. Row data is not compared: every table written to is truncated, and refilled.
_USER_NS = "n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'"
FINGERPRINT = f"""
SELECT md5(string_agg(x, E'\\n' ORDER BY x)) FROM (
    SELECT 'n:' || n.nspname || ':' || coalesce(n.nspacl::text, '') FROM pg_namespace n
    WHERE {_USER_NS}
    UNION ALL
    SELECT 'c:' || n.nspname || '.' || c.relname || ':' || c.relkind::text || ':'
        || coalesce(c.relacl::text, '') || ':' || coalesce(c.reloptions::text, '') || ':'
        || c.relrowsecurity || ':' || c.relpages || ':' || c.reltuples
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_NS}
    UNION ALL
    SELECT 'a:' || a.attrelid::regclass || '.' || a.attname || ':'
        || format_type(a.atttypid, a.atttypmod) || ':' || a.attnotnull || ':'
        || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE {_USER_NS} AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'p:' || p.oid::regprocedure || ':' || md5(coalesce(p.prosrc, '')) || ':'
        || coalesce(p.proacl::text, '') || ':' || coalesce(p.proconfig::text, '')
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {_USER_NS}
    UNION ALL
    SELECT 'ty:' || n.nspname || '.' || t.typname FROM pg_type t
    JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {_USER_NS} AND t.typrelid = 0
    UNION ALL
    SELECT 't:' || tgrelid::regclass || '.' || tgname || ':' || tgenabled::text FROM pg_trigger
    WHERE NOT tgisinternal
    UNION ALL
    SELECT 'k:' || co.conrelid::regclass || '.' || co.conname || ':' || pg_get_constraintdef(co.oid)
    FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace WHERE {_USER_NS}
    UNION ALL
    SELECT 'po:' || polrelid::regclass || '.' || polname FROM pg_policy
    UNION ALL
    SELECT 'e:' || extname || ':' || extversion FROM pg_extension
    UNION ALL
    SELECT 'et:' || evtname FROM pg_event_trigger
    UNION ALL
    SELECT 'pub:' || pubname FROM pg_publication
    UNION ALL
    SELECT 'da:' || coalesce(defaclacl::text, '') FROM pg_default_acl
    UNION ALL
    SELECT 'sq:' || schemaname || '.' || sequencename || ':' || coalesce(last_value::text, '-')
    FROM pg_sequences
    UNION ALL
    SELECT 's:' || count(*) FROM pg_statistic s JOIN pg_class c ON c.oid = s.starelid
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_NS}
    UNION ALL
    SELECT 'lo:' || count(*) FROM pg_largeobject_metadata
    UNION ALL
    SELECT 'dr:' || count(*) FROM pg_db_role_setting
    WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
    UNION ALL
    SELECT 'dacl:' || coalesce(datacl::text, '') FROM pg_database
    WHERE datname = current_database()
) f(x)
"""

_USER_TABLES = f"""
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND {_USER_NS}"""
_TABLES = _USER_TABLES + " ORDER BY 1, 2"
# The tables a test wrote to. A table nothing was written to since the last TRUNCATE has no
# block (an insert, even rolled back, extends the heap), so neither have its indexes: it is as
# a fresh clone's already. Truncating costs the same whether a table is empty or not (new
# files for the table and each index: ~3 ms per table, ~70 ms for all of them), and a test
# touches fewer than half of them.
_WRITTEN_TABLES = _USER_TABLES + " AND pg_relation_size(c.oid) > 0 ORDER BY 1, 2"
_SEQUENCES = "SELECT schemaname, sequencename FROM pg_sequences ORDER BY 1, 2"


@dataclass(frozen=True)
class Reference:
    """What a fresh clone of the template looks like: its catalog fingerprint and the rows its
    tables hold (per table: column names, rows)."""

    fingerprint: str
    rows: dict[tuple[str, str], tuple[list[str], list[tuple[Any, ...]]]]
    sizes: dict[tuple[str, str], tuple[int, float]]


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def owned_name() -> str:
    """A database name of this process's own."""
    return f"{PREFIX}p{os.getpid()}_{secrets.token_hex(5)}"


def ready_name(digest: str) -> str:
    """The name of a reset database of this migration set, free for anyone to claim."""
    return f"{PREFIX}r{digest}_{secrets.token_hex(5)}"


def owner_pid(name: str) -> int | None:
    """The process a ``shipyard_test_p<pid>_…`` database belongs to (None: another form)."""
    rest = name.removeprefix(PREFIX)
    if rest == name or not rest.startswith("p") or "_" not in rest:
        return None
    pid = rest[1:].split("_", 1)[0]
    return int(pid) if pid.isdigit() else None


def learn(url: str) -> Reference:
    """The reference, read from a database known to be a fresh clone."""
    with psycopg.connect(url, autocommit=True) as conn:
        fingerprint = _fingerprint(conn)
        rows: dict[tuple[str, str], tuple[list[str], list[tuple[Any, ...]]]] = {}
        for schema, table in conn.execute(_TABLES).fetchall():
            cursor = conn.execute(sql.SQL("SELECT * FROM {}.{}").format(_id(schema), _id(table)))
            found = cursor.fetchall()
            if found:
                columns = [d.name for d in cursor.description or []]
                rows[(schema, table)] = (columns, found)
        sizes = {
            (schema, name): (pages, tuples)
            for schema, name, pages, tuples in conn.execute(
                f"SELECT n.nspname, c.relname, c.relpages, c.reltuples FROM pg_class c "
                f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_NS}"
            ).fetchall()
        }
    return Reference(fingerprint, rows, sizes)


def claim(conn: psycopg.Connection[Any], name: str, new: str) -> bool:
    """Rename ``name`` to ``new``; False if it is gone, taken or in use."""
    try:
        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(_id(name), _id(new)))
    except psycopg.Error:
        return False
    return True


def claim_ready(conn: psycopg.Connection[Any], digest: str) -> str | None:
    """Claim a reset database of this migration set, renamed to one of this process's own."""
    prefix = f"{PREFIX}r{digest}_"
    names = conn.execute(
        "SELECT datname FROM pg_database WHERE left(datname, %s) = %s ORDER BY random() LIMIT 8",
        (len(prefix), prefix),
    ).fetchall()
    for (name,) in names:
        new = owned_name()
        if claim(conn, name, new):
            return new
    return None


def orphans(conn: psycopg.Connection[Any]) -> list[str]:
    """Databases of processes that are gone (runs killed midway), not connected to."""
    found = conn.execute(
        "SELECT datname FROM pg_database d WHERE left(datname, %s) = %s "
        "AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)",
        (len(PREFIX) + 1, PREFIX + "p"),
    ).fetchall()
    return [n for (n,) in found if (pid := owner_pid(n)) is not None and not alive(pid)]


def sweep_stale(admin: str, digest: str, among: list[str] | None = None) -> int:
    """Drop the ready databases of other migration sets (left when the migrations changed):
    claimed first, so two processes never drop the same one. Returns how many. ``among``
    limits the sweep to those names (a test's own)."""
    dropped = 0
    with psycopg.connect(admin, autocommit=True) as conn:
        mine = f"{PREFIX}r{digest}_"
        for (name,) in conn.execute(
            "SELECT datname FROM pg_database WHERE left(datname, %s) = %s "
            "AND left(datname, %s) <> %s",
            (len(PREFIX) + 1, PREFIX + "r", len(mine), mine),
        ).fetchall():
            if among is not None and name not in among:
                continue
            private = owned_name()
            if claim(conn, name, private):
                drop(conn, private)
                dropped += 1
    return dropped


def recycle(admin: str, name: str, digest: str, reference: Reference | None) -> bool:
    """Reset ``name`` and leave it ready under a ready name; False if it had to be dropped
    (changed by its test beyond its rows, or no reference yet)."""
    with psycopg.connect(admin, autocommit=True) as conn:
        private = owned_name()
        for _ in range(50):  # ended connections take a moment to go
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            if claim(conn, name, private):
                break
            if not _exists(conn, name):  # another process recycled it first
                return False
            time.sleep(0.1)
        else:
            drop(conn, name)
            return False
        try:
            ok = reference is not None and _reset(with_database(admin, private), reference)
        except psycopg.Error:  # e.g. a lock held by a prepared transaction: dropped instead
            ok = False
        if ok and claim(conn, private, ready_name(digest)):
            return True
        drop(conn, private)
        return False


def drop(conn: psycopg.Connection[Any], name: str) -> None:
    """Drop ``name`` (its connections ended), ignoring a database already gone."""
    with contextlib.suppress(psycopg.Error):
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(_id(name)))


def _reset(url: str, reference: Reference) -> bool:
    """Empty every table, restart the sequences, refill the template's rows, forget the
    statistics and counters; True if the catalog now matches a fresh clone's."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '5s'")
        tables = [sql.SQL("{}.{}").format(_id(s), _id(t)) for s, t in conn.execute(_WRITTEN_TABLES)]
        with conn.transaction():
            if tables:
                conn.execute(
                    sql.SQL("TRUNCATE {} RESTART IDENTITY").format(sql.SQL(", ").join(tables))
                )
            for schema, name in conn.execute(_SEQUENCES).fetchall():
                conn.execute(sql.SQL("ALTER SEQUENCE {}.{} RESTART").format(_id(schema), _id(name)))
            for (schema, table), (columns, rows) in reference.rows.items():
                statement = sql.SQL("INSERT INTO {}.{} ({}) VALUES ({})").format(
                    _id(schema),
                    _id(table),
                    sql.SQL(", ").join(map(_id, columns)),
                    sql.SQL(", ").join(sql.Placeholder() * len(columns)),
                )
                with conn.cursor() as cursor:
                    cursor.executemany(statement, rows)
            # A test that analyzed (or autovacuum did) leaves planner statistics a fresh
            # clone does not have; plans would differ.
            conn.execute(
                f"DELETE FROM pg_statistic WHERE starelid IN (SELECT c.oid FROM pg_class c "
                f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_NS})"
            )
        # TRUNCATE marks each relation's recorded size unknown (0 pages, -1 tuples), where a
        # fresh clone's indexes, built by the migrations, say 1 page and 0 tuples: put back
        # what a clone records, so the planner sees what it sees there.
        keys = list(reference.sizes)
        conn.execute(
            "UPDATE pg_class c SET relpages = r.pages, reltuples = r.tuples "
            "FROM pg_namespace n, unnest(%s::text[], %s::text[], %s::int[], %s::real[]) "
            "AS r(nspname, relname, pages, tuples) "
            "WHERE n.oid = c.relnamespace AND n.nspname = r.nspname AND c.relname = r.relname "
            "AND (c.relpages, c.reltuples) IS DISTINCT FROM (r.pages, r.tuples)",
            (
                [k[0] for k in keys],
                [k[1] for k in keys],
                [reference.sizes[k][0] for k in keys],
                [reference.sizes[k][1] for k in keys],
            ),
        )
        conn.execute("SELECT pg_stat_reset()")
        return _fingerprint(conn) == reference.fingerprint


def _exists(conn: psycopg.Connection[Any], name: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
    )


def _fingerprint(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(FINGERPRINT).fetchone()
    return str(row[0]) if row else ""


def _id(name: str) -> sql.Identifier:
    return sql.Identifier(name)
