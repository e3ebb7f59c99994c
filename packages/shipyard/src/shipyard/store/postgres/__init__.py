"""The PostgreSQL store: many workers on many hosts coordinating through one database."""

from shipyard.extras import missing_extra

try:
    from shipyard.store.postgres.store import PostgresStore
except ImportError as exc:  # a light install: say which extra has the driver
    raise missing_extra(exc, "postgres", "The PostgreSQL store") from None

__all__ = ["PostgresStore"]
