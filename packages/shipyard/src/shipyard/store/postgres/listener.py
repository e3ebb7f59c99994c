"""PostgreSQL connection basics shared by the store: the setup every engine connection runs
(the engine schema's ``search_path``, JIT and sequential scans off), the connect timeout, the
blocking connections (heartbeat, inline inserts), and :class:`PostgresListener` (a ``LISTEN``
connection that wakes workers and feed readers)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from shipyard.store.doorbell import WakeSignal

__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "DEFAULT_SCHEMA",
    "FEED_POLL_SECONDS",
    "PostgresListener",
    "connect_blocking",
    "session_statement",
]

log = logging.getLogger("shipyard.store")
CONNECT_TIMEOUT_SECONDS = 10.0
DEFAULT_SCHEMA = "shipyard"
# A feed reader's backup look: notifications missed while its LISTEN connection was down.
FEED_POLL_SECONDS = 1.0


def session_statement(schema: str) -> sql.Composed:
    """What every engine connection runs once: ``search_path`` to the engine's schema, JIT
    compilation off, and sequential scans only where no index serves.

    JIT: the engine's statements are short; PL/pgSQL keeps a trigger statement's plan for the
    session, planned at its first call for that call's rows, and a session whose first status
    change touched 30,000 runs kept a plan costed over ``jit_above_cost``: every later claim
    and finish compiled 14 functions for its 100 runs (~10 ms, under the slot lock).

    Sequential scans: a prepared statement's generic plan is made once, for the table sizes
    of that moment, and kept until statistics change, which without autovacuum is never. A
    worker that started on small tables kept plans that read ``runs`` and ``waitpoints`` whole
    for their primary-key probes: after 100 ``trigger_and_wait`` round trips, parking 10,000
    runs went from ~3,500 to ~2,300 a second, and it gets slower as the tables grow. Every
    engine statement is written to probe an index; with ``enable_seqscan`` off the planner
    takes a sequential scan only where a table has no index for the statement."""
    quoted = '"' + schema.replace('"', '""') + '"'
    return sql.SQL(
        "SELECT set_config('search_path', {}, false), set_config('jit', 'off', false), "
        "set_config('enable_seqscan', 'off', false)"
    ).format(sql.Literal(quoted))


def connect_blocking(url: str, schema: str) -> psycopg.Connection[Any]:
    """A blocking autocommit connection, set up as every engine connection is; closed again if
    the setup fails."""
    conn = psycopg.connect(url, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT_SECONDS))
    try:
        conn.execute(session_statement(schema))
    except psycopg.Error:
        conn.close()
        raise
    return conn


class PostgresListener(WakeSignal):
    """A LISTEN connection (a worker's, on ``shipyard_ready`` and ``shipyard_wants``; a feed
    reader's). A lost connection is re-established with backoff; the listener's backup poll
    (``poll_interval``) covers notifications missed meanwhile. ``shipyard_wants`` sets
    :attr:`wants`; every other channel wakes the waiter."""

    port: int | None = None

    def __init__(
        self,
        url: str,
        registry: list[PostgresListener],
        schema: str = DEFAULT_SCHEMA,
        *,
        channels: Sequence[str] = ("shipyard_ready", "shipyard_wants"),
        poll_interval: float = FEED_POLL_SECONDS,
    ) -> None:
        super().__init__()
        self._url = url
        self._schema = schema
        self._task: asyncio.Task[None] | None = None
        self._registry = registry
        self._channels = tuple(channels)
        self.poll_interval = poll_interval

    async def start(self) -> None:
        """Start listening in the background."""
        self._task = asyncio.create_task(self._run(), name="shipyard-listen")

    async def _run(self) -> None:
        delay = 0.2
        failing = False
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT_SECONDS)
                )
                async with conn:
                    # LISTEN needs no tables, but every engine connection is in its schema.
                    await conn.execute(session_statement(self._schema))
                    for channel in self._channels:
                        await conn.execute(f"LISTEN {channel}")
                    if failing:
                        log.warning("LISTEN connection to PostgreSQL is back")
                        failing = False
                    delay = 0.2
                    # Anything may have happened while we were away.
                    self._event.set()
                    self.wants.set()
                    async for note in conn.notifies():
                        if note.channel == "shipyard_wants":
                            self.wants.set()
                        else:
                            self._event.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing:
                    log.error("LISTEN connection to PostgreSQL lost: %s (reconnecting)", exc)
                    failing = True
                await asyncio.sleep(delay)
                # Capped low: after a long outage, back within ~2 s of the server.
                delay = min(delay * 2, 2.0)

    def close(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self in self._registry:
            self._registry.remove(self)
