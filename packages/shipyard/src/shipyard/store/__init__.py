"""Storage: the :class:`Store` protocol and its backends.

``open_store(settings)`` picks the backend from the database URL. Module map:

- ``protocol.py`` — the :class:`Store` protocol; ``params.py`` — one params type per method.
- ``core.py`` — every method written once over ``procedures/`` (the operations as sans-IO
  generators of ``steps.py``); ``rows.py`` — values in, the one row → record builder out.
- ``sql.py`` — named queries: ``sql/shared.sql`` plus each dialect's ``queries.sql``.
- ``sqlite/`` and ``postgres/`` — the drivers, migrations, and what each does its own way
  (claim, finish, wake-ups, heartbeats, fast paths); ``claims.py`` — the claim's rules;
  ``doorbell.py`` — SQLite's wake-ups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.errors import (
    ConfigError,
    DatabaseBusyError,
    DatabaseFullError,
    StoreUnavailableError,
)
from shipyard.store.protocol import Store

if TYPE_CHECKING:
    from shipyard.config import Settings


def open_store(settings: Settings) -> Store:
    """The store the settings' ``database_url`` names (not yet migrated)."""
    url = settings.database_url
    if url.startswith("sqlite://"):
        from shipyard.store.sqlite import SqliteStore

        return SqliteStore(settings.sqlite_path())
    if url.startswith(("postgresql://", "postgres://")):
        from shipyard.store.postgres import PostgresStore

        return PostgresStore(
            url,
            schema=settings.database_schema,
            wait_for_db=settings.wait_for_db,
            async_commit=settings.postgres_async_commit,
        )
    raise ConfigError(f"Unsupported database URL scheme in {url.split('://')[0]}://…")


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot serve the operation for now (rather than a
    bug): it could not be reached, stayed locked, or its disk is full. Nothing was written, or
    a fenced write may be repeated: callers retry with backoff and log the outage once."""
    import sqlite3

    if isinstance(
        exc,
        ConnectionError
        | TimeoutError
        | DatabaseBusyError
        | DatabaseFullError
        | StoreUnavailableError,
    ):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc)
        return any(word in text for word in ("locked", "busy", "unable to open", "disk is full"))
    try:
        import psycopg
        from psycopg_pool import PoolTimeout
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, psycopg.OperationalError | PoolTimeout)


__all__ = ["Store", "is_unavailable", "open_store"]
