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

The statement is prepared on that connection once and then run through libpq directly
(``PGconn.exec_prepared``, which waits for the server without the GIL), its values sent as
text and typed by the server from the columns they go into. psycopg's cursor machinery
(query conversion, per-value dumpers, the prepare bookkeeping, the result's description)
cost ~35 µs of client CPU per trigger, ~9 % of a one-run trigger's wall time. A value this
path cannot send as plain text (a NUL character; a type other than text, integer or a list
of texts: psycopg types a float or a boolean, where the server would only parse text), a
statement the server cannot prepare untyped, or a connection not in UTF-8 takes psycopg's
``execute`` as before.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any, cast

import psycopg
from psycopg import pq
from psycopg.errors import error_from_result

from shipyard.store.postgres.listener import connect_blocking

__all__ = ["InlineInserts", "loop_is_idle", "positional", "text_values"]

_PSYCOPG_PARAM = re.compile(r"%%|%\((\w+)\)s")


def positional(query: str) -> tuple[bytes, tuple[str, ...]]:
    """A query in psycopg's style (``%(name)s``, a literal ``%`` doubled) as libpq's
    (``$1``, ``$2`` …, a name used twice keeping its number) and the names in number order."""
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    return _PSYCOPG_PARAM.sub(number, query).encode(), tuple(order)


def _array_literal(items: Sequence[str]) -> str:
    quoted = (item.replace("\\", "\\\\").replace('"', '\\"') for item in items)
    return "{" + ",".join(f'"{item}"' for item in quoted) + "}"


def text_values(values: Mapping[str, Any], order: Sequence[str]) -> list[bytes | None] | None:
    """``values`` in ``order`` as the text a server parses them from (None for NULL), or None
    when one of them cannot be sent that way (psycopg's path then sends it, or refuses it)."""
    out: list[bytes | None] = []
    for name in order:
        value = values[name]
        if value is None:
            out.append(None)
            continue
        if isinstance(value, str):
            text = value
        elif isinstance(value, int) and not isinstance(value, bool):
            text = str(value)
        elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            text = _array_literal(value)
        else:
            return None
        # libpq sends text parameters up to their first NUL: psycopg refuses such a text.
        if "\x00" in text:
            return None
        out.append(text.encode())
    return out


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
        # Per connection: query → (prepared statement name, its parameter names), or None
        # where the server would not prepare it untyped (psycopg's execute then).
        self._prepared: dict[str, tuple[bytes, tuple[str, ...]] | None] = {}
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
                self._prepared = {}
            try:
                return self._execute(conn, query, values)
            except psycopg.OperationalError:
                conn.close()
                self._conn = None
                raise
        finally:
            self._lock.release()

    def _execute(
        self, conn: psycopg.Connection[Any], query: str, values: Mapping[str, Any]
    ) -> bool:
        if query in self._prepared:
            prepared = self._prepared[query]
        else:
            prepared = self._prepared[query] = self._prepare(conn, query)
        args = None if prepared is None else text_values(values, prepared[1])
        if prepared is None or args is None:
            return conn.execute(query, values).fetchone() is not None
        # None is a NULL to libpq (and to psycopg's own calls), whatever the stub says.
        result = conn.pgconn.exec_prepared(prepared[0], cast(Sequence[bytes], args))
        if result.status == pq.ExecStatus.TUPLES_OK:
            return result.ntuples > 0
        if conn.pgconn.status == pq.ConnStatus.BAD:
            message = conn.pgconn.error_message.decode("utf-8", "replace").strip()
            raise psycopg.OperationalError(message or "the connection to the server was lost")
        raise error_from_result(result, encoding=conn.info.encoding)

    def _prepare(
        self, conn: psycopg.Connection[Any], query: str
    ) -> tuple[bytes, tuple[str, ...]] | None:
        if conn.info.encoding != "utf-8":
            return None
        sql, order = positional(query)
        name = f"shipyard_inline_{len(self._prepared)}".encode()
        result = conn.pgconn.prepare(name, sql)
        if result.status == pq.ExecStatus.COMMAND_OK:
            return name, order
        if conn.pgconn.status == pq.ConnStatus.BAD:
            raise psycopg.OperationalError("the connection to the server was lost")
        return None

    def close(self) -> None:
        """Close the connection; later inserts return None. Safe to call twice."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None
