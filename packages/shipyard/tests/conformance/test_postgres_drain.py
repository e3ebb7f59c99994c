"""PostgreSQL drain: limits under concurrent finish-and-claim cycles, and async commit.

Several stores (separate pools, as separate worker processes have) finish what they hold and
claim again, concurrently, many times over: neither the queue's limit nor the environment's
is ever exceeded, in any committed state, and the slot counters (which the claim and the
finish keep themselves, 0016; less the slots finishes freed that no claim has moved in yet,
0018) match the runs that hold a slot. ``async_commit`` sends
``SET LOCAL synchronous_commit`` in the claim and finish transactions only, and a claim, or a
finish and the claim after it, is one round trip (both seen in libpq's trace of the store's
connections). A finish never waits for the environment's slot row (0018). An
attempt's finish is a HOT update of its row (0017: room left in attempts' pages).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from test_store_flow_control import claim_env, finish, limit_queue
from test_store_runs import ENV, insert_many, register, run_params

from shipyard.config import Settings
from shipyard.ids import new_id
from shipyard.records import RunRecord
from shipyard.store import open_store
from shipyard.store.postgres import PostgresStore
from shipyard.store.postgres.driver import borrow
from shipyard.store.protocol import (
    MigrateParams,
    QueueListParams,
    RunFinishManyParams,
    WaitpointBlockManyParams,
    WaitpointBlockParams,
    WaitpointCreateParams,
)
from shipyard.testing.eventually import eventually
from shipyard.testing.postgres import ENGINE_OPTIONS, databases, require_postgres

QUEUE_LIMIT = 3
ENV_LIMIT = 5  # with a burst factor of 1.0: 5 at once across queues


@pytest.fixture
async def url() -> AsyncIterator[str]:
    require_postgres()
    created = await databases.create()
    try:
        yield created
    finally:
        await databases.drop(created)


def holding(conn: psycopg.Connection[Any]) -> tuple[int, int, int, int]:
    """(runs holding a slot in queue task/t, in the environment, and the two counters less
    the slots finishes freed that no claim has moved into them yet, 0018)."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE queue = 'task/t'), count(*), "
        "(SELECT running FROM environment_slots WHERE environment = %(env)s) "
        "  - (SELECT COALESCE(sum(released), 0) FROM slot_releases WHERE environment = %(env)s), "
        "(SELECT running FROM concurrency_slots WHERE environment = %(env)s "
        "  AND queue = 'task/t' AND concurrency_key = '') "
        "  - (SELECT COALESCE(sum(released), 0) FROM slot_releases WHERE environment = %(env)s "
        "     AND queue = 'task/t' AND concurrency_key = '') "
        "FROM runs WHERE environment = %(env)s AND status IN ('DEQUEUED', 'EXECUTING')",
        {"env": ENV},
    ).fetchone()
    assert row is not None
    return row[0], row[1], row[2] or 0, row[3] or 0


async def store_holding(
    url: str, *, queued: int, claimed: int, connections: int
) -> tuple[PostgresStore, list[RunRecord]]:
    """A migrated store with ``queued`` runs of task t, ``claimed`` of them claimed."""
    store = PostgresStore(url, max_connections=connections)
    await store.migrate(MigrateParams(now=0))
    await register(store)
    await insert_many(store, [run_params(now=1_000 + n) for n in range(queued)])
    held = await store.run_claim(claim_env(limit=claimed))
    assert len(held) == claimed
    return store, held


