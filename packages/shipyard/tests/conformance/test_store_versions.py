"""Store conformance: versions of the task code, PENDING_VERSION runs, and the version lock.

A worker registers its version with its tasks; registration promotes the environment's
PENDING_VERSION runs of those tasks (moving a run that was put on its task's default queue to
the queue the task registered); a claim locks runs to the claiming worker's version and
leaves a run locked to another version to that version's workers while one is live.
"""

from __future__ import annotations

import json
from dataclasses import replace

from shipyard.ids import new_id
from shipyard.records import TaskRecord, WorkerRecord
from shipyard.statuses import IDEMPOTENCY_RELEASE_STATUSES
from shipyard.store.protocol import (
    QueueDefinition,
    RunClaimParams,
    RunEventsListParams,
    RunGetParams,
    RunInsertParams,
    RunPromotePendingParams,
    RunScheduleParams,
    Store,
    TaskRegisterParams,
    VersionListParams,
    WorkerStopParams,
)

ENV = "test"
RELEASE = frozenset(str(s) for s in IDEMPOTENCY_RELEASE_STATUSES)
LIVE_SINCE = 500  # workers that heartbeated at or after this count as live


def run_params(task_id: str = "t", now: int = 1_000, **kw: object) -> RunInsertParams:
    params = RunInsertParams(
        id=new_id("run"),
        environment=ENV,
        task_id=task_id,
        status="QUEUED",
        payload="null",
        queue=f"task/{task_id}",
        queued_at=now,
        created_at=now,
        idempotency_release_statuses=RELEASE,
    )
    return replace(params, **kw)  # type: ignore[arg-type]


def task_record(task_id: str, queue: str, worker: str) -> TaskRecord:
    return TaskRecord(ENV, task_id, "/x.py", queue, 3, None, None, None, None, None, worker, 0)


async def register(
    store: Store,
    worker: str,
    version: str | None,
    tasks: dict[str, str],
    now: int = 1_000,
    heartbeat_at: int | None = None,
) -> list[str]:
    """Register ``worker`` of ``version`` with ``tasks`` (task id → queue); promoted run ids."""
    beat = now if heartbeat_at is None else heartbeat_at
    return await store.task_register(
        TaskRegisterParams(
            ENV,
            WorkerRecord(worker, ENV, "host", 1, None, now, beat, None, version),
            now,
            queues=[QueueDefinition(q, None) for q in sorted(set(tasks.values()))],
            tasks=[task_record(t, q, worker) for t, q in tasks.items()],
        )
    )


def claim(worker: str, version: str | None, now: int = 2_000) -> RunClaimParams:
    return RunClaimParams(
        ENV, worker, ["t"], 10, now, now + 1_000, version=version, live_since=LIVE_SINCE
    )


async def status(store: Store, run_id: str) -> str:
    run = await store.run_get(RunGetParams(ENV, run_id))
    assert run is not None
    return run.status


async def test_registration_promotes_pending_runs_of_its_tasks_only(store: Store) -> None:
    mine = await store.run_insert(run_params(status="PENDING_VERSION"))
    other = await store.run_insert(run_params("other", status="PENDING_VERSION"))
    queued = await store.run_insert(run_params())
    promoted = await register(store, "w1", "v1", {"t": "task/t"}, now=1_500)
    assert promoted == [mine.run.id]
    assert await status(store, mine.run.id) == "QUEUED"
    assert await status(store, other.run.id) == "PENDING_VERSION"
    assert await status(store, queued.run.id) == "QUEUED"
    # The database wrote the status change, dated by the registration.
    events = await store.run_events_list(RunEventsListParams(ENV, mine.run.id))
    assert [(e.kind, e.message, e.ts) for e in events] == [
        ("created", "PENDING_VERSION", 1_000),
        ("status", "QUEUED", 1_500),
    ]
    # Registering again promotes nothing more.
    assert await register(store, "w2", "v1", {"t": "task/t"}) == []


async def test_promotion_moves_a_run_off_the_default_queue_to_the_registered_one(
    store: Store,
) -> None:
    # Triggered before anything knew the task: on its default queue.
    defaulted = await store.run_insert(run_params(status="PENDING_VERSION"))
    # Triggered with a queue named explicitly: it keeps it.
    named = await store.run_insert(run_params(status="PENDING_VERSION", queue="chosen"))
    await register(store, "w1", "v1", {"t": "reports"})
    first = await store.run_get(RunGetParams(ENV, defaulted.run.id))
    second = await store.run_get(RunGetParams(ENV, named.run.id))
    assert first is not None and second is not None
    assert (first.status, first.queue) == ("QUEUED", "reports")
    assert (second.status, second.queue) == ("QUEUED", "chosen")


