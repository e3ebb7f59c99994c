"""Idempotency keys end to end (``docs/runs.md``)."""

from __future__ import annotations

import asyncio
import sqlite3

import psycopg
import pytest

from shipyard import (
    InvalidDurationError,
    RunStatus,
    batch,
    idempotency_keys,
    runs,
    task,
)
from shipyard.engine.engine import Engine
from shipyard.testing.eventually import eventually
from shipyard.testing.postgres import ENGINE_OPTIONS


def _force_status(engine: Engine, run_id: str, status: str) -> None:
    """Put a run in a final status the test cannot cheaply reach by executing it."""
    url = engine.settings.database_url
    if url.startswith("postgresql"):
        with psycopg.connect(url, options=ENGINE_OPTIONS) as pg:
            pg.execute(
                "UPDATE runs SET status = %s, finished_at = updated_at WHERE id = %s",
                (status, run_id),
            )
        return
    with sqlite3.connect(engine.settings.sqlite_path()) as conn:
        conn.execute(
            "UPDATE runs SET status = ?, finished_at = updated_at WHERE id = ?", (status, run_id)
        )


async def test_same_key_while_queued_returns_the_same_run(engine):
    @task(id="idem-queued")
    async def idem_queued(payload):
        return payload

    first = await idem_queued.trigger({"n": 1}, idempotency_key="order-1")
    second = await idem_queued.trigger({"n": 2}, idempotency_key="order-1")
    assert first.is_cached is False
    assert second.is_cached is True
    assert second.id == first.id
    assert [r.id async for r in runs.list()] == [first.id]
    # The cached run keeps the first payload.
    assert (await runs.retrieve(first.id)).payload == {"n": 1}


async def test_same_key_while_executing_returns_the_same_run(engine, start_worker):
    started = asyncio.Event()
    release = asyncio.Event()

    @task(id="idem-executing")
    async def idem_executing(payload):
        started.set()
        await release.wait()
        return "done"

    await start_worker()
    first = await idem_executing.trigger(None, idempotency_key="k")
    await asyncio.wait_for(started.wait(), 5)
    assert (await runs.retrieve(first.id)).status == RunStatus.EXECUTING

    second = await idem_executing.trigger(None, idempotency_key="k")
    assert (second.id, second.is_cached) == (first.id, True)
    release.set()
    assert (await engine.wait_for_final(first.id, timeout=10)).status == RunStatus.COMPLETED


async def test_same_key_after_completed_returns_the_cached_run(engine, start_worker):
    executions: list[int] = []

    @task(id="idem-completed")
    async def idem_completed(payload):
        executions.append(payload)
        return payload * 2

    await start_worker()
    first = await idem_completed.trigger(5, idempotency_key="pay-5")
    await engine.wait_for_final(first.id, timeout=10)

    second = await idem_completed.trigger(6, idempotency_key="pay-5")
    assert (second.id, second.is_cached) == (first.id, True)
    assert executions == [5]
    assert (await runs.retrieve(second.id)).output == 10


async def test_same_key_after_canceled_returns_the_canceled_run(engine):
    @task(id="idem-canceled")
    async def idem_canceled(payload):
        return None

    first = await idem_canceled.trigger(None, idempotency_key="c")
    await runs.cancel(first.id)
    second = await idem_canceled.trigger(None, idempotency_key="c")
    assert (second.id, second.is_cached) == (first.id, True)
    assert (await runs.retrieve(second.id)).status == RunStatus.CANCELED


async def test_same_key_after_failed_creates_a_new_run(engine, start_worker):
    attempts: list[int] = []

    @task(id="idem-failed")
    async def idem_failed(payload):
        attempts.append(payload)
        if payload == 1:
            raise RuntimeError("first one fails")
        return "second works"

    await start_worker()
    first = await idem_failed.trigger(1, idempotency_key="retry-me", max_attempts=1)
    assert (await engine.wait_for_final(first.id, timeout=10)).status == RunStatus.FAILED

    second = await idem_failed.trigger(2, idempotency_key="retry-me")
    assert second.is_cached is False
    assert second.id != first.id
    assert (await engine.wait_for_final(second.id, timeout=10)).status == RunStatus.COMPLETED
    assert attempts == [1, 2]
    # The key moved to the new run; the failed run no longer holds it.
    assert (await runs.retrieve(first.id)).idempotency_key is None
    assert (await runs.retrieve(second.id)).idempotency_key is not None
    third = await idem_failed.trigger(3, idempotency_key="retry-me")
    assert (third.id, third.is_cached) == (second.id, True)


