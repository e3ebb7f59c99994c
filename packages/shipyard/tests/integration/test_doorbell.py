"""SQLite's cross-process wake-up (a UDP doorbell per worker): a process that rang while no
worker was live reads the live workers again soon, so a worker that starts right after hears
the next ring instead of waiting for its backup poll."""

from __future__ import annotations

import pytest

from shipyard.engine.engine import Engine
from shipyard.store.params import ReadyNotifyParams
from shipyard.store.sqlite import store as sqlite_store

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_a_worker_registered_after_an_empty_ring_hears_the_next(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The empty list is re-read at once here; the list of live workers is kept for an hour.
    monkeypatch.setattr(sqlite_store, "_EMPTY_PORTS_TTL_SECONDS", 0.0)
    monkeypatch.setattr(sqlite_store, "_PORTS_TTL_SECONDS", 3600.0)
    store = engine.store
    await store.ready_notify(ReadyNotifyParams(engine.environment, engine.now()))  # nobody
    listener = await store.ready_listen()
    try:
        await engine.register_worker("worker_late", doorbell_port=listener.port)
        await store.ready_notify(ReadyNotifyParams(engine.environment, engine.now()))
        assert await listener.wait(5.0), "the new worker was not rung"
        # The next ring reaches it too (the list that now names it is kept).
        await store.ready_notify(ReadyNotifyParams(engine.environment, engine.now()))
        assert await listener.wait(5.0)
    finally:
        listener.close()
