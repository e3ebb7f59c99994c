"""Storage: the :class:`Store` protocol and its backends.

``open_store(settings)`` picks the backend from the database URL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.errors import ConfigError
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

        return PostgresStore(url, wait_for_db=settings.wait_for_db)
    raise ConfigError(f"Unsupported database URL scheme in {url.split('://')[0]}://…")


__all__ = ["Store", "open_store"]