@pytest.mark.parametrize("status", ["CRASHED", "TIMED_OUT", "EXPIRED", "SYSTEM_FAILURE"])
async def test_same_key_after_other_failed_statuses_creates_a_new_run(engine, status):
    @task(id="idem-released")
    async def idem_released(payload):
        return None

    first = await idem_released.trigger(None, idempotency_key="x")
    _force_status(engine, first.id, status)
    assert (await runs.retrieve(first.id)).status == status

    second = await idem_released.trigger(None, idempotency_key="x")
    assert second.is_cached is False
    assert second.id != first.id


@pytest.mark.parametrize("status", ["COMPLETED", "CANCELED", "EXECUTING"])
async def test_same_key_after_kept_statuses_returns_the_run(engine, status):
    @task(id="idem-kept")
    async def idem_kept(payload):
        return None

    first = await idem_kept.trigger(None, idempotency_key="x")
    _force_status(engine, first.id, status)
    second = await idem_kept.trigger(None, idempotency_key="x")
    assert (second.id, second.is_cached) == (first.id, True)


@pytest.mark.fake_clock
async def test_key_ttl_expiry_creates_a_new_run(engine, clock):
    @task(id="idem-ttl")
    async def idem_ttl(payload):
        return None

    # The engine's clock stands still between these triggers: on the real one, a host slower
    # than 1 s between the first two would see the key expire before the second.
    first = await idem_ttl.trigger(None, idempotency_key="short", idempotency_key_ttl="1s")
    cached = await idem_ttl.trigger(None, idempotency_key="short", idempotency_key_ttl="1s")
    assert (cached.id, cached.is_cached) == (first.id, True)

    record = await engine.get_run(first.id)
    assert record.idempotency_key_expires_at == record.created_at + 1000
    await clock.advance(ms=record.idempotency_key_expires_at + 1 - clock.now_ms())

    fresh = await idem_ttl.trigger(None, idempotency_key="short", idempotency_key_ttl="1s")
    assert fresh.is_cached is False
    assert fresh.id != first.id
    assert (await runs.retrieve(first.id)).idempotency_key is None


async def test_default_ttl_is_thirty_days(engine):
    @task(id="idem-default-ttl")
    async def idem_default_ttl(payload):
        return None

    handle = await idem_default_ttl.trigger(None, idempotency_key="long")
    record = await engine.get_run(handle.id)
    assert record.idempotency_key_expires_at == record.created_at + 30 * 24 * 3600 * 1000


async def test_same_key_on_a_different_task_is_a_different_run(engine):
    @task(id="idem-task-a")
    async def task_a(payload):
        return None

    @task(id="idem-task-b")
    async def task_b(payload):
        return None

    a = await task_a.trigger(None, idempotency_key="shared")
    b = await task_b.trigger(None, idempotency_key="shared")
    assert a.id != b.id
    assert not a.is_cached and not b.is_cached
    assert (await runs.retrieve(a.id)).idempotency_key == (
        await runs.retrieve(b.id)
    ).idempotency_key


async def test_run_scope_differs_per_parent_and_global_scope_does_not(engine, start_worker):
    @task(id="key-maker")
    async def key_maker(payload, ctx):
        return {
            "run": idempotency_keys.create("charge-1"),
            "run_explicit": idempotency_keys.create(["charge", "1"], scope="run"),
            "attempt": idempotency_keys.create("charge-1", scope="attempt"),
            "global": idempotency_keys.create("charge-1", scope="global"),
        }

    await start_worker()
    one = await key_maker.trigger()
    two = await key_maker.trigger()
    await engine.wait_for_final(one.id, timeout=10)
    await engine.wait_for_final(two.id, timeout=10)
    keys_one = (await runs.retrieve(one.id)).output
    keys_two = (await runs.retrieve(two.id)).output

    for value in (*keys_one.values(), *keys_two.values()):
        assert len(value) == 64
    assert keys_one["run"] != keys_two["run"]
    assert keys_one["run_explicit"] != keys_two["run_explicit"]
    assert keys_one["attempt"] != keys_two["attempt"]
    assert keys_one["attempt"] != keys_one["run"]
    assert keys_one["global"] == keys_two["global"]
    # Outside a run every scope behaves as global.
    assert idempotency_keys.create("charge-1") == keys_one["global"]
    assert idempotency_keys.create("charge-1", scope="attempt") == keys_one["global"]