async def test_concurrent_cycles_of_several_stores_never_exceed_a_limit(url: str) -> None:
    stores = [PostgresStore(url, max_connections=3) for _ in range(4)]
    first = stores[0]
    await first.migrate(MigrateParams(now=0))
    await register(first)
    await register(first, task_id="u")
    await limit_queue(first, "task/t", QUEUE_LIMIT)
    await insert_many(first, [run_params() for _ in range(120)])
    await insert_many(first, [run_params(task_id="u") for _ in range(60)])
    seen: list[tuple[int, int, int, int]] = []

    async def cycle(store: PostgresStore, worker: str) -> None:
        held: list[RunRecord] = []
        for _ in range(60):
            params = claim_env(limit=4, environment_limit=ENV_LIMIT, worker=worker)
            params.task_ids = ["t", "u"]
            params.burst_factor = 1.0
            if held:
                done = RunFinishManyParams(ENV, [finish(r.id, worker=worker) for r in held])
                accepted, held = await store.run_finish_and_claim(done, params)
                assert all(accepted)
            else:
                held = await store.run_claim(params)
            await asyncio.sleep(0)

    with psycopg.connect(url, autocommit=True, options=ENGINE_OPTIONS) as conn:
        watching = True

        async def watch() -> None:
            while watching:
                seen.append(await asyncio.to_thread(holding, conn))

        watcher = asyncio.create_task(watch())
        try:
            await asyncio.gather(*(cycle(s, f"w{i}") for i, s in enumerate(stores)))
        finally:
            watching = False
            await watcher
            for store in stores:
                await store.close()
        final = holding(conn)
    assert seen, "the watcher read nothing"
    assert max(s[0] for s in seen) <= QUEUE_LIMIT
    assert max(s[1] for s in seen) <= ENV_LIMIT
    assert max(s[1] for s in seen) == ENV_LIMIT  # the limits were reached, not avoided
    # Every committed state: the counters are the runs holding slots (one snapshot each).
    assert [s for s in seen if s[2] != s[1] or s[3] != s[0]] == []
    assert final[2] == final[1] and final[3] == final[0]


async def test_a_finish_commits_while_another_transaction_holds_the_slot_row(url: str) -> None:
    """A finish never waits for the environment's slot row (0018): it inserts the slots it
    frees into slot_releases, and the next holder of the row moves them into the counters.
    Before, every finish took the row, so the finish-and-claim transactions of all workers ran
    one after the other (here: the finishes would wait for the blocker)."""
    store, held = await store_holding(url, queued=5, claimed=4, connections=3)
    try:
        with (
            psycopg.connect(url, autocommit=True, options=ENGINE_OPTIONS) as reader,
            psycopg.connect(url, options=ENGINE_OPTIONS) as blocker,
        ):
            blocker.execute(
                "SELECT running FROM environment_slots WHERE environment = %s FOR UPDATE", (ENV,)
            )
            done = await asyncio.wait_for(
                store.run_finish_many(RunFinishManyParams(ENV, [finish(held[0].id)])), 5
            )
            assert done == [True]
            # The counter moves at the next claim; the queue's running count is right already.
            assert holding(reader)[1:3] == (3, 3)
            [queue] = await store.queue_list(QueueListParams(ENV))
            assert queue.running == 3

            # A finish-and-claim commits its finish, then waits for the row to claim.
            both = asyncio.create_task(
                store.run_finish_and_claim(
                    RunFinishManyParams(ENV, [finish(held[1].id)]), claim_env(limit=4)
                )
            )

            def status() -> str:
                row = reader.execute("SELECT status FROM runs WHERE id = %s", (held[1].id,))
                return str(row.fetchone()[0])  # type: ignore[index]

            await eventually(status, until=lambda s: s == "COMPLETED", timeout=5)
            assert not both.done()
            blocker.rollback()
            accepted, claimed = await asyncio.wait_for(both, 5)
            assert accepted == [True] and len(claimed) == 1
            # The claim moved both finishes' slots into the counters.
            assert reader.execute(
                "SELECT running FROM environment_slots WHERE environment = %s", (ENV,)
            ).fetchone() == (3,)
            assert reader.execute("SELECT count(*) FROM slot_releases").fetchone() == (0,)
            assert holding(reader)[1:3] == (3, 3)
    finally:
        await store.close()


