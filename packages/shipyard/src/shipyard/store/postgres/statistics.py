"""Fresh planner statistics for the engine's growing tables, whether or not autovacuum runs.

A prepared statement's generic plan is made once, for the table sizes of that moment, and kept
until the table's statistics change. A worker that starts on a new install makes its plans on
tables of a few rows; without an ``ANALYZE`` (autovacuum off, or behind a burst of triggers)
it keeps them as the tables grow, and plans made for a few rows read whole tables: in
``conformance/test_rows_read.py`` every hot statement planned on small tables read ``runs``
or ``waitpoints`` whole once 11,000 runs were in, the heartbeat's lease extension 120 million
rows. An ``ANALYZE`` invalidates those plans in every session.

So the workers analyze these tables themselves when one has outgrown its statistics: at least
1,000 live rows and more than twice the rows its statistics counted. A table growing from
empty is analyzed about log₂(size) times in all, and never again at a steady size; a plan is
never made on statistics more than half a table's size off. One worker at a time (an
advisory lock), in the background: ``ANALYZE`` reads a sample and blocks no writer.

``slot_releases`` (0018) is written and emptied again by every finish and claim: its rows live
for milliseconds, and without autovacuum their dead versions would pile up in every page a
claim reads. The same pass vacuums it once it holds :data:`RELEASES_DEAD_ROWS` dead rows
(``SKIP_LOCKED``: a worker vacuuming it already is enough).
"""

from __future__ import annotations

from typing import Any

from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from shipyard.store.postgres.driver import borrow
from shipyard.store.sql import load_queries

__all__ = ["GROWING_TABLES", "RELEASES_DEAD_ROWS", "refresh_statistics"]

RELEASES_DEAD_ROWS = 10_000
"""Dead rows of ``slot_releases`` that make the statistics pass vacuum it."""

GROWING_TABLES = (
    "runs",
    "attempts",
    "run_events",
    "run_tags",
    "waitpoints",
    "run_waitpoints",
    "batches",
)
"""The tables that grow with the work an install does (the others hold a row per queue,
task, worker, schedule or key)."""

_Q = load_queries("postgres")


async def refresh_statistics(pool: AsyncConnectionPool[Any]) -> list[str]:
    """Analyze the growing tables whose statistics they have outgrown; their names (none when
    another worker is at it)."""
    async with borrow(pool) as conn:
        dead = await conn.execute(_Q["releases_dead_rows"], {"rows": RELEASES_DEAD_ROWS})
        if await dead.fetchone() is not None:
            await conn.execute("VACUUM (SKIP_LOCKED) slot_releases")  # autocommit: no transaction
        cursor = await conn.execute(_Q["tables_outgrown"], {"tables": list(GROWING_TABLES)})
        outgrown = sorted(str(row[0]) for row in await cursor.fetchall())
        if not outgrown:
            return []
        async with conn.transaction():
            locked = await (await conn.execute(_Q["statistics_lock"])).fetchone()
            if locked is None or not locked[0]:
                return []
            for table in outgrown:
                await conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    return outgrown
