"""Which errors count as "the database is unreachable" (an outage) and which are bugs."""

from __future__ import annotations

import sqlite3

import psycopg
from psycopg_pool import PoolTimeout

from shipyard.errors import DatabaseFullError, StoreUnavailableError
from shipyard.store import is_unavailable


def test_connection_errors_are_outages() -> None:
    assert is_unavailable(psycopg.OperationalError("server closed the connection"))
    assert is_unavailable(PoolTimeout("couldn't get a connection"))
    assert is_unavailable(StoreUnavailableError("Cannot reach PostgreSQL"))
    assert is_unavailable(ConnectionRefusedError())
    assert is_unavailable(sqlite3.OperationalError("database is locked"))


def test_a_full_disk_is_an_outage() -> None:
    # Writes fail until space is freed; then the same writes succeed: retry, don't crash.
    assert is_unavailable(DatabaseFullError("The SQLite database cannot grow: the disk is full"))
    assert is_unavailable(sqlite3.OperationalError("database or disk is full"))


def test_other_errors_are_not_outages() -> None:
    assert not is_unavailable(ValueError("bad value"))
    assert not is_unavailable(psycopg.errors.UniqueViolation("duplicate key"))
    assert not is_unavailable(sqlite3.OperationalError("no such table: runs"))
    assert not is_unavailable(KeyError("x"))
