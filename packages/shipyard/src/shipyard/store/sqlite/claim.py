"""The SQLite claim: the rules of ``store/claims.py`` applied over index probes.

Peeks without the write lock first (an idle poll must not serialise every writer), then,
under ``BEGIN IMMEDIATE``, walks the (queue, concurrency key) groups that have queued runs
with one index probe each (a skip scan), asks ``claims.py`` how many runs each may start,
fetches that many ready runs per group and leases the oldest priority-adjusted ones.
"""

from __future__ import annotations

import json

from shipyard.records import RunRecord
from shipyard.store.claims import GroupState, environment_capacity, group_capacity, pick
from shipyard.store.params import RunClaimParams
from shipyard.store.steps import Procedure, begin, many, row, rows, runs


def run_claim(p: RunClaimParams) -> Procedure[list[RunRecord]]:
    """Atomically take up to ``p.limit`` ready runs within every concurrency limit."""
    task_ids = json.dumps(list(p.task_ids))
    env = {"environment": p.environment}
    # The version lock (0006): runs locked to another live version are not ours.
    lock = {"version": p.version, "live_since": p.live_since}
    if p.peek:
        ready = yield row("run_ready_exists", {**env, **lock, "now": p.now, "task_ids": task_ids})
        if ready is None:
            return []
    yield begin()
    running = yield row("environment_running", env)
    free = min(
        p.limit,
        environment_capacity(running[0] if running else 0, p.environment_limit, p.burst_factor),
    )
    if free <= 0:
        return []
    candidates: list[tuple[int, str]] = []
    group = yield row("ready_group_first", env)
    while group is not None:
        key = {**env, "queue": group[0], "concurrency_key": group[1]}
        limit, override, paused, in_group = yield row("group_state", key)
        state = GroupState(group[0], group[1], limit, override, bool(paused), in_group)
        room = min(group_capacity(state, p.environment_limit), free)
        if p.share is not None:
            room = min(room, p.share.capacity(state, p.environment_limit))
        if room > 0:
            found = yield rows(
                "group_ready_runs",
                {**key, **lock, "now": p.now, "task_ids": task_ids, "limit": room},
            )
            candidates.extend((sort_key, run_id) for run_id, sort_key in found)
        group = yield row("ready_group_next", key)
    chosen = pick(candidates, free)
    if not chosen:
        return []
    claimed: list[RunRecord] = yield runs(
        "run_claim_ids",
        {
            **env,
            "ids": json.dumps(chosen),
            "worker_id": p.worker_id,
            "now": p.now,
            "lease_expires_at": p.lease_expires_at,
            "version": p.version,
        },
    )
    # A run resuming from a durable wait continues its attempt row.
    started = [r for r in claimed if r.resume_state != "RESUMED"]
    resumed = [r for r in claimed if r.resume_state == "RESUMED"]
    if started:
        yield many(
            "attempt_insert",
            [
                # The claim's time, or the run's last change if later (run_claim_ids).
                {
                    "run_id": r.id,
                    "number": r.attempt_number,
                    "worker_id": p.worker_id,
                    "now": r.updated_at,
                }
                for r in started
            ],
        )
    if resumed:
        yield many(
            "attempt_resume",
            [
                {"run_id": r.id, "number": r.attempt_number, "worker_id": p.worker_id}
                for r in resumed
            ],
        )
    claimed.sort(key=lambda r: r.sort_key)
    return claimed
