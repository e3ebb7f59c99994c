"""Procedures of what an environment has: its queues, its trigger rate bucket, its tasks,
its workers and the versions they run.
"""

from __future__ import annotations

import json
from typing import Any

from shipyard.records import (
    QueueRecord,
    TaskRecord,
    VersionRecord,
    WorkerRecord,
)
from shipyard.store.params import (
    QueueListParams,
    QueueUpdateParams,
    QueueUpsertParams,
    RateTakeParams,
    RunPromotePendingParams,
    TaskListParams,
    TaskRegisterParams,
    VersionListParams,
    WorkerHeartbeatParams,
    WorkerListLiveParams,
    WorkerShareParams,
    WorkerStopParams,
)
from shipyard.store.rows import (
    take_tokens,
)
from shipyard.store.steps import (
    Procedure,
    begin,
    count,
    many,
    notify,
    row,
    rows,
    wants_changed,
)

# -- queues and rate limits --------------------------------------------------------------------


def _queue_rows(p: QueueUpsertParams) -> list[dict[str, Any]]:
    return [
        {
            "environment": p.environment,
            "name": q.name,
            "concurrency_limit": q.concurrency_limit,
            "now": p.now,
        }
        for q in p.queues
    ]


def queue_upsert(p: QueueUpsertParams) -> Procedure[None]:
    """Register queues (limits only; never un-pauses)."""
    yield begin()
    yield many("queue_upsert", _queue_rows(p))


def queue_list(p: QueueListParams) -> Procedure[list[QueueRecord]]:
    """Every queue with its running and queued counts."""
    found = yield rows("queue_list", {"environment": p.environment, "name": None})
    return [QueueRecord(*r) for r in found]


def queue_update(p: QueueUpdateParams) -> Procedure[QueueRecord | None]:
    """Pause, resume or override a queue's limit; None if there is no such queue."""
    key = {"environment": p.environment, "name": p.name}
    changed = yield count(
        "queue_update",
        {
            **key,
            "now": p.now,
            "paused": None if p.paused is None else int(p.paused),
            "limit_override": p.limit_override,
            "clear_override": int(p.clear_override),
        },
    )
    if not changed:
        return None
    found = yield row("queue_list", key)
    return QueueRecord(*found) if found else None


def environment_rate_take(p: RateTakeParams) -> Procedure[int]:
    """Take tokens from the environment's bucket (its row locked); 0 if taken, else the
    milliseconds until enough have refilled."""
    env = {"environment": p.environment}
    yield begin()
    yield count("environment_slot_ensure", env)
    found = yield row("environment_rate_get", env)
    tokens, wait_ms = take_tokens(found[0] if found else None, found[1] if found else None, p)
    if wait_ms == 0:
        yield count("environment_rate_set", {**env, "tokens": tokens, "now": p.now})
    return wait_ms


# -- tasks and workers --------------------------------------------------------------------------


def task_register(p: TaskRegisterParams) -> Procedure[list[str]]:
    """Record a worker, its version, its queues and its tasks, all under the params'
    environment; then promote the environment's PENDING_VERSION runs of those tasks (their
    ids). One transaction, so a run is never left pending next to a worker that has its task
    by this registration (a trigger racing it is caught by the workers' periodic pass)."""
    w = p.worker
    yield begin()
    yield count(
        "worker_upsert",
        {
            "id": w.id,
            "environment": p.environment,
            "host": w.host,
            "pid": w.pid,
            "doorbell_port": w.doorbell_port,
            "started_at": w.started_at,
            "heartbeat_at": w.heartbeat_at,
            "version": w.version,
        },
    )
    task_ids = json.dumps(sorted(t.id for t in p.tasks))
    if w.version is not None:
        yield count(
            "version_upsert",
            {
                "environment": p.environment,
                "version": w.version,
                "task_ids": task_ids,
                "now": p.now,
            },
        )
    if p.queues:
        yield many("queue_upsert", _queue_rows(QueueUpsertParams(p.environment, p.queues, p.now)))
    if p.tasks:
        yield many(
            "task_upsert",
            [
                {
                    "environment": p.environment,
                    "id": t.id,
                    "file_path": t.file_path,
                    "queue": t.queue,
                    "max_attempts": t.max_attempts,
                    "retry": t.retry,
                    "max_duration_s": t.max_duration_s,
                    "machine": t.machine,
                    "description": t.description,
                    "payload_schema": t.payload_schema,
                    "worker_id": t.worker_id,
                    "updated_at": t.updated_at,
                    "ttl_ms": t.ttl_ms,
                }
                for t in p.tasks
            ],
        )
        promoted = yield rows(
            "run_promote_pending",
            {"environment": p.environment, "task_ids": task_ids, "now": p.now},
        )
        if promoted:
            yield notify(p.environment, p.now)
        return [r[0] for r in promoted]
    return []


