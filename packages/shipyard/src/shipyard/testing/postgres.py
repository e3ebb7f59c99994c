"""Throwaway PostgreSQL databases for tests, cloned from a migrated template.

``SHIPYARD_TEST_POSTGRES_URL`` names the server (default: the local ``postgres`` superuser on
127.0.0.1:5432). When the server is unreachable, tests that need it are skipped with the
reason — unless ``SHIPYARD_REQUIRE_POSTGRES=1`` (CI sets it), in which case they fail, so a CI
run can never pass with them skipped.

The engine's tables live in the ``shipyard`` schema: a test that reads them over its own
connection passes ``options=ENGINE_OPTIONS`` (``search_path`` set at connect).

Example::

    url = require_postgres()          # skip or fail if there is no server
    db = await databases.create()     # a fresh, migrated database: postgresql://.../<name>
    with psycopg.connect(db, options=ENGINE_OPTIONS) as conn:
        conn.execute("SELECT count(*) FROM runs")
    await databases.drop(db)
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import os
import queue
import threading
import time
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from shipyard.store.protocol import MigrateParams
from shipyard.testing import recycler
from shipyard.testing.recycler import with_database as with_database

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
ENGINE_SCHEMA = "shipyard"
ENGINE_OPTIONS = f"-c search_path=public,{ENGINE_SCHEMA}"
"""libpq ``options`` for a test's own connection: the engine's tables unqualified, while the
tables a test creates go to ``public``, where its tasks' own connections find them."""


def admin_url() -> str:
    """The maintenance database URL tests connect to."""
    return os.environ.get("SHIPYARD_TEST_POSTGRES_URL", DEFAULT_URL)


@cache
def _reachable() -> str | None:
    try:
        with psycopg.connect(admin_url(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


def require_postgres() -> str:
    """The admin URL, or skip (fail under ``SHIPYARD_REQUIRE_POSTGRES=1``) without a server."""
    import pytest

    problem = _reachable()
    if problem is not None:
        where = urlsplit(admin_url()).netloc.split("@")[-1]
        reason = f"PostgreSQL at {where} is not reachable: {problem}"
        if os.environ.get("SHIPYARD_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason} (SHIPYARD_REQUIRE_POSTGRES=1 forbids skipping)")
        pytest.skip(reason)
    return admin_url()


def _migrations_digest() -> str:
    from shipyard.store.postgres import store

    folder = Path(store.__file__).parent / "migrations"
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.sql")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


RECYCLERS = 4


def _new_name() -> str:
    return recycler.owned_name()


class _Background:
    """Makes the next databases while tests run, and resets finished ones for reuse, in
    background threads (see :mod:`shipyard.testing.recycler`: a ``DROP DATABASE`` per test
    made the server checkpoint hundreds of times a run).

    ``CREATE DATABASE … TEMPLATE`` takes ~0.5 s, a reset ~0.1 s; off the test's path they
    overlap with it. The next database is a ready one left by any process, else a new clone.
    """

    def __init__(self, template: str, ahead: int = 2) -> None:
        self.template = template
        self.digest = template.removeprefix("shipyard_tpl_")
        self.reference: recycler.Reference | None = None
        self.ready: queue.Queue[str | BaseException] = queue.Queue(maxsize=ahead)
        self.used: queue.Queue[str | None] = queue.Queue()
        self.stopping = threading.Event()
        self.maker = threading.Thread(target=self._make, name="test-db-maker", daemon=True)
        # Plain threads, not an executor: the interpreter shuts executors down before atexit
        # handlers run.
        self.recyclers = [
            threading.Thread(target=self._recycle, name=f"test-db-recycler-{i}", daemon=True)
            for i in range(RECYCLERS)
        ]
        self.maker.start()
        for thread in self.recyclers:
            thread.start()
        atexit.register(self.close)

    def _make(self) -> None:
        try:
            with psycopg.connect(admin_url(), autocommit=True) as conn:
                while not self.stopping.is_set():
                    name = recycler.claim_ready(conn, self.digest)
                    if name is None:
                        name = _new_name()
                        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
                    if self.reference is None:  # a fresh clone, or one reset to match one
                        self.reference = recycler.learn(with_database(admin_url(), name))
                        for orphan in recycler.orphans(conn):  # left by a run killed midway
                            self.used.put(orphan)
                        threading.Thread(
                            target=recycler.sweep_stale,
                            args=(admin_url(), self.digest),
                            name="test-db-sweeper",
                            daemon=True,
                        ).start()
                    while True:
                        try:
                            self.ready.put(name, timeout=0.2)
                            break
                        except queue.Full:
                            if self.stopping.is_set():
                                recycler.claim(conn, name, recycler.ready_name(self.digest))
                                return
        except BaseException as exc:  # handed to the test that waits for a database
            self.ready.put(exc)

    def _recycle(self) -> None:
        while (name := self.used.get()) is not None:
            try:
                recycler.recycle(admin_url(), name, self.digest, self.reference)
            except Exception:  # the server went away: left for the next run to recycle
                continue

    def take(self) -> str:
        """The next fresh database's name (waits for one if none is ready)."""
        item = self.ready.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        """At process exit: stop making databases, leave the ready ones ready for the next
        run, and give the resets under way a few seconds (what is left is recycled by the
        next process that starts)."""
        self.stopping.set()
        self.maker.join(timeout=10)
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(admin_url(), autocommit=True) as conn,
        ):
            while True:
                try:
                    item = self.ready.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, str):
                    recycler.claim(conn, item, recycler.ready_name(self.digest))
        for _ in self.recyclers:
            self.used.put(None)
        deadline = time.monotonic() + 10
        for thread in self.recyclers:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))


