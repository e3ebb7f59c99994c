"""The PostgreSQL store: many workers on many hosts coordinating through one database."""

from shipyard.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