async def test_raw_key_inside_a_run_is_run_scoped(engine, start_worker):
    @task(id="scoped-child")
    async def scoped_child(payload):
        return payload

    @task(id="scoped-parent")
    async def scoped_parent(payload):
        first = await scoped_child.trigger(1, idempotency_key="child-key")
        again = await scoped_child.trigger(2, idempotency_key="child-key")
        return [first.id, again.id, again.is_cached]

    await start_worker()
    one = await scoped_parent.trigger()
    two = await scoped_parent.trigger()
    await engine.wait_for_final(one.id, timeout=10)
    await engine.wait_for_final(two.id, timeout=10)
    first_a, first_b, cached_1 = (await runs.retrieve(one.id)).output
    second_a, second_b, cached_2 = (await runs.retrieve(two.id)).output

    # Within one parent the key dedupes; across parents (run scope) it does not.
    assert (first_a == first_b, cached_1) == (True, True)
    assert (second_a == second_b, cached_2) == (True, True)
    assert first_a != second_a


async def test_reset_then_trigger_creates_a_new_run(engine):
    @task(id="idem-reset")
    async def idem_reset(payload):
        return None

    key = idempotency_keys.create("reset-me")
    first = await idem_reset.trigger(None, idempotency_key=key)
    assert (await idem_reset.trigger(None, idempotency_key=key)).id == first.id

    assert await idempotency_keys.reset("idem-reset", key) == 1
    second = await idem_reset.trigger(None, idempotency_key=key)
    assert second.is_cached is False
    assert second.id != first.id

    # A raw string with global scope rebuilds the same hash.
    assert await idempotency_keys.reset("idem-reset", "reset-me", scope="global") == 1
    third = await idem_reset.trigger(None, idempotency_key="reset-me")
    assert third.id not in (first.id, second.id)
    # Nothing left to reset on another task.
    assert await idempotency_keys.reset("other-task", key) == 0


async def test_duplicate_keys_in_one_batch_resolve_to_one_run(engine):
    @task(id="idem-batch")
    async def idem_batch(payload):
        return payload

    handle = await idem_batch.batch_trigger(
        [
            {"payload": "a", "options": {"idempotency_key": "dup"}},
            {"payload": "b", "options": {"idempotency_key": "dup"}},
            {"payload": "c"},
        ]
    )
    assert handle.run_count == 3
    assert handle.runs[0] == handle.runs[1]
    assert handle.runs[2] != handle.runs[0]
    assert (await runs.retrieve(handle.runs[0])).payload == "a"


async def test_batch_trigger_and_wait_with_duplicate_keys_completes(engine, start_worker):
    @task(id="idem-batch-child")
    async def idem_batch_child(payload):
        return payload * 3

    @task(id="idem-batch-parent")
    async def idem_batch_parent(payload):
        result = await idem_batch_child.batch_trigger_and_wait(
            [
                {"payload": 1, "options": {"idempotency_key": "same"}},
                {"payload": 2, "options": {"idempotency_key": "same"}},
                {"payload": 3},
            ]
        )
        return [[r.id, r.ok, r.output] for r in result.runs]

    await start_worker(concurrency=4)
    handle = await idem_batch_parent.trigger()
    record = await engine.wait_for_final(handle.id, timeout=10)
    assert record.status == RunStatus.COMPLETED

    items = (await runs.retrieve(handle.id)).output
    assert items[0] == items[1]
    assert items[0][1:] == [True, 3]
    assert items[2][1:] == [True, 9]
    assert items[2][0] != items[0][0]


