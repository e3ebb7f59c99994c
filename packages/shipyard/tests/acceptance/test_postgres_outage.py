"""A long PostgreSQL outage: the store is back within about a second of the server.

psycopg_pool retries a lost connection with a backoff that doubles without a cap (1, 2, 4, 8 …
s), so after an outage of a minute a worker reconnected about a minute after the server was
back (the chaos suite, ``bench/chaos.py --fault pg-restart --hold 8``: the first run completed
11–20 s after the restart). The store makes each reconnection attempt give up after
``RECONNECT_SECONDS`` and start afresh, so the pool tries about once a second.

A server of the test's own (``PrivatePostgres``), never the machine's shared one, is stopped
for 8 s: with the uncapped backoff the pool's next try after that would come 4.5–8 s after the
server is back; now it comes within about a second.
"""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from shipyard.store.postgres import PostgresStore
from shipyard.store.protocol import MigrateParams, RunListParams
from shipyard.testing.pg_server import PrivatePostgres, postgres_bin_dir

pytestmark = pytest.mark.timeout(90)

ENV = "production"
OUTAGE_SECONDS = 8.0


@pytest.mark.slow
async def test_the_pool_reconnects_soon_after_a_long_outage() -> None:
    if postgres_bin_dir() is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    server = await asyncio.to_thread(PrivatePostgres().start)
    store: PostgresStore | None = None
    try:
        url = await asyncio.to_thread(server.create_database, "outage")
        store = PostgresStore(url)
        await store.migrate(MigrateParams(now=0))
        assert (await store.run_list(RunListParams(ENV))).items == []

        await asyncio.to_thread(server.halt, "immediate")
        with pytest.raises(psycopg.OperationalError):  # the pooled connection is gone
            await store.run_list(RunListParams(ENV))
        # As a worker does, the next call comes at once and waits in the pool (whose timeout
        # is 30 s) for a connection, while the pool tries to make one.
        waiting = asyncio.create_task(store.run_list(RunListParams(ENV)))
        # The outage itself; not a wait for an effect.
        await asyncio.sleep(OUTAGE_SECONDS)
        await asyncio.to_thread(server.start)
        up = time.monotonic()
        while True:
            try:
                await waiting
                break
            except (psycopg.OperationalError, PoolTimeout):
                if time.monotonic() - up > 60:
                    raise
                waiting = asyncio.create_task(store.run_list(RunListParams(ENV)))
        lag = time.monotonic() - up
        assert lag < 3.0, f"the pool reconnected {lag:.1f} s after the server was back"
    finally:
        if store is not None:
            await store.close()
        await asyncio.to_thread(server.stop)