async def test_the_periodic_pass_promotes_only_the_given_tasks(store: Store) -> None:
    assert await store.run_promote_pending(RunPromotePendingParams(ENV, ["t"], 1_000)) == []
    pending = await store.run_insert(run_params(status="PENDING_VERSION"))
    await store.run_insert(run_params("other", status="PENDING_VERSION"))
    assert await store.run_promote_pending(RunPromotePendingParams(ENV, [], 1_000)) == []
    promoted = await store.run_promote_pending(RunPromotePendingParams(ENV, ["t"], 1_000))
    assert promoted == [pending.run.id]
    assert await store.run_promote_pending(RunPromotePendingParams(ENV, ["t"], 1_000)) == []


async def test_a_pending_run_expires_by_its_ttl(store: Store) -> None:
    pending = await store.run_insert(
        run_params(status="PENDING_VERSION", ttl_ms=100, ttl_expires_at=1_100)
    )
    done = await store.run_schedule_due(RunScheduleParams(ENV, 1_200, expired_error="{}"))
    assert done.expired == [pending.run.id]
    assert await status(store, pending.run.id) == "EXPIRED"


async def test_versions_are_listed_with_their_live_workers(store: Store) -> None:
    await register(store, "w1", "v1", {"t": "task/t"}, now=1_000)
    await register(store, "w2", "v2", {"t": "task/t", "u": "task/u"}, now=2_000)
    await register(store, "w3", "v2", {"t": "task/t", "u": "task/u"}, now=3_000)
    await register(store, "old", "v0", {"t": "task/t"}, now=100, heartbeat_at=100)
    await store.worker_stop(WorkerStopParams(ENV, "w1", 3_500))
    versions = await store.version_list(VersionListParams(ENV, since=LIVE_SINCE))
    by_version = {v.version: v for v in versions}
    assert [v.version for v in versions] == ["v2", "v1", "v0"]  # newest registration first
    assert json.loads(by_version["v2"].task_ids) == ["t", "u"]
    assert (by_version["v2"].live_workers, by_version["v2"].last_heartbeat_at) == (2, 3_000)
    assert (by_version["v2"].created_at, by_version["v2"].updated_at) == (2_000, 3_000)
    assert by_version["v1"].live_workers == 0  # stopped
    assert by_version["v0"].live_workers == 0  # not heartbeating
    assert await store.version_list(VersionListParams("elsewhere", since=0)) == []


async def test_a_claim_locks_the_run_to_the_workers_version(store: Store) -> None:
    await register(store, "w1", "v1", {"t": "task/t"})
    inserted = await store.run_insert(run_params())
    claimed = await store.run_claim(claim("w1", "v1"))
    assert [(r.id, r.version) for r in claimed] == [(inserted.run.id, "v1")]
    stored = await store.run_get(RunGetParams(ENV, inserted.run.id))
    assert stored is not None and stored.version == "v1"


async def test_a_run_locked_to_a_live_version_waits_for_that_versions_worker(
    store: Store,
) -> None:
    await register(store, "w1", "v1", {"t": "task/t"})
    await register(store, "w2", "v2", {"t": "task/t"})
    locked = await store.run_insert(run_params(version="v1"))
    free = await store.run_insert(run_params(now=1_001))
    # v2's worker takes the free run only.
    assert [r.id for r in await store.run_claim(claim("w2", "v2"))] == [free.run.id]
    assert await store.run_claim(claim("w2", "v2", now=2_001)) == []
    # v1's worker takes its run.
    claimed = await store.run_claim(claim("w1", "v1", now=2_002))
    assert [(r.id, r.version) for r in claimed] == [(locked.run.id, "v1")]


async def test_a_run_locked_to_a_version_without_live_workers_goes_to_any(store: Store) -> None:
    await register(store, "w1", "v1", {"t": "task/t"})
    await register(store, "w2", "v2", {"t": "task/t"})
    await register(store, "gone", "v0", {"t": "task/t"}, heartbeat_at=100)  # not heartbeating
    await store.worker_stop(WorkerStopParams(ENV, "w1", 1_500))  # v1 stopped
    stale = await store.run_insert(run_params(version="v0"))
    stopped = await store.run_insert(run_params(version="v1", now=1_001))
    nobody = await store.run_insert(run_params(version="v9", now=1_002))
    claimed = await store.run_claim(claim("w2", "v2"))
    # Relocked to the version that claimed them.
    assert [(r.id, r.version) for r in claimed] == [
        (stale.run.id, "v2"),
        (stopped.run.id, "v2"),
        (nobody.run.id, "v2"),
    ]


async def test_a_claim_without_a_version_keeps_the_runs_lock(store: Store) -> None:
    await register(store, "w1", None, {"t": "task/t"})
    inserted = await store.run_insert(run_params(version="v9"))  # no live worker of v9
    claimed = await store.run_claim(claim("w1", None))
    assert [(r.id, r.version) for r in claimed] == [(inserted.run.id, "v9")]