class _TracedStore(PostgresStore):
    """A store whose pooled connections write libpq's protocol trace to ``trace``."""

    trace: Path

    async def _configure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await super()._configure(conn)
        file = self.trace.open("a")  # closed with the process: the trace writes to its fd
        conn.pgconn.trace(file.fileno())
        self._files = [*getattr(self, "_files", []), file]


async def traced_cycle(url: str, async_commit: bool) -> str:
    """The statements a trigger, a claim and a finish-and-claim send, as libpq traced them."""
    store = _TracedStore(url, max_connections=1, async_commit=async_commit)
    store.trace = Path(tempfile.mkdtemp()) / "trace.txt"
    try:
        await store.migrate(MigrateParams(now=0))
        await register(store)
        first = await store.run_insert(run_params(now=1_000))
        await store.run_insert(run_params(now=1_001))
        [claimed] = await store.run_claim(claim_env(limit=1))
        assert claimed.id == first.run.id
        accepted, _ = await store.run_finish_and_claim(
            RunFinishManyParams(ENV, [finish(claimed.id)]), claim_env(limit=1)
        )
        assert accepted == [True]
    finally:
        await store.close()
        for file in getattr(store, "_files", []):
            file.close()
    return store.trace.read_text(errors="replace")


async def test_async_commit_turns_off_the_flush_wait_of_claims_and_finishes_only(
    url: str,
) -> None:
    on = await traced_cycle(url, async_commit=True)
    sent = [line for line in on.splitlines() if "synchronous_commit" in line and "Parse" in line]
    # The claim, and the finish-and-claim's two transactions; never the trigger's insert.
    assert len(sent) == 3
    assert "synchronous_commit" not in await traced_cycle(url, async_commit=False)


async def test_a_suspend_that_creates_children_never_commits_asynchronously(url: str) -> None:
    """A trigger_and_wait's suspend inserts its child, a trigger: with async_commit its
    transaction still waits for the WAL flush, and runs the claim's generic plan."""
    store = _TracedStore(url, max_connections=1, async_commit=True)
    store.trace = Path(tempfile.mkdtemp()) / "trace.txt"
    try:
        await store.migrate(MigrateParams(now=0))
        await register(store)
        await store.run_insert(run_params(now=1_000))
        [held] = await store.run_claim(claim_env(limit=1))
        async with borrow(store._pool) as conn:
            await conn.execute("SELECT 'before-suspend'")
        child = run_params(now=2_000, parent_run_id=held.id)
        create = WaitpointCreateParams(
            new_id("waitpoint"), ENV, "RUN", 2_000, target_id=child.id, run=child
        )
        block = WaitpointBlockParams(ENV, held.id, 1, "w1", 0, "trigger_and_wait", 2_000, create)
        [result], _ = await store.waitpoint_block_and_claim(
            WaitpointBlockManyParams(ENV, [block]), claim_env(limit=0)
        )
        assert result.suspended
    finally:
        await store.close()
        for file in getattr(store, "_files", []):
            file.close()
    suspend = store.trace.read_text(errors="replace").split("before-suspend", 1)[1]
    assert "plan_cache_mode" in suspend
    assert "synchronous_commit" not in suspend


def test_the_setting_reaches_the_store(url: str) -> None:
    for value in (True, False):
        store = open_store(Settings(database_url=url, postgres_async_commit=value))
        assert isinstance(store, PostgresStore) and store.async_commit is value


