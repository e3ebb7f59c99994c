"""A parent waiting for the child it just triggered, on both backends: the child is claimed in
the transaction that suspends the parent (the slot the parent gives back), and the child's
finish claims the parent back, so the pair needs no claim of the worker's claimer; and when
the worker that holds both is lost in between, another worker finishes them by replay."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from shipyard import task, wait
from shipyard.engine.claims import AttemptResult
from shipyard.engine.engine import Engine
from shipyard.ids import new_id
from shipyard.models.runs import result_of
from shipyard.store.params import (
    RunInsertParams,
    WaitpointBlockParams,
    WaitpointCreateParams,
    WaitpointReadsParams,
)
from shipyard.testing.eventually import eventually


def child_call(
    engine: Engine, parent_id: str, task_id: str, worker_id: str
) -> tuple[RunInsertParams, WaitpointBlockParams]:
    """A ``trigger_and_wait`` call of run ``parent_id`` (attempt 1, first call) as the worker
    sends it: the child to insert, and the block that inserts it and suspends the parent."""
    now = engine.now()
    run = RunInsertParams(
        id=new_id("run"),
        environment=engine.environment,
        task_id=task_id,
        status="QUEUED",
        payload="null",
        queue=f"task/{task_id}",
        queued_at=now,
        created_at=now,
        parent_run_id=parent_id,
    )
    create = WaitpointCreateParams(
        new_id("waitpoint"), engine.environment, "RUN", now, target_id=run.id, run=run
    )
    block = WaitpointBlockParams(
        engine.environment, parent_id, 1, worker_id, 0, "trigger_and_wait", now, create
    )
    return run, block


async def test_children_start_in_their_parents_suspend_without_the_claimer(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    gate = asyncio.Event()
    ran_on: list[str] = []

    @task(id="ip-child")
    async def child(payload: int, ctx: Any) -> int:
        ran_on.append(ctx.run.id)
        return payload * 2

    @task(id="ip-parent")
    async def parent(payload: None) -> list[int]:
        await gate.wait()
        done = [(await child.trigger_and_wait(i)).unwrap() for i in range(3)]
        # A tagged child is inserted on its own (tag rows), then waited for the same way.
        return [*done, (await child.trigger_and_wait(5, tags=["tagged"])).unwrap()]

    lookups: list[str] = []  # what the store was asked to read for the durable calls
    reads = engine.store.waitpoint_reads

    async def spy(params: WaitpointReadsParams) -> Any:
        lookups.extend(f"recorded {r.run_id} {r.seq}" for r in params.recorded)
        lookups.extend(f"get {g.waitpoint_id}" for g in params.gets)
        return await reads(params)

    engine.store.waitpoint_reads = spy  # type: ignore[method-assign]
    inserts: list[str] = []
    insert = engine.store.run_insert

    async def insert_spy(params: RunInsertParams) -> Any:
        inserts.append(params.task_id)
        return await insert(params)

    engine.store.run_insert = insert_spy  # type: ignore[method-assign]
    worker = await start_worker(concurrency=1)
    handle = await parent.trigger(None)
    await eventually(
        lambda: engine.get_run(handle.id),
        until=lambda run: run.status == "EXECUTING",
        message="the parent to start",
    )
    # From here on nothing polls, claims or resolves but the suspend (which takes the child)
    # and the child's finish (which settles its waitpoint and takes the parent back): without
    # them the parent never ends. Nor does anything else ask for a resolver pass.
    await worker.service("claimer").stop()
    await worker.service("resolver").stop()
    passes: list[object] = []
    resolve = engine.store.waitpoint_resolve_due

    async def resolve_spy(params: Any) -> Any:
        passes.append(params)
        return await resolve(params)

    engine.store.waitpoint_resolve_due = resolve_spy  # type: ignore[method-assign]
    gate.set()
    run = await engine.wait_for_final(handle.id, timeout=30)
    assert (run.status, json.loads(run.output or "null")) == ("COMPLETED", [0, 2, 4, 10])
    assert passes == []
    assert len(ran_on) == 4
    # The plain children were inserted with the calls that wait for them (no insert of their
    # own); the tagged one on its own.
    assert inserts == ["ip-parent", "ip-child"]
    tagged = await engine.get_run(ran_on[-1])
    assert tagged.parent_run_id == handle.id
    # Only the first call looks for a recorded call (none: later ones cannot have one), and
    # no waitpoint is read back after a resume (the child's row is what the result needs).
    assert lookups == [f"recorded {handle.id} 0"]


async def test_a_worker_lost_between_suspend_and_child_finish_leaves_it_to_another(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    release = asyncio.Event()
    executions: list[tuple[str, bool]] = []  # (task, is_replay)

    @task(id="ip-slow-child")
    async def child(payload: None, ctx: Any) -> str:
        executions.append(("child", ctx.run.is_replay))
        await release.wait()
        return "child done"

    @task(id="ip-waiting-parent")
    async def parent(payload: None, ctx: Any) -> str:
        executions.append(("parent", ctx.run.is_replay))
        result = await child.trigger_and_wait(None)
        return f"parent saw {result.unwrap()}"

    first = await start_worker(concurrency=1)
    handle = await parent.trigger(None)
    # The child runs on the first worker: claimed in its parent's suspend, the parent parked.
    await eventually(
        lambda: asyncio.sleep(0, executions),
        until=lambda seen: ("child", False) in seen,
        message="the child to start",
    )
    assert list(first.parked) == [handle.id]
    await first.stop(grace=0)  # the child is released, the parked parent dropped
    assert (await engine.get_run(handle.id)).status == "WAITING"
    release.set()
    await start_worker()
    run = await engine.wait_for_final(handle.id, timeout=30)
    assert (run.status, json.loads(run.output or "null")) == ("COMPLETED", "parent saw child done")
    # The parent resumed by replay (its trigger_and_wait found its recorded child): one child.
    assert executions == [("parent", False), ("child", False), ("child", False), ("parent", True)]


async def test_a_child_the_suspending_worker_does_not_take_wakes_the_others(
    engine: Engine,
) -> None:
    """The claim in the suspend's transaction takes only the suspending worker's tasks: a
    child it leaves (here: a task it lacks) wakes the environment's workers at commit."""

    @task(id="nt-parent")
    async def parent(payload: None) -> None:
        return None

    @task(id="nt-child")
    async def child(payload: None) -> None:
        return None

    store = engine.store
    listener = await store.ready_listen()
    try:
        await engine.register_worker("worker_nt", doorbell_port=listener.port)
        handle = await parent.trigger(None)
        (claimed,) = await engine.claim_runs("worker_nt", ["nt-parent"], 1, 60_000)
        assert claimed.id == handle.id
        while await listener.wait(0.05):  # the trigger's own wake-up, and any other
            pass
        run, block = child_call(engine, handle.id, "nt-child", "worker_nt")
        results, took = await engine.suspend_and_claim(
            "worker_nt", [block], ["nt-parent"], 0, 60_000
        )
        assert [r.suspended for r in results] == [True] and took == []
        assert await listener.wait(5.0), "the other workers were not woken for the child"
        assert (await engine.get_run(run.id)).status == "QUEUED"
    finally:
        listener.close()


