"""Every store operation written once, as a procedure both backends drive (``store/steps.py``).

A procedure yields steps and receives their results; it never touches a connection, so the
same code is run synchronously by SQLite and with awaits by PostgreSQL. Operations a backend
does its own faster way (PostgreSQL's one-statement claim and finish, its one-statement
trigger) override the method that runs them, not these.
"""

from __future__ import annotations

from shipyard.store.procedures.environment import (
    environment_rate_take,
    queue_list,
    queue_update,
    queue_upsert,
    run_promote_pending,
    task_list,
    task_register,
    version_list,
    worker_heartbeat,
    worker_list_live,
    worker_stop,
)
from shipyard.store.procedures.runs import (
    attempt_list,
    batch_get,
    batch_runs,
    idempotency_key_reset,
    insert_resolved,
    run_cancel,
    run_events_append,
    run_events_list,
    run_finish_many,
    run_get,
    run_insert,
    run_insert_many,
    run_list,
    run_metadata_update,
    run_ownership,
    run_reap_expired,
    run_release,
    run_reschedule,
    run_schedule_due,
    run_tags_add,
)
from shipyard.store.procedures.waitpoints import (
    waitpoint_block,
    waitpoint_complete,
    waitpoint_create,
    waitpoint_create_alone,
    waitpoint_get,
    waitpoint_list,
    waitpoint_recorded,
    waitpoint_resolve_due,
)

__all__ = [
    "attempt_list",
    "batch_get",
    "batch_runs",
    "environment_rate_take",
    "idempotency_key_reset",
    "insert_resolved",
    "queue_list",
    "queue_update",
    "queue_upsert",
    "run_cancel",
    "run_events_append",
    "run_events_list",
    "run_finish_many",
    "run_get",
    "run_insert",
    "run_insert_many",
    "run_list",
    "run_metadata_update",
    "run_ownership",
    "run_promote_pending",
    "run_reap_expired",
    "run_release",
    "run_reschedule",
    "run_schedule_due",
    "run_tags_add",
    "task_list",
    "task_register",
    "version_list",
    "waitpoint_block",
    "waitpoint_complete",
    "waitpoint_create",
    "waitpoint_create_alone",
    "waitpoint_get",
    "waitpoint_list",
    "waitpoint_recorded",
    "waitpoint_resolve_due",
    "worker_heartbeat",
    "worker_list_live",
    "worker_stop",
]