async def test_a_claim_and_a_finish_and_claim_are_one_round_trip_each(url: str) -> None:
    """The slot row is locked from the claim's first statement to its commit, so every round
    trip inside it is a wait for the other workers (``driver.one_trip``). A finish-and-claim
    is two transactions (the finish's does not take the slot row, 0018) in one pipeline."""
    store = _TracedStore(url, max_connections=1)
    store.trace = Path(tempfile.mkdtemp()) / "trace.txt"

    async def mark(name: str) -> None:
        async with borrow(store._pool) as conn:
            await conn.execute(f"SELECT '{name}'")

    try:
        await store.migrate(MigrateParams(now=0))
        await register(store)
        runs = [await store.run_insert(run_params(now=1_000 + n)) for n in range(3)]
        # The first claim of a process also creates the environment's slot row, once.
        [first] = await store.run_claim(claim_env(limit=1))
        await mark("before-claim")
        claim = claim_env(limit=1)
        claim.peek = False  # the lock-free look for ready runs is a trip of its own, before
        [second] = await store.run_claim(claim)
        await mark("before-finish-and-claim")
        accepted, [third] = await store.run_finish_and_claim(
            RunFinishManyParams(ENV, [finish(first.id)]), claim_env(limit=1)
        )
        await mark("after")
        async with borrow(store._pool) as conn:
            conn.pgconn.untrace()  # libpq buffers its trace; this flushes it
    finally:
        await store.close()
        for file in getattr(store, "_files", []):
            file.close()
    assert accepted == [True]
    assert [first.id, second.id, third.id] == [r.run.id for r in runs]
    # Each line: time, direction (F: from the client), length, message type, its fields.
    sent = [
        line.split("\t", 3)[3] for line in store.trace.read_text().splitlines() if "\tF\t" in line
    ]
    at = {
        name: next(i for i, line in enumerate(sent) if line.startswith("Query") and name in line)
        for name in ("before-claim", "before-finish-and-claim", "after")
    }

    def syncs(start: str, end: str) -> int:
        # (A marker is a simple query: no Sync of its own.)
        return sum(line.strip() == "Sync" for line in sent[at[start] : at[end]])

    assert syncs("before-claim", "before-finish-and-claim") == 1
    assert syncs("before-finish-and-claim", "after") == 1


async def test_a_suspend_and_its_claim_are_one_round_trip(url: str) -> None:
    """A trigger_and_wait's suspend (the child inserted, the parent suspended) and the claim
    of the slot it frees go in one round trip: the database adds the freed slot to the
    claim's limit (run_suspend_pending), so nothing is read back in between."""
    store = _TracedStore(url, max_connections=1)
    store.trace = Path(tempfile.mkdtemp()) / "trace.txt"
    try:
        await store.migrate(MigrateParams(now=0))
        await register(store)
        parent = (await store.run_insert(run_params(now=1_000))).run
        [claimed] = await store.run_claim(claim_env(limit=1))
        assert claimed.id == parent.id
        child = run_params(now=2_000, parent_run_id=parent.id)
        create = WaitpointCreateParams(
            new_id("waitpoint"), ENV, "RUN", 2_000, target_id=child.id, run=child
        )
        block = WaitpointBlockParams(
            ENV, parent.id, 1, "w1", 0, "trigger_and_wait", 2_000, create=create
        )
        async with borrow(store._pool) as conn:
            await conn.execute("SELECT 'before-suspend'")
        # No free slot but the one the parent gives back: the child takes it.
        [result], taken = await store.waitpoint_block_and_claim(
            WaitpointBlockManyParams(ENV, [block]), claim_env(limit=0)
        )
        async with borrow(store._pool) as conn:
            await conn.execute("SELECT 'after'")
            conn.pgconn.untrace()  # libpq buffers its trace; this flushes it
    finally:
        await store.close()
        for file in getattr(store, "_files", []):
            file.close()
    assert result.suspended and [r.id for r in taken] == [child.id]
    sent = [
        line.split("\t", 3)[3] for line in store.trace.read_text().splitlines() if "\tF\t" in line
    ]
    start = next(i for i, line in enumerate(sent) if "before-suspend" in line)
    end = next(i for i, line in enumerate(sent) if "'after'" in line)
    assert sum(line.strip() == "Sync" for line in sent[start:end]) == 1


