"""Store conformance: inserting, claiming, finishing, reaping, cancelling runs."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

from shipyard.ids import new_id
from shipyard.records import NewEvent, TaskRecord, WorkerRecord
from shipyard.statuses import FINAL_STATUSES, IDEMPOTENCY_RELEASE_STATUSES
from shipyard.store.protocol import (
    BatchInsertParams,
    QueueUpsertParams,
    RunCancelParams,
    RunClaimParams,
    RunFinishParams,
    RunInsertParams,
    RunListParams,
    RunMetadataParams,
    RunReapParams,
    RunReleaseParams,
    RunTagsAddParams,
    Store,
    TaskRegisterParams,
    WorkerHeartbeatParams,
)

ENV = "test"
RELEASE = frozenset(str(s) for s in IDEMPOTENCY_RELEASE_STATUSES)
FINAL = frozenset(str(s) for s in FINAL_STATUSES)


def run_params(task_id: str = "t", now: int = 1_000, **kw: object) -> RunInsertParams:
    params = RunInsertParams(
        id=new_id("run"),
        environment=ENV,
        task_id=task_id,
        status="QUEUED",
        payload='{"n":1}',
        queue=f"task/{task_id}",
        queued_at=now,
        created_at=now,
        idempotency_release_statuses=RELEASE,
    )
    return replace(params, **kw)  # type: ignore[arg-type]


def claim(
    store: Store,
    worker: str = "w1",
    limit: int = 10,
    now: int = 2_000,
    task_ids: tuple[str, ...] = ("t",),
) -> RunClaimParams:
    return RunClaimParams(ENV, worker, list(task_ids), limit, now, now + 1_000)


async def register(store: Store, task_id: str = "t", max_attempts: int = 3) -> None:
    await store.task_register(
        TaskRegisterParams(
            worker=WorkerRecord("w1", ENV, "host", 1, None, 0, 0, None),
            queues=[QueueUpsertParams(ENV, f"task/{task_id}", None, 0)],
            tasks=[
                TaskRecord(
                    ENV,
                    task_id,
                    "/x.py",
                    f"task/{task_id}",
                    max_attempts,
                    None,
                    None,
                    None,
                    None,
                    None,
                    "w1",
                    0,
                )
            ],
        )
    )


async def test_insert_and_get(store: Store) -> None:
    result = await store.run_insert(run_params(tags=("a", "b"), metadata='{"k":1}'))
    assert not result.cached
    run = await store.run_get(ENV, result.run.id)
    assert run is not None
    assert (run.status, run.payload, run.metadata) == ("QUEUED", '{"n":1}', '{"k":1}')
    assert json.loads(run.tags) == ["a", "b"]
    assert run.attempt_number == 0
    assert await store.run_get("other-env", result.run.id) is None


async def test_idempotency_key_returns_live_run(store: Store) -> None:
    first = await store.run_insert(
        run_params(idempotency_key="k", idempotency_key_expires_at=10**12)
    )
    second = await store.run_insert(
        run_params(idempotency_key="k", idempotency_key_expires_at=10**12)
    )
    assert second.cached and second.run.id == first.run.id
    other_task = await store.run_insert(
        run_params(task_id="u", idempotency_key="k", idempotency_key_expires_at=10**12)
    )
    assert not other_task.cached


async def test_idempotency_key_released_by_failed_run_and_expiry(store: Store) -> None:
    await register(store)
    first = await store.run_insert(
        run_params(idempotency_key="k", idempotency_key_expires_at=10**12)
    )
    [claimed] = await store.run_claim(claim(store))
    await store.run_finish_many(
        [RunFinishParams(claimed.id, 1, "w1", "FAILED", "FAILED", 3_000, error='{"name":"E"}')]
    )
    again = await store.run_insert(
        run_params(idempotency_key="k", idempotency_key_expires_at=5_000)
    )
    assert not again.cached and again.run.id != first.run.id
    old = await store.run_get(ENV, first.run.id)
    assert old is not None and old.idempotency_key is None
    # Expired key (expires_at 5_000 <= created_at 6_000) → new run.
    third = await store.run_insert(
        run_params(now=6_000, idempotency_key="k", idempotency_key_expires_at=10**12)
    )
    assert not third.cached and third.run.id != again.run.id


async def test_concurrent_inserts_with_one_key_make_one_run(store: Store) -> None:
    results = await asyncio.gather(
        *[
            store.run_insert(run_params(idempotency_key="same", idempotency_key_expires_at=10**12))
            for _ in range(20)
        ]
    )
    assert len({r.run.id for r in results}) == 1
    assert sum(not r.cached for r in results) == 1


async def test_insert_many_with_batch_keeps_order(store: Store) -> None:
    batch_id = new_id("batch")
    params = [run_params(batch_id=batch_id, batch_index=i) for i in range(5)]
    results = await store.run_insert_many(params, BatchInsertParams(batch_id, ENV, None, 1_000))
    assert [r.run.id for r in results] == [p.id for p in params]
    batch = await store.batch_get(ENV, batch_id)
    assert batch is not None and batch.run_count == 5
    assert [r.id for r in await store.batch_runs(batch_id)] == [p.id for p in params]


async def test_insert_many_duplicate_key_in_one_batch_resolves_to_one_run(store: Store) -> None:
    params = [
        run_params(idempotency_key="dup", idempotency_key_expires_at=10**12) for _ in range(3)
    ]
    results = await store.run_insert_many(params)
    assert len({r.run.id for r in results}) == 1
    assert [r.cached for r in results] == [False, True, True]


async def test_claim_orders_by_priority_adjusted_time_and_respects_limit(store: Store) -> None:
    await register(store)
    early = await store.run_insert(run_params(now=1_000))
    late_urgent = await store.run_insert(run_params(now=1_500, priority_ms=10_000))
    middle = await store.run_insert(run_params(now=1_200))
    claimed = await store.run_claim(claim(store, limit=2))
    assert [r.id for r in claimed] == [late_urgent.run.id, early.run.id]
    assert all(r.status == "EXECUTING" and r.attempt_number == 1 for r in claimed)
    assert all(r.lease_owner == "w1" and r.lease_expires_at == 3_000 for r in claimed)
    assert claimed[0].max_attempts == 3  # locked from the registered task at first claim
    rest = await store.run_claim(claim(store, worker="w2"))
    assert [r.id for r in rest] == [middle.run.id]
    assert await store.run_claim(claim(store, worker="w3")) == []


async def test_claim_skips_other_tasks_and_future_runs(store: Store) -> None:
    await register(store)
    await store.run_insert(run_params(task_id="other"))
    await store.run_insert(run_params(available_at=10_000))
    assert await store.run_claim(claim(store, now=2_000)) == []
    assert len(await store.run_claim(claim(store, now=10_000))) == 1


async def test_concurrent_claims_never_share_a_run(store: Store) -> None:
    await register(store)
    await store.run_insert_many([run_params() for _ in range(50)])
    batches = await asyncio.gather(
        *[store.run_claim(claim(store, worker=f"w{i}", limit=7)) for i in range(10)]
    )
    ids = [r.id for b in batches for r in b]
    assert len(ids) == len(set(ids)) == 50


async def test_finish_is_fenced_by_attempt_and_owner(store: Store) -> None:
    await register(store)
    await store.run_insert(run_params())
    [run] = await store.run_claim(claim(store))
    stale = RunFinishParams(run.id, 2, "w1", "COMPLETED", "COMPLETED", 3_000, output='"x"')
    wrong_owner = RunFinishParams(run.id, 1, "w9", "COMPLETED", "COMPLETED", 3_000, output='"x"')
    good = RunFinishParams(
        run.id,
        1,
        "w1",
        "COMPLETED",
        "COMPLETED",
        3_000,
        output='"ok"',
        events=[NewEvent(run.id, 3_000, "log", "hello", "info")],
    )
    assert await store.run_finish_many([stale, wrong_owner, good]) == [False, False, True]
    done = await store.run_get(ENV, run.id)
    assert done is not None
    assert (done.status, done.output, done.finished_at, done.lease_owner) == (
        "COMPLETED",
        '"ok"',
        3_000,
        None,
    )
    assert await store.run_finish_many([good]) == [False]  # a second completion is rejected
    [attempt] = await store.attempt_list(run.id)
    assert (attempt.number, attempt.status, attempt.finished_at) == (1, "COMPLETED", 3_000)
    events = await store.run_events_list(run.id)
    assert [(e.kind, e.message) for e in events] == [("log", "hello")]


async def test_retry_requeues_with_available_at(store: Store) -> None:
    await register(store)
    await store.run_insert(run_params())
    [run] = await store.run_claim(claim(store))
    await store.run_finish_many(
        [RunFinishParams(run.id, 1, "w1", "QUEUED", "FAILED", 3_000, error="{}", retry_at=5_000)]
    )
    assert await store.run_claim(claim(store, now=4_999)) == []
    [again] = await store.run_claim(claim(store, now=5_000))
    assert again.attempt_number == 2 and again.started_at == 2_000
    assert [a.status for a in await store.attempt_list(run.id)] == ["FAILED", "EXECUTING"]


async def test_heartbeat_extends_leases_and_reaper_crashes_or_requeues(store: Store) -> None:
    await register(store, max_attempts=2)
    await store.run_insert(run_params())
    [run] = await store.run_claim(claim(store, now=2_000))  # lease until 3_000
    assert store.worker_heartbeat(WorkerHeartbeatParams("w1", 2_500, 4_000, [run.id])) == 1
    reap = RunReapParams(ENV, 3_500, '{"name":"Lost"}')
    assert await store.run_reap_expired(reap) == []  # extended to 4_000
    [reaped] = await store.run_reap_expired(replace(reap, now=4_001))
    assert (reaped.run_id, reaped.status) == (run.id, "QUEUED")
    [again] = await store.run_claim(claim(store, worker="w2", now=4_002))
    assert again.attempt_number == 2
    [final] = await store.run_reap_expired(replace(reap, now=10_000))
    assert final.status == "CRASHED"
    crashed = await store.run_get(ENV, run.id)
    assert crashed is not None and crashed.finished_at == 10_000
    assert [a.status for a in await store.attempt_list(run.id)] == ["CRASHED", "CRASHED"]
    late = RunFinishParams(run.id, 1, "w1", "COMPLETED", "COMPLETED", 11_000, output='"late"')
    assert await store.run_finish_many([late]) == [False]


async def test_release_does_not_count_the_attempt(store: Store) -> None:
    await register(store)
    await store.run_insert(run_params())
    [run] = await store.run_claim(claim(store))
    assert await store.run_release(RunReleaseParams(run.id, 1, "w1", 2_500))
    released = await store.run_get(ENV, run.id)
    assert released is not None
    assert (released.status, released.attempt_number) == ("QUEUED", 0)
    [again] = await store.run_claim(claim(store, now=3_000))
    assert again.attempt_number == 1
    assert [a.status for a in await store.attempt_list(run.id)] == ["RELEASED", "EXECUTING"]


async def test_cancel_is_recursive_and_skips_final_runs(store: Store) -> None:
    parent = await store.run_insert(run_params())
    child = await store.run_insert(run_params(parent_run_id=parent.run.id))
    grandchild = await store.run_insert(
        run_params(parent_run_id=child.run.id, root_run_id=parent.run.id)
    )
    cancel = RunCancelParams(ENV, parent.run.id, 5_000, FINAL, '{"name":"Canceled"}')
    ids = await store.run_cancel(cancel)
    assert set(ids) == {parent.run.id, child.run.id, grandchild.run.id}
    assert await store.run_cancel(cancel) == []  # already final


async def test_list_filters_and_paginates(store: Store) -> None:
    made = []
    for i in range(5):
        r = await store.run_insert(
            run_params(task_id="a" if i % 2 else "b", now=1_000 + i, tags=("x",) if i < 2 else ())
        )
        made.append(r.run.id)
    page = await store.run_list(RunListParams(ENV, limit=2))
    assert [r.id for r in page.items] == made[::-1][:2]
    page2 = await store.run_list(RunListParams(ENV, limit=2, cursor=page.next_cursor))
    page3 = await store.run_list(RunListParams(ENV, limit=2, cursor=page2.next_cursor))
    assert [r.id for r in page.items + page2.items + page3.items] == made[::-1]
    assert page3.next_cursor is None
    by_task = await store.run_list(RunListParams(ENV, task_ids=["a"]))
    assert {r.task_id for r in by_task.items} == {"a"} and len(by_task.items) == 2
    by_tag = await store.run_list(RunListParams(ENV, tag="x"))
    assert sorted(r.id for r in by_tag.items) == sorted(made[:2])
    window = await store.run_list(RunListParams(ENV, created_from=1_001, created_to=1_003))
    assert len(window.items) == 3
    assert (await store.run_list(RunListParams(ENV, statuses=["COMPLETED"]))).items == []


async def test_metadata_update_is_atomic_read_modify_write(store: Store) -> None:
    run = (await store.run_insert(run_params(metadata='{"n":0}'))).run

    def increment(text: str) -> str:
        data = json.loads(text)
        data["n"] += 1
        return json.dumps(data)

    await asyncio.gather(
        *[store.run_metadata_update(RunMetadataParams(run.id, increment, 2_000)) for _ in range(25)]
    )
    stored = await store.run_get(ENV, run.id)
    assert stored is not None and json.loads(stored.metadata) == {"n": 25}


async def test_tags_add_dedupes_and_caps(store: Store) -> None:
    run = (await store.run_insert(run_params(tags=("a",)))).run
    tags = await store.run_tags_add(RunTagsAddParams(run.id, ["a", "b", "c"], 2, 2_000))
    assert tags == ["a", "b"]
    listed = await store.run_list(RunListParams(ENV, tag="b"))
    assert [r.id for r in listed.items] == [run.id]


async def test_tasks_and_workers(store: Store) -> None:
    await register(store, task_id="t1")
    assert [t.id for t in await store.task_list(ENV)] == ["t1"]
    assert [w.id for w in await store.worker_list_live(ENV, since=0)] == ["w1"]
    await store.worker_stop("w1", 5)
    assert await store.worker_list_live(ENV, since=0) == []


async def test_migrate_is_idempotent(store: Store) -> None:
    assert await store.migrate() == []


async def test_heartbeat_does_not_keep_runs_the_worker_does_not_hold(store: Store) -> None:
    # A claim whose result never reached the worker (connection lost) leaves runs leased to
    # it that it is not running: its heartbeats must not keep them, so the reaper frees them.
    await register(store)
    await store.run_insert_many([run_params() for _ in range(2)])
    held, orphan = await store.run_claim(claim(store, now=2_000))  # leases until 3_000
    assert store.worker_heartbeat(WorkerHeartbeatParams("w1", 2_500, 9_000, [held.id])) == 1
    [reaped] = await store.run_reap_expired(RunReapParams(ENV, 3_500, "{}"))
    assert (reaped.run_id, reaped.status) == (orphan.id, "QUEUED")
