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
    raise ConfigError(
        "The PostgreSQL store is not available yet in this version "
        f"(database_url=…@{url.split('@')[-1]}); use sqlite:///path.db."
    )


__all__ = ["Store", "open_store"]