async def test_the_claim_of_a_suspend_is_prepared_and_never_custom_planned(url: str) -> None:
    """The claim a suspend sends with its blocks runs the claim's generic plan from its first
    execution too: unprepared, it was planned afresh at every trigger_and_wait (~0.15 ms of
    server time each, pg_stat_statements)."""
    store = PostgresStore(url, max_connections=1)
    try:
        await store.migrate(MigrateParams(now=0))
        await register(store)
        await store.run_insert(run_params(now=1_000))
        [held] = await store.run_claim(claim_env(limit=1))
        for _ in range(2):  # the parent, then its child, each wait for a child of their own
            child = run_params(now=2_000, parent_run_id=held.id)
            create = WaitpointCreateParams(
                new_id("waitpoint"), ENV, "RUN", 2_000, target_id=child.id, run=child
            )
            block = WaitpointBlockParams(
                ENV, held.id, held.attempt_number, "w1", 0, "trigger_and_wait", 2_000, create
            )
            [result], [held] = await store.waitpoint_block_and_claim(
                WaitpointBlockManyParams(ENV, [block]), claim_env(limit=0)
            )
            assert result.suspended and held.id == child.id
        async with borrow(store._pool) as conn:  # the pool's only connection: the one used
            cursor = await conn.execute(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                "WHERE statement LIKE '%WITH RECURSIVE g(queue, ck)%'"
            )
            prepared = await cursor.fetchall()
        # The first claim (run_claim, prepared there) and the two of the suspends.
        assert prepared == [(3, 0)]
    finally:
        await store.close()


async def test_an_attempts_finish_rewrites_its_row_in_place(url: str) -> None:
    """A finish that is not a HOT update adds an entry to each of attempts' indexes per run;
    0017 leaves the room in the page that makes it HOT (PostgreSQL's own counters say which)."""
    # One backend: its counters are all of them.
    store, claimed = await store_holding(url, queued=100, claimed=100, connections=1)
    try:
        accepted = await store.run_finish_many(
            RunFinishManyParams(ENV, [finish(run.id) for run in claimed])
        )
        assert accepted == [True] * 100
        async with borrow(store._pool) as conn:
            # Pending counters reach the shared ones when the backend is next idle: forced.
            await conn.execute("SELECT pg_stat_force_next_flush()")
            cursor = await conn.execute(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
                "WHERE relid = 'attempts'::regclass"
            )
            updated, hot = await cursor.fetchone() or (0, 0)
    finally:
        await store.close()
    assert updated == 100
    assert hot >= 90, f"{hot} of {updated} attempt finishes were HOT updates"


async def test_claims_and_finishes_are_prepared_and_never_custom_planned(url: str) -> None:
    """A claim and a finish are prepared at their first execution on a connection and run
    their generic plan from then on (PostgresStore._bookkeeping): left to the defaults each
    pooled connection planned them about eleven times, and in a short drain the planning was
    a tenth of the claim's server time."""
    store = PostgresStore(url, max_connections=1)
    try:
        await store.migrate(MigrateParams(now=0))
        await register(store)
        for n in range(3):
            await store.run_insert(run_params(now=1_000 + n))
        [held] = await store.run_claim(claim_env(limit=1))
        for _ in range(2):
            accepted, [held] = await store.run_finish_and_claim(
                RunFinishManyParams(ENV, [finish(held.id)]), claim_env(limit=1)
            )
            assert accepted == [True]
        async with borrow(store._pool) as conn:  # the pool's only connection: the one used
            cursor = await conn.execute(
                "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
            )
            prepared = await cursor.fetchall()
        plans = {
            name: (generic, custom)
            for statement, generic, custom in prepared
            for name, marker in (
                ("claim", "WITH RECURSIVE g(queue, ck)"),
                ("finish", "WITH written AS MATERIALIZED"),
            )
            if marker in statement
        }
        # Three claims and two finishes, each prepared at its first execution and run on its
        # generic plan every time (the counts are executions), never on a custom plan.
        assert plans == {"claim": (3, 0), "finish": (2, 0)}
    finally:
        await store.close()
