"""The one-run trigger of an otherwise idle event loop, on a blocking connection.

A program that triggers runs one at a time (a script, a CLI, the peers harness's
``loop.run_until_complete(task.trigger(...))`` per run) pays psycopg's asynchronous machinery
for a statement that is the only thing its loop does: a reader registered and removed, a
future, a timer and two loop iterations per wait — ~70 µs of client CPU more than the same
execute on a blocking connection, and more of the wall time (issue 16, single trigger). When no
other task of the loop is alive (the connection pool's own tasks aside), blocking holds up no
coroutine: the insert runs on a dedicated blocking connection instead. Anything else alive on
the loop — a worker's loops, a server's connections, a ``gather`` of triggers — takes the
asynchronous path as before, so the loop never waits on the database while it has work. What
can wait is a callback (a timer, a protocol's ``data_received``): by one round trip and commit,
as behind any coroutine step that long.

Same statement, same transaction semantics (autocommit: one statement, one commit), same
errors: a broken connection is dropped and the error raised, as the pool's would be; the
next inline insert connects afresh.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

import psycopg

from shipyard.store.postgres.listener import connect_blocking

__all__ = ["InlineInserts", "loop_is_idle"]


def loop_is_idle(pool_prefix: str) -> bool:
    """Whether the running task is the only live task of its loop, besides those whose name
    starts with ``pool_prefix`` (psycopg_pool names its scheduler and workers
    ``<pool name>-…``; they only wait for maintenance jobs) and those that only wait for an
    ``asyncio.Event`` (on Python 3.11 the pool's scheduler waits with ``wait_for``, which wraps
    ``Event.wait`` in a task of its own): only code running on the loop can set the event, so
    such a task is not held up by a blocking call more than its setter is."""
    current = asyncio.current_task()
    for task in asyncio.all_tasks():
        if task is current or task.get_name().startswith(pool_prefix):
            continue
        if getattr(task.get_coro(), "cr_code", None) is not _EVENT_WAIT:
            return False
    return True


_EVENT_WAIT = asyncio.Event.wait.__code__


class InlineInserts:
    """One blocking connection for the inline path; used by one caller at a time (a second
    thread's idle loop meanwhile takes the asynchronous path)."""

    def __init__(self, url: str, schema: str, pool_prefix: str) -> None:
        self._url = url
        self._schema = schema
        self._pool_prefix = pool_prefix
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self._closed = False

    def insert(self, query: str, values: Mapping[str, Any]) -> bool | None:
        """Run the one-row insert statement ``query``: True when it returned a row (the run
        was inserted), False when not (a key conflict), None when it did not run (something
        else is alive on the loop, the connection is in use, or closed)."""
        if not loop_is_idle(self._pool_prefix) or not self._lock.acquire(blocking=False):
            return None
        try:
            if self._closed:
                return None
            conn = self._conn
            if conn is None or conn.closed:
                conn = self._conn = connect_blocking(self._url, self._schema)
            try:
                return conn.execute(query, values).fetchone() is not None
            except psycopg.OperationalError:
                conn.close()
                self._conn = None
                raise
        finally:
            self._lock.release()

    def close(self) -> None:
        """Close the connection; later inserts return None. Safe to call twice."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None
