"""Lost connections: a claim that committed while its answer was lost (the worker finds and
runs its runs), and a worker starting on connections the server has ended.

The worker marks a failed claim as unsure; its next claim pass first asks the store for the
runs leased to it that it does not hold and starts them, instead of leaving them leased to
nobody until the lease expires (when the attempt would count as crashed without having run).
"""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from shipyard import RunStatus, task
from shipyard.engine.engine import Engine
from shipyard.testing.eventually import eventually
from shipyard.testing.postgres import ENGINE_OPTIONS


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


async def test_a_claim_cut_off_after_its_finish_keeps_the_finish(
    engine: Engine, start_worker, database_url: str
) -> None:
    """On PostgreSQL a worker's finish and the claim after it are two transactions (the finish
    does not wait for the environment's slot row, 0018). When the claim fails after the finish
    committed, the worker keeps the finish's answer (the run counts as completed, its result is
    not taken for a rejected one) and claims again later."""
    if not database_url.startswith("postgresql"):
        pytest.skip("two transactions, and pg_terminate_backend, are PostgreSQL's")
    release = asyncio.Event()

    @task(id="finish-then-cut")
    async def finish_then_cut(payload):
        await release.wait()
        return payload["n"]

    worker = await start_worker(concurrency=2)
    handle = await finish_then_cut.trigger({"n": 1})
    await eventually(lambda: worker.active_count == 1)
    async with (
        await psycopg.AsyncConnection.connect(
            database_url, autocommit=True, options=ENGINE_OPTIONS
        ) as admin,
        await psycopg.AsyncConnection.connect(database_url, options=ENGINE_OPTIONS) as blocker,
    ):
        await blocker.execute(
            "SELECT running FROM environment_slots WHERE environment = %s FOR UPDATE",
            (engine.environment,),
        )
        release.set()

        async def waiting_claim() -> int | None:
            # The claim after the finish, waiting for the blocker's row lock.
            found = await admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE '%environment_slots%'"
            )
            row = await found.fetchone()
            return None if row is None else int(row[0])

        pid = await eventually(waiting_claim, timeout=10)
        # The finish committed before the claim began waiting.
        status = await admin.execute("SELECT status FROM runs WHERE id = %s", (handle.id,))
        assert await status.fetchone() == ("COMPLETED",)
        await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        await blocker.rollback()
    assert (await engine.wait_for_final(handle.id, timeout=20)).status == RunStatus.COMPLETED
    await eventually(lambda: worker.completed == 1)
    # The worker still claims: a run triggered now runs.
    second = await finish_then_cut.trigger({"n": 2})
    assert (await engine.wait_for_final(second.id, timeout=20)).status == RunStatus.COMPLETED