async def test_trigger_and_wait_on_a_keyed_run_triggered_elsewhere_resumes(engine, start_worker):
    """A run triggered outside any run (no parent) is waited for by a parent whose
    trigger_and_wait found it by its idempotency key: its end still settles the parent's
    waitpoint (engine.claims.awaitable)."""
    started = asyncio.Event()
    release = asyncio.Event()

    @task(id="idem-shared-child")
    async def idem_shared_child(payload):
        started.set()
        await release.wait()
        return payload + 1

    @task(id="idem-shared-parent")
    async def idem_shared_parent(payload):
        key = idempotency_keys.create("shared", scope="global")
        result = await idem_shared_child.trigger_and_wait(99, idempotency_key=key)
        return [result.id, result.output]

    await start_worker(concurrency=4)
    shared = idempotency_keys.create("shared", scope="global")
    child = await idem_shared_child.trigger(1, idempotency_key=shared)
    await asyncio.wait_for(started.wait(), 10)
    parent = await idem_shared_parent.trigger()
    await eventually(
        lambda: engine.get_run(parent.id), until=lambda run: run.status == RunStatus.WAITING
    )
    release.set()
    record = await engine.wait_for_final(parent.id, timeout=10)
    assert record.status == RunStatus.COMPLETED
    assert (await runs.retrieve(parent.id)).output == [child.id, 2]


async def test_batch_item_key_after_a_failed_run_creates_a_new_run(engine, start_worker):
    """§15: batch_trigger follows the same rule as trigger (fixes §13 #6)."""

    @task(id="idem-batch-failed")
    async def idem_batch_failed(payload):
        if payload == "fail":
            raise RuntimeError("no")
        return payload

    await start_worker()
    failed = await idem_batch_failed.trigger("fail", idempotency_key="bk", max_attempts=1)
    assert (await engine.wait_for_final(failed.id, timeout=10)).status == RunStatus.FAILED

    handle = await idem_batch_failed.batch_trigger(
        [{"payload": "ok", "options": {"idempotency_key": "bk"}}]
    )
    assert handle.runs[0] != failed.id
    assert (await engine.wait_for_final(handle.runs[0], timeout=10)).status == (RunStatus.COMPLETED)


async def test_batch_level_key_applies_per_item_index(engine):
    @task(id="idem-batch-level")
    async def idem_batch_level(payload):
        return payload

    first = await idem_batch_level.batch_trigger(["x", "y"], idempotency_key="batch-key")
    second = await idem_batch_level.batch_trigger(["x2", "y2"], idempotency_key="batch-key")
    assert first.runs[0] != first.runs[1]
    assert second.runs == first.runs


@pytest.mark.parametrize("ttl", ["1 hour", "1y", "", "-5s", "1ms"])
async def test_invalid_idempotency_key_ttl_raises(engine, ttl):
    @task(id="idem-bad-ttl")
    async def idem_bad_ttl(payload):
        return None

    with pytest.raises(InvalidDurationError):
        await idem_bad_ttl.trigger(None, idempotency_key="k", idempotency_key_ttl=ttl)
    assert [r async for r in runs.list()] == []


async def test_combined_units_are_accepted_for_the_ttl(engine):
    """§15: one duration grammar everywhere, including idempotency_key_ttl."""

    @task(id="idem-combined-ttl")
    async def idem_combined_ttl(payload):
        return None

    handle = await idem_combined_ttl.trigger(None, idempotency_key="k", idempotency_key_ttl="1h30m")
    record = await engine.get_run(handle.id)
    assert record.idempotency_key_expires_at == record.created_at + 90 * 60 * 1000


async def test_batch_retrieve_lists_every_item_even_when_keys_resolve_to_one_run(engine):
    @task(id="idem-batch-retrieve")
    async def idem_batch_retrieve(payload):
        return payload

    handle = await idem_batch_retrieve.batch_trigger(
        [
            {"payload": "a", "options": {"idempotency_key": "dup"}},
            {"payload": "b", "options": {"idempotency_key": "dup"}},
            {"payload": "c"},
        ]
    )
    info = await batch.retrieve(handle.batch_id)
    assert info.run_count == 3
    assert info.runs == handle.runs