async def test_a_child_the_suspending_worker_takes_wakes_nobody(
    engine: Engine, database_url: str
) -> None:
    """The child the suspend's own claim took sends no NOTIFY (nobody else could run it).
    PostgreSQL delivers notifications in commit order, so a marker sent after the suspend
    is the first to arrive exactly when the suspend sent none."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the in-process doorbell of SQLite has no order to read")

    @task(id="tk-parent")
    async def parent(payload: None) -> None:
        return None

    @task(id="tk-child")
    async def child(payload: None) -> None:
        return None

    await engine.register_worker("worker_tk", doorbell_port=None)
    handle = await parent.trigger(None)
    (claimed,) = await engine.claim_runs("worker_tk", ["tk-parent"], 1, 60_000)
    assert claimed.id == handle.id
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute("LISTEN shipyard_ready")
        run, block = child_call(engine, handle.id, "tk-child", "worker_tk")
        _, took = await engine.suspend_and_claim(
            "worker_tk", [block], ["tk-parent", "tk-child"], 0, 60_000
        )
        assert [r.id for r in took] == [run.id]
        await conn.execute("SELECT pg_notify('shipyard_ready', 'marker')")
        first = [n.payload async for n in conn.notifies(timeout=10.0, stop_after=1)]
    assert first == ["marker"]


async def test_a_parent_the_finishing_worker_does_not_take_wakes_the_others(
    engine: Engine,
) -> None:
    """A child's finish wakes its parent and claims in the same transaction; workers are
    woken (NOTIFY) for a parent that claim left queued — here the finishing worker lacks the
    parent's task."""

    @task(id="nf-parent")
    async def parent(payload: None) -> None:
        return None

    @task(id="nf-child")
    async def child(payload: None) -> None:
        return None

    listener = await engine.store.ready_listen()
    try:
        await engine.register_worker("worker_nf", doorbell_port=listener.port)
        handle = await parent.trigger(None)
        await engine.claim_runs("worker_nf", ["nf-parent"], 1, 60_000)
        run, block = child_call(engine, handle.id, "nf-child", "worker_nf")
        _, took = await engine.suspend_and_claim("worker_nf", [block], ["nf-child"], 0, 60_000)
        assert [r.id for r in took] == [run.id]
        while await listener.wait(0.05):  # earlier wake-ups
            pass
        done = AttemptResult(
            run.id, 1, "COMPLETED", "COMPLETED", output="null", parent_run_id=handle.id
        )
        accepted, claimed = await engine.finish_and_claim(
            "worker_nf", [done], ["nf-child"], 1, 60_000
        )
        assert (accepted, claimed) == ([True], [])
        assert (await engine.get_run(handle.id)).status == "QUEUED"
        assert await listener.wait(5.0), "the other workers were not woken for the parent"
    finally:
        listener.close()


