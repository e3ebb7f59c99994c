"""Test databases are reset for reuse instead of dropped (PostgreSQL only).

A DROP DATABASE per test made the shared server checkpoint hundreds of times a suite run;
the recycler empties a finished database and hands it out again, but only when it is
indistinguishable from a fresh clone of the template (catalog, planner statistics, sizes,
sequences, the template's rows) — anything else is dropped.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from shipyard.config import load_settings
from shipyard.engine.engine import Engine
from shipyard.testing import recycler
from shipyard.testing.postgres import (
    ENGINE_OPTIONS,
    admin_url,
    databases,
    require_postgres,
    with_database,
)


def new_digest() -> str:
    """A migration-set name of this test's own: tests running side by side never see each
    other's ready databases."""
    return f"test{secrets.token_hex(4)}"


@pytest.fixture
async def used(tmp_path: Path) -> AsyncIterator[tuple[str, recycler.Reference, str]]:
    """A fresh clone, its reference, then rows and statistics as a test leaves them."""
    require_postgres()
    url = await databases.create()
    reference = recycler.learn(url)
    engine = Engine(load_settings(project_root=tmp_path, database_url=url))
    await engine.start()
    try:
        await engine.batch_trigger([{"task": "t", "payload": {"i": i}} for i in range(500)], {})
    finally:
        await engine.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    digest = new_digest()
    yield url.rsplit("/", 1)[1], reference, digest
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        for (name,) in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            (f"{recycler.PREFIX}r{digest}%",),
        ).fetchall():
            recycler.drop(conn, name)


def fingerprint(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute(recycler.FINGERPRINT).fetchone()
    assert row is not None
    return str(row[0])


def test_a_used_database_comes_back_as_a_fresh_clone(
    used: tuple[str, recycler.Reference, str],
) -> None:
    name, reference, digest = used
    assert fingerprint(with_database(admin_url(), name)) != reference.fingerprint  # analyzed
    assert recycler.recycle(admin_url(), name, digest, reference)
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        claimed = recycler.claim_ready(conn, digest)
        assert claimed is not None and recycler.owner_pid(claimed) == os.getpid()
        assert recycler.claim_ready(conn, digest) is None  # one database, claimed once
    url = with_database(admin_url(), claimed)
    assert fingerprint(url) == reference.fingerprint
    with psycopg.connect(url, options=ENGINE_OPTIONS) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)
        migrations = conn.execute("SELECT count(*) FROM shipyard_migrations").fetchone()
        assert migrations == (len(reference.rows[("shipyard", "shipyard_migrations")][1]),)
        # The identity sequence starts over, as in a clone.
        assert conn.execute("SELECT count(*) FROM run_events").fetchone() == (0,)
        assert conn.execute("SELECT last_value FROM run_events_id_seq").fetchone() == (1,)
        assert conn.execute("SELECT is_called FROM run_events_id_seq").fetchone() == (False,)
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        recycler.drop(conn, claimed)


def test_a_database_changed_beyond_its_rows_is_dropped(
    used: tuple[str, recycler.Reference, str],
) -> None:
    name, reference, digest = used
    with psycopg.connect(with_database(admin_url(), name), autocommit=True) as conn:
        conn.execute("CREATE TABLE public.effects (run_id text)")
    assert not recycler.recycle(admin_url(), name, digest, reference)
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s OR datname LIKE %s",
            (name, f"{recycler.PREFIX}r{digest}%"),
        ).fetchone() == (0,)


def test_a_stray_connection_by_the_old_name_cannot_reach_it(
    used: tuple[str, recycler.Reference, str],
) -> None:
    name, reference, digest = used
    stray = psycopg.connect(with_database(admin_url(), name), autocommit=True)
    try:
        assert recycler.recycle(admin_url(), name, digest, reference)
        assert stray.closed or stray.broken or _fails(stray)
    finally:
        stray.close()
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(with_database(admin_url(), name))


def _fails(conn: psycopg.Connection[object]) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


def test_databases_of_processes_that_are_gone_are_orphans() -> None:
    require_postgres()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    pid = int(dead.stdout)
    orphan = f"{recycler.PREFIX}p{pid}_deadbeef00"
    mine = recycler.owned_name()
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{orphan}"')
        conn.execute(f'CREATE DATABASE "{mine}"')
        try:
            found = recycler.orphans(conn)
            assert orphan in found
            assert mine not in found  # this process is alive
        finally:
            recycler.drop(conn, orphan)
            recycler.drop(conn, mine)


def test_ready_databases_of_other_migrations_are_swept() -> None:
    require_postgres()
    digest = new_digest()
    stale = recycler.ready_name(new_digest())
    current = recycler.ready_name(digest)
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{stale}"')
        conn.execute(f'CREATE DATABASE "{current}"')
        try:
            assert recycler.sweep_stale(admin_url(), digest, among=[stale, current]) == 1
            left = {
                n
                for (n,) in conn.execute(
                    "SELECT datname FROM pg_database WHERE datname = ANY(%s)", ([stale, current],)
                ).fetchall()
            }
            assert left == {current}
        finally:
            recycler.drop(conn, stale)
            recycler.drop(conn, current)
