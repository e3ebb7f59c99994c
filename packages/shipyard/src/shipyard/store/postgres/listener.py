"""PostgreSQL connection basics shared by the store: the engine schema's ``search_path``, the
connect timeout, and :class:`PostgresListener` (a ``LISTEN`` connection that wakes workers and
feed readers)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import psycopg
from psycopg import sql

from shipyard.store.doorbell import WakeSignal

__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "DEFAULT_SCHEMA",
    "FEED_POLL_SECONDS",
    "PostgresListener",
    "search_path_statement",
]

log = logging.getLogger("shipyard.store")
CONNECT_TIMEOUT_SECONDS = 10.0
DEFAULT_SCHEMA = "shipyard"
# A feed reader's backup look: notifications missed while its LISTEN connection was down.
FEED_POLL_SECONDS = 1.0


def search_path_statement(schema: str) -> sql.Composed:
    """``SET search_path TO "<schema>"``: what every engine connection runs once."""
    return sql.SQL("SET search_path TO {}").format(sql.Identifier(schema))


class PostgresListener(WakeSignal):
    """A LISTEN connection (a worker's, on ``shipyard_ready``; a feed reader's). A lost
    connection is re-established with backoff; the listener's backup poll
    (``poll_interval``) covers notifications missed meanwhile."""

    port: int | None = None

    def __init__(
        self,
        url: str,
        registry: list[PostgresListener],
        schema: str = DEFAULT_SCHEMA,
        *,
        channels: Sequence[str] = ("shipyard_ready",),
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
                    await conn.execute(search_path_statement(self._schema))
                    for channel in self._channels:
                        await conn.execute(f"LISTEN {channel}")
                    if failing:
                        log.warning("LISTEN connection to PostgreSQL is back")
                        failing = False
                    delay = 0.2
                    self._event.set()  # anything may have happened while we were away
                    async for _ in conn.notifies():
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