def run_promote_pending(p: RunPromotePendingParams) -> Procedure[list[str]]:
    """PENDING_VERSION → QUEUED for the runs of ``p.task_ids`` (their ids); wakes workers.
    Peeks first: the periodic pass of an idle worker takes no write lock."""
    if not p.task_ids:
        return []
    values = {
        "environment": p.environment,
        "task_ids": json.dumps(sorted(p.task_ids)),
        "now": p.now,
    }
    if (yield row("run_pending_exists", values)) is None:
        return []
    yield begin()
    promoted = [r[0] for r in (yield rows("run_promote_pending", values))]
    if promoted:
        yield notify(p.environment, p.now)
    return promoted


def version_list(p: VersionListParams) -> Procedure[list[VersionRecord]]:
    """Every version the environment's workers registered, newest registration first."""
    found = yield rows("version_list", {"environment": p.environment, "since": p.since})
    return [VersionRecord(*r) for r in found]


def task_list(p: TaskListParams) -> Procedure[list[TaskRecord]]:
    """Every task any worker of the environment registered."""
    found = yield rows("task_list", {"environment": p.environment})
    return [TaskRecord(*r) for r in found]


def worker_list_live(p: WorkerListLiveParams) -> Procedure[list[WorkerRecord]]:
    """Workers that heartbeated at or after ``since`` and have not stopped."""
    found = yield rows("worker_list_live", {"environment": p.environment, "since": p.since})
    return [WorkerRecord(*r) for r in found]


def worker_stop(p: WorkerStopParams) -> Procedure[None]:
    """Mark a worker as stopped."""
    yield count(
        "worker_stop", {"environment": p.environment, "worker_id": p.worker_id, "now": p.now}
    )


def worker_share(p: WorkerShareParams) -> Procedure[tuple[bool, int, int]]:
    """Record whether the worker wants more runs (a short claim while runs it may start are
    ready), telling the environment's workers when that changed; return it, how many other
    live workers of its version there are, and how many of them want more."""
    key = {"environment": p.environment, "worker_id": p.worker_id}
    wanting = False
    if p.short:
        ready = yield row(
            "run_ready_exists",
            {
                "environment": p.environment,
                "task_ids": json.dumps(list(p.task_ids)),
                "now": p.now,
                "version": p.version,
                "live_since": p.live_since,
            },
        )
        wanting = ready is not None
    # Refreshed while it lasts (a want too old no longer counts); cleared once, when it ends.
    if wanting or p.wanting:
        yield count("worker_wanting_set", {**key, "wanting_at": p.now if wanting else None})
    if wanting != p.wanting:
        # Its peers recount their share now, not at their next check (up to 0.4 s away): a
        # worker joining a busy limit runs at once, and a worker the share cut back is not
        # left short while a peer, not knowing, claims the whole limit.
        yield wants_changed(p.environment, p.now)
    peers, others = yield row(
        "worker_others",
        {
            **key,
            "version": p.version,
            "live_since": p.live_since,
            "wanting_since": p.wanting_since,
        },
    )
    return wanting, int(peers), int(others)


def worker_heartbeat(p: WorkerHeartbeatParams) -> Procedure[int]:
    """Record the worker's heartbeat and extend the leases of the runs it holds."""
    values = {
        "environment": p.environment,
        "worker_id": p.worker_id,
        "now": p.now,
        "lease_expires_at": p.lease_expires_at,
        "run_ids": json.dumps(list(p.run_ids)),
    }
    yield begin()
    yield count("worker_heartbeat", values)
    extended: int = yield count("worker_heartbeat_runs", values)
    return extended
