"""Store conformance: inserting, claiming, finishing, reaping, cancelling runs."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import psycopg
import pytest

from shipyard.errors import RunNotFoundError, ValidationError
from shipyard.ids import new_id
from shipyard.records import AttemptRecord, NewEvent, RunRecord, TaskRecord, WorkerRecord
from shipyard.statuses import FINAL_STATUSES, IDEMPOTENCY_RELEASE_STATUSES
from shipyard.store.postgres import PostgresStore
from shipyard.store.protocol import (
    AttemptListParams,
    BatchGetParams,
    BatchInsertParams,
    BatchRunsParams,
    IdempotencyKeyResetParams,
    MigrateParams,
    QueueDefinition,
    QueueListParams,
    RunCancelParams,
    RunClaimParams,
    RunEventsAppendParams,
    RunEventsListParams,
    RunFinishManyParams,
    RunFinishParams,
    RunGetParams,
    RunInsertManyParams,
    RunInsertParams,
    RunInsertResult,
    RunListParams,
    RunMetadataParams,
    RunOwnershipParams,
    RunReapParams,
    RunReleaseParams,
    RunTagsAddParams,
    Store,
    TaskListParams,
    TaskRegisterParams,
    WorkerHeartbeatParams,
    WorkerListLiveParams,
    WorkerStopParams,
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
            ENV,
            WorkerRecord("w1", ENV, "host", 1, None, 0, 0, None),
            0,
            queues=[QueueDefinition(f"task/{task_id}", None)],
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


async def get(store: Store, run_id: str) -> RunRecord | None:
    return await store.run_get(RunGetParams(ENV, run_id))


async def finish_many(store: Store, *finishes: RunFinishParams) -> list[bool]:
    return await store.run_finish_many(RunFinishManyParams(ENV, list(finishes)))


async def insert_many(
    store: Store, runs: list[RunInsertParams], batch: BatchInsertParams | None = None
) -> list[RunInsertResult]:
    return await store.run_insert_many(RunInsertManyParams(ENV, runs, batch))


async def attempts(store: Store, run_id: str) -> list[AttemptRecord]:
    return await store.attempt_list(AttemptListParams(ENV, run_id))


async def events(store: Store, run_id: str, *kinds: str) -> list[tuple[str, str]]:
    """A run's events as (kind, message), oldest first, optionally only of ``kinds``.

    The ``created`` event every run starts with (the change feed's, test_store_feed.py) is
    left out unless asked for.
    """
    found = await store.run_events_list(RunEventsListParams(ENV, run_id))
    assert [e.id for e in found] == sorted(e.id for e in found)
    assert [e.kind for e in found][:1] == ["created"]
    wanted = kinds or tuple({e.kind for e in found} - {"created"})
    return [(e.kind, e.message) for e in found if e.kind in wanted]


async def test_insert_and_get(store: Store) -> None:
    result = await store.run_insert(run_params(tags=("a", "b"), metadata='{"k":1}'))
    assert not result.cached
    run = await get(store, result.run.id)
    assert run is not None
    assert (run.status, run.payload, run.metadata) == ("QUEUED", '{"n":1}', '{"k":1}')
    assert json.loads(run.tags) == ["a", "b"]
    assert run.attempt_number == 0
    assert await store.run_get(RunGetParams("other-env", result.run.id)) is None


async def test_each_run_an_insert_creates_has_one_created_event(store: Store) -> None:
    # Whichever statement creates the run (PostgreSQL writes the events in its insert
    # statements, migration 0013): one run with or without tags, runs of a batch; a repeated
    # idempotency key creates no run, so no event either.
    plain = (await store.run_insert(run_params())).run
    tagged = (await store.run_insert(run_params(tags=("a",), metadata='{"k":1}'))).run
    keyed = run_params(idempotency_key="k", idempotency_key_expires_at=10**12)
    first = (await store.run_insert(keyed)).run
    repeat = replace(keyed, id=new_id("run"))
    again = await store.run_insert(repeat)
    assert again.cached and again.run.id == first.id
    many = [r.run for r in await insert_many(store, [run_params(), run_params()])]
    for run in [plain, tagged, first, *many]:
        found = await store.run_events_list(RunEventsListParams(ENV, run.id))
        assert [(e.kind, e.message, e.ts) for e in found] == [("created", "QUEUED", 1_000)]
        assert found[0].attributes == ('{"k":1}' if run is tagged else None)
    assert await store.run_events_list(RunEventsListParams(ENV, repeat.id)) == []


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
    await finish_many(
        store, RunFinishParams(claimed.id, 1, "w1", "FAILED", "FAILED", 3_000, error='{"name":"E"}')
    )
    again = await store.run_insert(
        run_params(idempotency_key="k", idempotency_key_expires_at=5_000)
    )
    assert not again.cached and again.run.id != first.run.id
    old = await get(store, first.run.id)
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
    results = await insert_many(store, params, BatchInsertParams(batch_id, ENV, None, 1_000))
    assert [r.run.id for r in results] == [p.id for p in params]
    batch = await store.batch_get(BatchGetParams(ENV, batch_id))
    assert batch is not None and batch.run_count == 5
    assert [r.id for r in await store.batch_runs(BatchRunsParams(ENV, batch_id))] == [
        p.id for p in params
    ]
    assert await store.batch_runs(BatchRunsParams("other-env", batch_id)) == []


async def test_insert_many_duplicate_key_in_one_batch_resolves_to_one_run(store: Store) -> None:
    params = [
        run_params(idempotency_key="dup", idempotency_key_expires_at=10**12) for _ in range(3)
    ]
    results = await insert_many(store, params)
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


async def test_a_claim_begun_before_a_run_was_created_does_not_start_it_earlier(
    store: Store,
) -> None:
    # A claim's time is taken when it is sent; under load it can reach the database after a
    # trigger made later committed its run (ready at once: available_at 0). The run must not
    # start, nor its attempt, before it was created (seen: started_at 10 ms < created_at).
    await register(store)
    created = (await store.run_insert(run_params(now=1_000, available_at=0))).run
    (claimed,) = await store.run_claim(claim(store, now=990))
    assert (claimed.started_at, claimed.updated_at) == (1_000, 1_000)
    assert [a.started_at for a in await attempts(store, created.id)] == [1_000]
    await store.run_insert(run_params(now=1_000, available_at=0))
    (later,) = await store.run_claim(claim(store, now=1_500))
    assert (later.started_at, later.updated_at) == (1_500, 1_500)  # the claim's own time


async def test_concurrent_claims_never_share_a_run(store: Store) -> None:
    await register(store)
    await insert_many(store, [run_params() for _ in range(50)])
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
    assert await finish_many(store, stale, wrong_owner, good) == [False, False, True]
    done = await get(store, run.id)
    assert done is not None
    assert (done.status, done.output, done.finished_at, done.lease_owner) == (
        "COMPLETED",
        '"ok"',
        3_000,
        None,
    )
    assert await finish_many(store, good) == [False]  # a second completion is rejected
    [attempt] = await attempts(store, run.id)
    assert (attempt.number, attempt.status, attempt.finished_at) == (1, "COMPLETED", 3_000)
    assert await events(store, run.id) == [
        ("status", "EXECUTING"),
        ("log", "hello"),
        ("status", "COMPLETED"),
    ]


async def test_a_batch_of_plain_finishes_fences_each_run_and_writes_each_accepted_one(
    store: Store,
) -> None:
    # Finishes with no logs or metadata, of distinct runs, as a worker's batch sends them
    # (the SQLite store writes such a batch in two statements): each is fenced on its own,
    # and each accepted one writes its run, its attempt, its status event and frees its slot.
    await register(store)
    await insert_many(store, [run_params() for _ in range(5)])
    done, retried, stale, stranger, already = await store.run_claim(claim(store))
    await finish_many(store, RunFinishParams(already.id, 1, "w1", "FAILED", "FAILED", 2_500))
    accepted = await finish_many(
        store,
        RunFinishParams(done.id, 1, "w1", "COMPLETED", "COMPLETED", 3_000, output='"ok"'),
        RunFinishParams(
            retried.id, 1, "w1", "QUEUED", "FAILED", 3_000, error='{"m":"x"}', retry_at=9_000
        ),
        RunFinishParams(stale.id, 2, "w1", "COMPLETED", "COMPLETED", 3_000, output='"no"'),
        RunFinishParams(stranger.id, 1, "w9", "COMPLETED", "COMPLETED", 3_000, output='"no"'),
        RunFinishParams(already.id, 1, "w1", "COMPLETED", "COMPLETED", 3_000, output='"no"'),
    )
    assert accepted == [True, True, False, False, False]
    rows = {r.id: r for r in [await get(store, x.id) for x in (done, retried, stale, already)] if r}
    assert (rows[done.id].status, rows[done.id].output, rows[done.id].finished_at) == (
        "COMPLETED",
        '"ok"',
        3_000,
    )
    again = rows[retried.id]
    assert (again.status, again.error, again.available_at, again.finished_at) == (
        "QUEUED",
        '{"m":"x"}',
        9_000,
        None,
    )
    assert (again.lease_owner, again.lease_expires_at, again.updated_at) == (None, None, 3_000)
    assert (rows[stale.id].status, rows[stale.id].output) == ("EXECUTING", None)
    assert (rows[already.id].status, rows[already.id].finished_at) == ("FAILED", 2_500)
    [attempt] = await attempts(store, done.id)
    assert (attempt.status, attempt.finished_at, attempt.error) == ("COMPLETED", 3_000, None)
    [attempt] = await attempts(store, retried.id)
    assert (attempt.status, attempt.finished_at, attempt.error) == ("FAILED", 3_000, '{"m":"x"}')
    [attempt] = await attempts(store, stale.id)
    assert (attempt.status, attempt.finished_at) == ("EXECUTING", None)
    assert await events(store, done.id) == [("status", "EXECUTING"), ("status", "COMPLETED")]
    assert await events(store, retried.id) == [("status", "EXECUTING"), ("status", "QUEUED")]
    assert await events(store, stale.id) == [("status", "EXECUTING")]
    # Five claimed, three finished (one before the batch): two still hold their slots.
    [queue] = [q for q in await store.queue_list(QueueListParams(ENV)) if q.name == "task/t"]
    assert queue.running == 2


async def test_retry_requeues_with_available_at(store: Store) -> None:
    await register(store)
    await store.run_insert(run_params())
    [run] = await store.run_claim(claim(store))
    await finish_many(
        store,
        RunFinishParams(run.id, 1, "w1", "QUEUED", "FAILED", 3_000, error="{}", retry_at=5_000),
    )
    assert await store.run_claim(claim(store, now=4_999)) == []
    [again] = await store.run_claim(claim(store, now=5_000))
    assert again.attempt_number == 2 and again.started_at == 2_000
    assert [a.status for a in await attempts(store, run.id)] == ["FAILED", "EXECUTING"]


async def test_heartbeat_extends_leases_and_reaper_crashes_or_requeues(store: Store) -> None:
    await register(store, max_attempts=2)
    await store.run_insert(run_params())
    [run] = await store.run_claim(claim(store, now=2_000))  # lease until 3_000
    assert store.worker_heartbeat(WorkerHeartbeatParams(ENV, "w1", 2_500, 4_000, [run.id])) == 1
    reap = RunReapParams(ENV, 3_500, '{"name":"Lost"}')
    assert await store.run_reap_expired(reap) == []  # extended to 4_000
    [reaped] = await store.run_reap_expired(replace(reap, now=4_001))
    assert (reaped.run_id, reaped.status) == (run.id, "QUEUED")
    [again] = await store.run_claim(claim(store, worker="w2", now=4_002))
    assert again.attempt_number == 2
    [final] = await store.run_reap_expired(replace(reap, now=10_000))
    assert final.status == "CRASHED"
    crashed = await get(store, run.id)
    assert crashed is not None and crashed.finished_at == 10_000
    assert [a.status for a in await attempts(store, run.id)] == ["CRASHED", "CRASHED"]
    late = RunFinishParams(run.id, 1, "w1", "COMPLETED", "COMPLETED", 11_000, output='"late"')
    assert await finish_many(store, late) == [False]


async def test_release_does_not_count_the_attempt(store: Store) -> None:
    await register(store)
    await store.run_insert(run_params())
    [run] = await store.run_claim(claim(store))
    assert await store.run_release(RunReleaseParams(ENV, run.id, 1, "w1", 2_500))
    released = await get(store, run.id)
    assert released is not None
    assert (released.status, released.attempt_number) == ("QUEUED", 0)
    [again] = await store.run_claim(claim(store, now=3_000))
    assert again.attempt_number == 1
    assert [a.status for a in await attempts(store, run.id)] == ["RELEASED", "EXECUTING"]


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
        *[
            store.run_metadata_update(RunMetadataParams(ENV, run.id, increment, 2_000))
            for _ in range(25)
        ]
    )
    stored = await get(store, run.id)
    assert stored is not None and json.loads(stored.metadata) == {"n": 25}


async def test_tags_add_dedupes_and_caps(store: Store) -> None:
    run = (await store.run_insert(run_params(tags=("a",)))).run
    tags = await store.run_tags_add(RunTagsAddParams(ENV, run.id, ["a", "b", "c"], 2, 2_000))
    assert tags == ["a", "b"]
    listed = await store.run_list(RunListParams(ENV, tag="b"))
    assert [r.id for r in listed.items] == [run.id]


async def test_tasks_and_workers(store: Store) -> None:
    await register(store, task_id="t1")
    assert [t.id for t in await store.task_list(TaskListParams(ENV))] == ["t1"]
    assert await store.task_list(TaskListParams("other-env")) == []
    assert [w.id for w in await store.worker_list_live(WorkerListLiveParams(ENV, 0))] == ["w1"]
    await store.worker_stop(WorkerStopParams("other-env", "w1", 5))  # not that worker
    assert len(await store.worker_list_live(WorkerListLiveParams(ENV, 0))) == 1
    await store.worker_stop(WorkerStopParams(ENV, "w1", 5))
    assert await store.worker_list_live(WorkerListLiveParams(ENV, 0)) == []


async def test_migrate_is_idempotent(store: Store) -> None:
    assert await store.migrate(MigrateParams(now=0)) == []


async def test_heartbeat_does_not_keep_runs_the_worker_does_not_hold(store: Store) -> None:
    # A claim whose result never reached the worker (connection lost) leaves runs leased to
    # it that it is not running: its heartbeats must not keep them, so the reaper frees them.
    await register(store)
    await insert_many(store, [run_params() for _ in range(2)])
    held, orphan = await store.run_claim(claim(store, now=2_000))  # leases until 3_000
    assert store.worker_heartbeat(WorkerHeartbeatParams(ENV, "w1", 2_500, 9_000, [held.id])) == 1
    [reaped] = await store.run_reap_expired(RunReapParams(ENV, 3_500, "{}"))
    assert (reaped.run_id, reaped.status) == (orphan.id, "QUEUED")


# -- status events: appended by the database, one per status change, after the logs ------------


async def test_claim_and_finish_each_append_one_status_event_after_the_logs(store: Store) -> None:
    await register(store)
    run = (await store.run_insert(run_params())).run
    assert await events(store, run.id) == []  # creating a run is not a status change
    assert await events(store, run.id, "created") == [("created", "QUEUED")]
    [claimed] = await store.run_claim(claim(store, now=2_000))
    assert await events(store, run.id) == [("status", "EXECUTING")]
    logs = [NewEvent(run.id, 2_500 + i, "log", f"line {i}", "info") for i in range(3)]
    retry = RunFinishParams(
        claimed.id, 1, "w1", "QUEUED", "FAILED", 3_000, error="{}", retry_at=3_000, events=logs
    )
    assert await finish_many(store, retry) == [True]
    [again] = await store.run_claim(claim(store, now=3_000))
    done = RunFinishParams(again.id, 2, "w1", "COMPLETED", "COMPLETED", 4_000, output="1")
    assert await finish_many(store, done) == [True]
    assert await events(store, run.id) == [
        ("status", "EXECUTING"),
        ("log", "line 0"),
        ("log", "line 1"),
        ("log", "line 2"),
        ("status", "QUEUED"),
        ("status", "EXECUTING"),
        ("status", "COMPLETED"),
    ]
    found = await store.run_events_list(RunEventsListParams(ENV, run.id))
    # The status event is dated by the change (the caller's now), not by a clock of the store.
    assert [e.ts for e in found if e.kind == "status"] == [2_000, 3_000, 3_000, 4_000]


async def test_a_rejected_finish_writes_neither_its_events_nor_a_status(store: Store) -> None:
    await register(store)
    run = (await store.run_insert(run_params())).run
    await store.run_claim(claim(store))
    stale = RunFinishParams(
        run.id,
        1,
        "w9",
        "COMPLETED",
        "COMPLETED",
        3_000,
        events=[NewEvent(run.id, 3_000, "log", "x")],
    )
    assert await finish_many(store, stale) == [False]
    assert await events(store, run.id) == [("status", "EXECUTING")]


async def test_batched_finishes_keep_each_runs_logs_before_its_status(store: Store) -> None:
    await register(store)
    made = [r.run for r in await insert_many(store, [run_params() for _ in range(3)])]
    claimed = await store.run_claim(claim(store))
    finishes = [
        RunFinishParams(
            r.id,
            1,
            "w1" if i != 1 else "w9",  # the second is stale
            "COMPLETED",
            "COMPLETED",
            3_000,
            output="1",
            events=[NewEvent(r.id, 3_000, "log", f"a{i}"), NewEvent(r.id, 3_000, "log", f"b{i}")],
        )
        for i, r in enumerate(claimed)
    ]
    assert await finish_many(store, *finishes) == [True, False, True]
    by_id = {r.id: i for i, r in enumerate(claimed)}
    for run in made:
        i = by_id[run.id]
        expected = [("status", "EXECUTING")]
        if i != 1:
            expected += [("log", f"a{i}"), ("log", f"b{i}"), ("status", "COMPLETED")]
        assert await events(store, run.id) == expected


async def test_cancel_cascade_appends_one_status_event_per_canceled_run(store: Store) -> None:
    await register(store)
    parent = (await store.run_insert(run_params())).run
    [executing] = await store.run_claim(claim(store))
    child = (await store.run_insert(run_params(parent_run_id=parent.id))).run
    done = (await store.run_insert(run_params(task_id="u", parent_run_id=parent.id))).run
    await register(store, task_id="u")
    [u] = await store.run_claim(claim(store, task_ids=("u",)))
    await finish_many(store, RunFinishParams(u.id, 1, "w1", "COMPLETED", "COMPLETED", 3_000))
    cancel = RunCancelParams(ENV, parent.id, 5_000, FINAL, '{"name":"Canceled"}')
    assert set(await store.run_cancel(cancel)) == {parent.id, child.id}
    assert executing.id == parent.id
    assert await events(store, parent.id) == [("status", "EXECUTING"), ("status", "CANCELED")]
    assert await events(store, child.id) == [("status", "CANCELED")]
    assert await events(store, done.id, "status") == [
        ("status", "EXECUTING"),
        ("status", "COMPLETED"),
    ]
    await store.run_cancel(cancel)  # nothing left to cancel: no event
    assert await events(store, parent.id) == [("status", "EXECUTING"), ("status", "CANCELED")]


async def test_reap_appends_a_status_event_for_each_run_taken_back(store: Store) -> None:
    await register(store, max_attempts=1)
    first, second = [r.run for r in await insert_many(store, [run_params(), run_params()])]
    await store.run_claim(claim(store, now=2_000))
    reaped = await store.run_reap_expired(RunReapParams(ENV, 10_000, "{}"))
    assert {r.status for r in reaped} == {"CRASHED"}
    for run in (first, second):
        assert await events(store, run.id) == [("status", "EXECUTING"), ("status", "CRASHED")]
    found = await store.run_events_list(RunEventsListParams(ENV, first.id))
    assert found[-1].ts == 10_000


async def test_release_appends_a_queued_status_event(store: Store) -> None:
    await register(store)
    run = (await store.run_insert(run_params())).run
    await store.run_claim(claim(store))
    assert await store.run_release(RunReleaseParams(ENV, run.id, 1, "w1", 2_500))
    assert await events(store, run.id) == [("status", "EXECUTING"), ("status", "QUEUED")]


# -- every operation is scoped by its environment ------------------------------------------------


async def test_operations_on_another_environments_run_change_nothing(store: Store) -> None:
    await register(store)
    run = (await store.run_insert(run_params(metadata='{"n":0}'))).run
    [claimed] = await store.run_claim(claim(store))
    other = "other-env"
    finish = RunFinishParams(run.id, 1, "w1", "COMPLETED", "COMPLETED", 3_000, output="1")
    assert await store.run_finish_many(RunFinishManyParams(other, [finish])) == [False]
    assert await store.run_release(RunReleaseParams(other, run.id, 1, "w1", 3_000)) is False
    beat = WorkerHeartbeatParams(other, "w1", 2_500, 9_000, [run.id])
    assert store.worker_heartbeat(beat) == 0
    assert await store.run_ownership(RunOwnershipParams(other, [run.id])) == []
    assert await store.attempt_list(AttemptListParams(other, run.id)) == []
    assert await store.run_events_list(RunEventsListParams(other, run.id)) == []
    with pytest.raises(RunNotFoundError):
        await store.run_metadata_update(RunMetadataParams(other, run.id, lambda t: "{}", 3_000))
    assert await store.run_tags_add(RunTagsAddParams(other, run.id, ["x"], 10, 3_000)) == []
    await store.run_events_append(
        RunEventsAppendParams(other, [NewEvent(run.id, 3_000, "log", "not mine")])
    )
    assert await store.run_cancel(RunCancelParams(other, run.id, 3_000, FINAL, "{}")) == []
    assert await store.run_reap_expired(RunReapParams(other, 10**12, "{}")) == []
    stored = await get(store, run.id)
    assert stored is not None
    assert (stored.status, stored.lease_expires_at, stored.metadata, stored.tags) == (
        "EXECUTING",
        claimed.lease_expires_at,
        '{"n":0}',
        "[]",
    )
    assert await events(store, run.id) == [("status", "EXECUTING")]
    [ownership] = await store.run_ownership(RunOwnershipParams(ENV, [run.id]))
    assert (ownership.status, ownership.lease_owner) == ("EXECUTING", "w1")


async def test_events_append_keeps_order_and_lists_after_an_id(store: Store) -> None:
    run = (await store.run_insert(run_params())).run
    appended = [NewEvent(run.id, 1_000 + i, "log", f"m{i}", "info", '{"i":1}') for i in range(5)]
    await store.run_events_append(RunEventsAppendParams(ENV, appended))
    created, *found = await store.run_events_list(RunEventsListParams(ENV, run.id))
    assert (created.kind, created.message) == ("created", "QUEUED")
    assert [(e.message, e.ts, e.level, e.attributes) for e in found] == [
        (f"m{i}", 1_000 + i, "info", '{"i":1}') for i in range(5)
    ]
    after = await store.run_events_list(RunEventsListParams(ENV, run.id, found[1].id, limit=2))
    assert [e.message for e in after] == ["m2", "m3"]


async def test_metadata_update_writes_the_engines_event_and_tags_add_a_tag_event(
    store: Store,
) -> None:
    run = (await store.run_insert(run_params(tags=("a",)))).run
    event = NewEvent(run.id, 2_000, "metadata", "1 operation", attributes="[]")
    new = await store.run_metadata_update(
        RunMetadataParams(ENV, run.id, lambda t: '{"k":2}', 2_000, event)
    )
    assert new == '{"k":2}'
    await store.run_tags_add(RunTagsAddParams(ENV, run.id, ["a", "b"], 10, 2_100))
    await store.run_tags_add(RunTagsAddParams(ENV, run.id, ["b"], 10, 2_200))  # nothing new
    assert await events(store, run.id) == [("metadata", "1 operation"), ("tag", "b")]


async def test_idempotency_key_reset_is_scoped_and_dated_by_the_caller(store: Store) -> None:
    run = (
        await store.run_insert(run_params(idempotency_key="k", idempotency_key_expires_at=10**12))
    ).run
    assert await store.idempotency_key_reset(IdempotencyKeyResetParams("other", "t", "k", 9)) == 0
    assert await store.idempotency_key_reset(IdempotencyKeyResetParams(ENV, "t", "k", 7_000)) == 1
    stored = await get(store, run.id)
    assert stored is not None
    assert (stored.idempotency_key, stored.updated_at) == (None, 7_000)


async def test_insert_joins_the_callers_transaction_on_postgres(store: Store) -> None:
    if not isinstance(store, PostgresStore):
        with pytest.raises(ValidationError, match="PostgreSQL transaction"):
            await store.run_insert(run_params(connection=object()))
        return
    async with await psycopg.AsyncConnection.connect(store.url) as conn, conn.transaction():
        rolled_back = await store.run_insert(run_params(tags=("x",), connection=conn))
        assert not rolled_back.cached
        raise psycopg.Rollback()
    assert await get(store, rolled_back.run.id) is None
    async with await psycopg.AsyncConnection.connect(store.url) as conn, conn.transaction():
        kept = await store.run_insert(run_params(tags=("x",), connection=conn))
    stored = await get(store, kept.run.id)
    assert stored is not None and json.loads(stored.tags) == ["x"]
