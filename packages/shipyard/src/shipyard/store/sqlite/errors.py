"""What a SQLite failure means to a caller: file-level errors become the
:class:`~shipyard.errors.StoreError` that says what to do, and a locked database is retried
with sub-millisecond sleeps (SQLite's own busy handler sleeps in coarse 1-100 ms steps, which
ruins tail latency; the store sets its busy timeout to 0 and uses :func:`retry_busy`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from shipyard.errors import (
    DatabaseBusyError,
    DatabaseCorruptError,
    DatabaseFullError,
    DatabaseReadOnlyError,
    StoreUnavailableError,
)

T = TypeVar("T")

__all__ = ["LOCK_WAIT_SECONDS", "once", "primary_code", "retry_busy", "store_error"]

# How long a writer waits for another process's write transaction before giving up.
LOCK_WAIT_SECONDS = 30.0


def primary_code(exc: sqlite3.Error) -> int | None:
    """SQLite's primary result code of ``exc`` (the extended code's low byte), if it has one."""
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def store_error(exc: sqlite3.Error, path: Path) -> Exception:
    """The :class:`~shipyard.errors.StoreError` a file-level SQLite failure means, or ``exc``.

    Busy and locked errors are left to the retry logic; anything else (a bug, a constraint)
    stays the SQLite error it is.
    """
    code = primary_code(exc)
    reason = str(exc) or type(exc).__name__
    where = str(path)
    if code == sqlite3.SQLITE_READONLY:
        return DatabaseReadOnlyError(
            f"The SQLite database {path} is read-only, so this change was not written "
            f"(SQLite: {reason}). Reading works. To write, make the file, its -wal and -shm "
            "files and its folder writable by this user, or set SHIPYARD_DATABASE_URL to a "
            "writable database.",
            where=where,
        )
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return DatabaseCorruptError(
            f"{path} is not a usable SQLite database (SQLite: {reason}). If it holds Shipyard "
            "runs you need, restore it from a backup; otherwise move it aside (Shipyard then "
            "starts with an empty database) or set SHIPYARD_DATABASE_URL to another file.",
            where=where,
        )
    if code == sqlite3.SQLITE_FULL:
        return DatabaseFullError(
            f"The SQLite database {path} cannot grow: the disk is full (SQLite: {reason}). "
            "Nothing of this operation was written. Free disk space, then retry.",
            where=where,
        )
    if code == sqlite3.SQLITE_CANTOPEN:
        return StoreUnavailableError(
            f"Cannot open the SQLite database {path} (SQLite: {reason}). Check that the path "
            "exists and that this user may read it (and write it, unless read-only).",
            where=where,
        )
    return exc


def retry_busy(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, retried with sub-millisecond sleeps while the database is locked."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    pause = 0.0002
    while True:
        try:
            return fn(*args)
        except sqlite3.OperationalError as exc:
            if not _locked(exc):
                raise
            if time.monotonic() > deadline:
                raise DatabaseBusyError(
                    f"The SQLite database stayed locked for {LOCK_WAIT_SECONDS:.0f} s; "
                    "another process holds a long write transaction."
                ) from exc
            time.sleep(pause)
            pause = min(pause * 1.5, 0.005)


class _Busy(Exception):
    """The database was locked and the caller asked not to wait (``_drive(wait=False)``).
    Control flow between this module and the SQLite store, never seen by users (their errors
    are in :mod:`shipyard.errors`), hence private."""


def once(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``; a locked database raises :class:`_Busy` at once."""
    try:
        return fn(*args)
    except sqlite3.OperationalError as exc:
        if _locked(exc):
            raise _Busy from exc
        raise


def _locked(exc: sqlite3.OperationalError) -> bool:
    """Whether ``exc`` says the database is locked by another connection (retrying may help)."""
    message = str(exc)
    return "locked" in message or "busy" in message
