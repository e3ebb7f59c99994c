"""The PostgreSQL store: many workers on many hosts coordinating through one database."""

from shipyard.store.postgres.store import PostgresStore, StoreUnavailableError

__all__ = ["PostgresStore", "StoreUnavailableError"]
