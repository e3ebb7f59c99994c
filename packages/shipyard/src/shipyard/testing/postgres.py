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
import secrets
import threading
import time
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from shipyard.store.protocol import MigrateParams

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
ENGINE_SCHEMA = "shipyard"
ENGINE_OPTIONS = f"-c search_path=public,{ENGINE_SCHEMA}"
"""libpq ``options`` for a test's own connection: the engine's tables unqualified, while the
tables a test creates go to ``public``, where its tasks' own connections find them."""


def admin_url() -> str:
    """The maintenance database URL tests connect to."""
    return os.environ.get("SHIPYARD_TEST_POSTGRES_URL", DEFAULT_URL)


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


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


DROPPERS = 4


def _drop_database(name: str) -> None:
    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(admin_url(), autocommit=True) as conn,
    ):
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _new_name() -> str:
    return f"shipyard_test_{secrets.token_hex(6)}"


class _Background:
    """Makes the next databases while tests run and drops finished ones, in two threads.

    ``CREATE DATABASE … TEMPLATE`` takes ~0.5 s and ``DROP DATABASE`` ~0.2 s of waiting on the
    server, paid by every PostgreSQL test twice; off the test's path they overlap with it.
    """

    def __init__(self, template: str, ahead: int = 2) -> None:
        self.template = template
        self.ready: queue.Queue[str | BaseException] = queue.Queue(maxsize=ahead)
        self.drops: queue.Queue[str | None] = queue.Queue()
        self.stopping = threading.Event()
        self.maker = threading.Thread(target=self._make, name="test-db-maker", daemon=True)
        # A DROP mostly waits for every backend of the cluster to close the files (a barrier):
        # several droppers overlap those waits. Plain threads, not an executor: the
        # interpreter shuts executors down before atexit handlers run.
        self.droppers = [
            threading.Thread(target=self._drop, name=f"test-db-dropper-{i}", daemon=True)
            for i in range(DROPPERS)
        ]
        self.maker.start()
        for dropper in self.droppers:
            dropper.start()
        atexit.register(self.close)

    def _make(self) -> None:
        try:
            with psycopg.connect(admin_url(), autocommit=True) as conn:
                while not self.stopping.is_set():
                    name = _new_name()
                    conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
                    while True:
                        try:
                            self.ready.put(name, timeout=0.2)
                            break
                        except queue.Full:
                            if self.stopping.is_set():
                                self.drops.put(name)
                                return
        except BaseException as exc:  # handed to the test that waits for a database
            self.ready.put(exc)

    def _drop(self) -> None:
        while (name := self.drops.get()) is not None:
            _drop_database(name)

    def take(self) -> str:
        """The next fresh database's name (waits for one if none is ready)."""
        item = self.ready.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        """Stop making databases and drop every one not handed out (at process exit)."""
        self.stopping.set()
        self.maker.join(timeout=30)
        while True:
            try:
                item = self.ready.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, str):
                self.drops.put(item)
        for _ in self.droppers:
            self.drops.put(None)
        for dropper in self.droppers:
            dropper.join(timeout=60)


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
        background mode it is dropped soon after, by the background thread."""
        name = urlsplit(url).path.lstrip("/")
        if not name.startswith("shipyard_test_"):
            raise ValueError(f"refusing to drop {name!r}: not a test database")
        if self._background is not None:
            self._background.drops.put(name)
            return
        async with await psycopg.AsyncConnection.connect(admin_url(), autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


databases = TemplateDatabases()