class TemplateDatabases:
    """Creates databases from a template migrated once per migration set.

    With :attr:`background` set (the test suite sets it; benchmarks leave it off so nothing
    runs beside what they measure), the next databases are made and finished ones dropped in
    background threads.
    """

    def __init__(self) -> None:
        self._template: str | None = None
        self._background: _Background | None = None
        self.background = False

    async def _ensure_template(self) -> str:
        if self._template is not None:
            return self._template
        from shipyard.store.postgres import PostgresStore

        name = f"shipyard_tpl_{_migrations_digest()}"
        async with await psycopg.AsyncConnection.connect(admin_url(), autocommit=True) as conn:
            # Two test processes may build the template at once; the lock makes one wait.
            await conn.execute("SELECT pg_advisory_lock(7262027)")
            try:
                cursor = await conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if await cursor.fetchone() is None:
                    await conn.execute(f'CREATE DATABASE "{name}"')
                    store = PostgresStore(with_database(admin_url(), name))
                    try:
                        await store.migrate(MigrateParams(now=int(time.time() * 1000)))
                    finally:
                        await store.close()
            finally:
                await conn.execute("SELECT pg_advisory_unlock(7262027)")
        self._template = name
        return name

    async def create(self) -> str:
        """A fresh migrated database; returns its URL."""
        template = await self._ensure_template()
        if self.background:
            if self._background is None:
                self._background = _Background(template)
            name = await asyncio.to_thread(self._background.take)
            return with_database(admin_url(), name)
        name = _new_name()
        async with await psycopg.AsyncConnection.connect(admin_url(), autocommit=True) as conn:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return with_database(admin_url(), name)

    async def drop(self, url: str) -> None:
        """Drop a database made by :meth:`create` (its connections are terminated); in the
        background mode it is reset for reuse soon after, by a background thread."""
        name = urlsplit(url).path.lstrip("/")
        if not name.startswith("shipyard_test_"):
            raise ValueError(f"refusing to drop {name!r}: not a test database")
        if self._background is not None:
            self._background.used.put(name)
            return
        async with await psycopg.AsyncConnection.connect(admin_url(), autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


databases = TemplateDatabases()
