"""Lost connections: a claim that committed while its answer was lost (the worker finds and
runs its runs), and a worker starting on connections the server has ended.

The worker marks a failed claim as unsure; its next claim pass first asks the store for the
runs leased to it that it does not hold and starts them, instead of leaving them leased to
nobody until the lease expires (when the attempt would count as crashed without having run).
"""

from __future__ import annotations

import psycopg
import pytest

from shipyard import RunStatus, task
from shipyard.engine.engine import Engine
from shipyard.testing.eventually import eventually


async def test_runs_leased_by_a_lost_claim_are_adopted(engine: Engine, start_worker) -> None:
    seen: list[int] = []

    @task(id="adopted")
    async def adopted(payload):
        seen.append(payload["n"])
        return payload["n"]

    # A long backup poll: only the adoption can start the runs soon.
    worker = await start_worker(poll_interval=60.0)
    # While the worker's own claims wait, a claim in its name commits without it hearing
    # of it.
    async with worker.claim_lock:
        handles = [await adopted.trigger({"n": n}) for n in range(3)]
        lost = await engine.claim_runs(
            worker.id, worker.task_ids, 3, worker.lease_ms, worker.version
        )
        assert sorted(r.id for r in lost) == sorted(h.id for h in handles)
        worker.claim_unsure = True
    worker.poke()
    for handle in handles:
        record = await engine.wait_for_final(handle.id, timeout=20)
        assert record.status == RunStatus.COMPLETED
        assert record.attempt_number == 1  # the claimed attempt ran; none crashed
    await eventually(lambda: sorted(seen) == [0, 1, 2])
    assert worker.claim_unsure is False


async def test_a_worker_starts_through_terminated_connections(
    engine: Engine, start_worker, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("pg_terminate_backend is PostgreSQL's")

    @task(id="after-terminate")
    async def after_terminate(payload):
        return "ok"

    # The engine's pooled connections die under it (a failover, an administrator): the
    # worker's registration meets a dead connection first, and must retry, not exit.
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    await start_worker()
    handle = await after_terminate.trigger({})
    record = await engine.wait_for_final(handle.id, timeout=20)
    assert record.status == RunStatus.COMPLETED