async def test_a_run_taken_back_before_its_suspend_returns_continues_its_coroutine(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    """Defect (a failed CI run): a run whose wait was done as soon as its suspend committed
    was claimed back before the worker parked its coroutine, and started again by replay
    beside it: the code before the wait ran twice."""
    before: list[str] = []
    tokens: list[str] = []

    @task(id="ip-early")
    async def early(payload: None) -> Any:
        before.append("ran")
        token = await wait.create_token(timeout="1h")
        tokens.append(token.id)
        return (await wait.for_token(token)).output

    worker = await start_worker()
    suspend_many = engine.suspend_many

    async def completed_at_once(blocks: Any) -> Any:
        # The suspend has committed; its answer is held back while the token is completed
        # and a claim takes the run back.
        results = await suspend_many(blocks)
        await engine.complete_token(tokens[0], {"ok": True})
        await eventually(
            lambda: engine.get_run(handle.id),
            until=lambda run: run.status == "EXECUTING" and run.id in worker.active,
            message="the run to be claimed back",
        )
        return results

    engine.suspend_many = completed_at_once  # type: ignore[method-assign]
    handle = await early.trigger(None)
    run = await engine.wait_for_final(handle.id, timeout=30)
    assert (run.status, json.loads(run.output or "null")) == ("COMPLETED", {"ok": True})
    assert before == ["ran"]
    assert not worker.parked  # no first coroutine left behind, parked until evicted
    # The finish commits before the worker lets go of the run.
    await eventually(lambda: not worker.active, message="the worker to let go of the run")


async def test_a_parent_resumed_by_its_childs_finish_here_reads_no_run_row(
    engine: Engine, start_worker: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child's finish on this worker claims its parent back in the same transaction, and
    the parent takes the child's result from there: no read of the child's row (one round
    trip less per trigger_and_wait), and the same result a read gives, failures included."""

    @task(id="fr-child", retry={"max_attempts": 1})
    async def child(payload: int) -> dict[str, int]:
        if payload < 0:
            raise ValueError(f"bad {payload}")
        return {"double": payload * 2}

    results: list[Any] = []

    @task(id="fr-parent")
    async def parent(payload: None) -> None:
        results.append(await child.trigger_and_wait(3))
        results.append(await child.trigger_and_wait(-1))

    reads: list[str] = []
    get = engine.store.run_get

    async def get_spy(params: Any) -> Any:
        reads.append(params.run_id)
        return await get(params)

    await start_worker(concurrency=2)
    monkeypatch.setattr(engine.store, "run_get", get_spy)
    handle = await parent.trigger(None)
    run = await engine.wait_for_final(handle.id, timeout=30)
    monkeypatch.undo()
    assert run.status == "COMPLETED", run.error
    ok, failed = results
    children = [ok.id, failed.id]
    assert not set(children) & set(reads)
    # What reading the rows gives.
    assert ok == result_of(await engine.get_run(ok.id))
    assert failed == result_of(await engine.get_run(failed.id))
    assert (ok.ok, ok.output, failed.ok, failed.error.message) == (
        True,
        {"double": 6},
        False,
        "bad -1",
    )
