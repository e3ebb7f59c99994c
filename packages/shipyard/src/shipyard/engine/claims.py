"""The consumer side of a run's life: register a worker (and its version), claim runs,
finish attempts, release, reap lost leases, promote delayed runs and runs waiting for a
version, resolve waitpoints, heartbeat.

A worker calls these; every status change they make is checked against the state machine
first (:mod:`shipyard.engine.transitions`), and the store makes each one atomically, fenced by
attempt number and lease owner.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from shipyard.durations import parse_duration_ms
from shipyard.engine.definitions import TaskDefinition
from shipyard.engine.queues import QueueOps
from shipyard.engine.retries import retries_disabled, retry_options
from shipyard.errors import ClaimAfterFinishError
from shipyard.jsonutil import dumps
from shipyard.records import NewEvent, RunRecord, TaskRecord, WorkerRecord
from shipyard.statuses import RunStatus
from shipyard.store.claims import ClaimShare
from shipyard.store.params import (
    PurgedRows,
    QueueDefinition,
    ReadyNotifyParams,
    ReapedRun,
    RunClaimParams,
    RunFinishManyParams,
    RunFinishMetadata,
    RunFinishParams,
    RunLeasedParams,
    RunOwnership,
    RunOwnershipParams,
    RunPromotePendingParams,
    RunPurgeParams,
    RunReapParams,
    RunReleaseParams,
    RunScheduleParams,
    ScheduledRuns,
    TaskRegisterParams,
    WaitpointBlockManyParams,
    WaitpointBlockParams,
    WaitpointBlockResult,
    WaitpointResolveParams,
    WorkerHeartbeatParams,
    WorkerShareParams,
    WorkerStopParams,
)

__all__ = [
    "AttemptResult",
    "ClaimOps",
    "ClaimShare",
    "ReapedRun",
    "RunOwnership",
    "ScheduledRuns",
    "WaitpointBlockParams",
    "WaitpointBlockResult",
    "WakeListener",
    "WorkerRegistration",
    "awaitable",
]

# A worker's want of more runs (WorkerShareParams) counts this long after it last said so: a
# wanting worker says it again every share tick; one that died stops being counted.
WANT_WINDOW_MS = 1_000

_WORKER_LOST = {
    "name": "TaskRunHeartbeatTimeout",
    "message": "The worker executing this run stopped heartbeating (crashed or killed).",
    "stack": "",
    "code": "TASK_RUN_HEARTBEAT_TIMEOUT",
}
_TTL_EXPIRED = {
    "name": "TaskRunExpired",
    "message": "The run's TTL passed before any worker started it.",
    "stack": "",
    "code": "TTL_EXPIRED",
}
_WAITPOINT_TIMEOUT = {
    "name": "WaitpointTimeoutError",
    "message": "The wait token timed out before it was completed.",
    "stack": "",
    "code": "WAITPOINT_TIMEOUT",
}
_RELEASABLE = frozenset({RunStatus.QUEUED, RunStatus.DELAYED, RunStatus.PENDING_VERSION})


class WakeListener(Protocol):
    """A worker's end of the "runs are ready" channel (doorbell or LISTEN)."""

    port: int | None
    wants: asyncio.Event
    """Set when a worker's want of more runs changed (``worker/share.py``); its reader clears
    it."""

    def poke(self) -> None:
        """Wake the waiter from inside this process."""
        ...

    async def wait(self, timeout: float) -> bool:
        """Wait for a wake-up or ``timeout`` seconds; True if woken."""
        ...

    def follow(self) -> asyncio.Event:
        """A new event set on every wake-up too, without consuming the waiter's."""
        ...

    def close(self) -> None:
        """Stop listening."""
        ...


@dataclass(slots=True)
class WorkerRegistration:
    """What registering a worker did: the tasks it registered, and the runs that were waiting
    for a worker with them (PENDING_VERSION) and are now QUEUED."""

    task_ids: list[str]
    promoted: list[str]


@dataclass(slots=True)
class AttemptResult:
    """How an attempt ended, to be written: the run's next ``status`` (a final one, or QUEUED to
    retry at ``retry_at``), what the attempt row records, and the events that travel with it."""

    run_id: str
    attempt_number: int
    status: str
    attempt_status: str
    output: str | None = None
    error: str | None = None
    retry_at: int | None = None
    events: list[NewEvent] = field(default_factory=list)
    # A parent may be waiting for this run: its waitpoint resolves as soon as the run ends.
    parent_run_id: str | None = None
    # Whether any waitpoint may target the run (:func:`awaitable`).
    awaitable: bool = True
    # The attempt's last metadata operations: written with the finish, not on their own.
    metadata: RunFinishMetadata | None = None


def awaitable(run: RunRecord) -> bool:
    """Whether a waitpoint may target ``run``, so that its end must settle waitpoints and wake
    parents: a run and a batch are waited for only by the run that triggered them
    (``trigger_and_wait``, ``batch_trigger_and_wait``: the runs have a parent), or by one whose
    trigger found them again by idempotency or debounce key."""
    return bool(run.parent_run_id or run.idempotency_key or run.debounce_key)


class ClaimOps(QueueOps):
    """What workers call."""

    @property
    def writers(self) -> int:
        """How many of a worker's batch writes to have in flight at once (``Store.writers``)."""
        return self.store.writers

    def task_record(self, task: TaskDefinition, worker_id: str, now: int) -> TaskRecord:
        """How a worker registers ``task``: its queue, effective retry options, schema, TTL."""
        options = retry_options(self.settings, task)
        return TaskRecord(
            environment=self.environment,
            id=task.id,
            file_path=task.file_path,
            queue=task.queue_name,
            max_attempts=1 if retries_disabled(self.settings) else options.max_attempts,
            retry=dumps(
                {
                    "max_attempts": options.max_attempts,
                    "factor": options.factor,
                    "min_timeout_ms": options.min_timeout_ms,
                    "max_timeout_ms": options.max_timeout_ms,
                    "randomize": options.randomize,
                }
            ),
            max_duration_s=task.max_duration,
            machine=task.machine,
            description=task.description,
            payload_schema=dumps(task.schema.model_json_schema()) if task.schema else None,
            worker_id=worker_id,
            updated_at=now,
            ttl_ms=parse_duration_ms(task.ttl) if task.ttl is not None else None,
        )

    async def register_worker(
        self, worker_id: str, *, doorbell_port: int | None, version: str | None = None
    ) -> WorkerRegistration:
        """Record the worker, its version, its tasks and their queues (never un-pausing one).

        The environment's PENDING_VERSION runs of these tasks become QUEUED in the same
        transaction (``promoted``), and workers are woken for them.
        """
        self.transitions.check([RunStatus.PENDING_VERSION], RunStatus.QUEUED, "promote")
        await self.start()
        now = self.now()
        definitions = self.definitions.tasks()
        promoted = await self.store.task_register(
            TaskRegisterParams(
                environment=self.environment,
                now=now,
                worker=WorkerRecord(
                    id=worker_id,
                    environment=self.environment,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    doorbell_port=doorbell_port,
                    started_at=now,
                    heartbeat_at=now,
                    stopped_at=None,
                    version=version,
                ),
                tasks=[self.task_record(t, worker_id, now) for t in definitions],
                queues=[
                    QueueDefinition(name=name, concurrency_limit=limit)
                    for name, limit in sorted(self.definitions.queue_limits().items())
                ],
            )
        )
        task_ids = [t.id for t in definitions]
        # Triggers from this process know at once that these tasks have a worker.
        self._local_workers[worker_id] = frozenset(task_ids)
        return WorkerRegistration(task_ids=task_ids, promoted=promoted)

    async def promote_pending(self, task_ids: Sequence[str]) -> list[str]:
        """PENDING_VERSION → QUEUED for the runs of ``task_ids`` (a worker that has them calls
        this periodically: a run triggered while its registration was in flight, or by a
        process that had not seen it yet, waits at most one period)."""
        self.transitions.check([RunStatus.PENDING_VERSION], RunStatus.QUEUED, "promote")
        return await self.store.run_promote_pending(
            RunPromotePendingParams(
                environment=self.environment, task_ids=list(task_ids), now=self.now()
            )
        )

    async def listen_ready(self) -> WakeListener:
        """Start receiving "runs are ready" wake-ups for this process."""
        return await self.store.ready_listen()

    async def notify_ready(self) -> None:
        """Wake the environment's workers: runs became ready to claim."""
        await self.store.ready_notify(
            ReadyNotifyParams(environment=self.environment, now=self.now())
        )

    async def claim_runs(
        self,
        worker_id: str,
        task_ids: Sequence[str],
        limit: int,
        lease_ms: int,
        version: str | None = None,
        *,
        peek: bool = True,
        share: ClaimShare | None = None,
    ) -> list[RunRecord]:
        """Take up to ``limit`` ready runs within every concurrency limit, leased to the worker.

        The runs lock to ``version``; a run locked to another version is left to that
        version's workers while one is live. ``peek=False`` skips the lock-free look for
        ready runs (the caller was just woken because runs are ready). ``share``: the
        worker's part of each group's limit while other workers want runs too.
        """
        self.transitions.check([RunStatus.QUEUED], RunStatus.EXECUTING, "claim")
        params = self._claim_params(
            worker_id, task_ids, limit, lease_ms, version, self.now(), share
        )
        params.peek = peek
        return await self.store.run_claim(params)

    def _claim_params(
        self,
        worker_id: str,
        task_ids: Sequence[str],
        limit: int,
        lease_ms: int,
        version: str | None,
        now: int,
        share: ClaimShare | None = None,
    ) -> RunClaimParams:
        return RunClaimParams(
            environment=self.environment,
            worker_id=worker_id,
            task_ids=task_ids,
            limit=limit,
            now=now,
            lease_expires_at=now + lease_ms,
            environment_limit=self.settings.environment_concurrency_limit,
            burst_factor=self.settings.burst_factor,
            version=version,
            live_since=now - self.live_window_ms,
            share=share,
        )

    async def worker_share(
        self,
        worker_id: str,
        task_ids: Sequence[str],
        version: str | None,
        *,
        short: bool,
        wanting: bool,
    ) -> tuple[bool, int, int]:
        """Record whether the worker wants more runs than its claims give it (``short``: one
        came back with fewer runs than free slots; it wants more if runs it may start are
        ready), and count the other live workers of its version that want more: a worker
        claims ``1 / (1 + others)`` of each group's limit (``store/claims.py``).
        ``wanting``: the worker's state as last recorded. Returns ``(wanting, peers, others)``:
        the other live workers of its version, and those of them that want more."""
        now = self.now()
        return await self.store.worker_share(
            WorkerShareParams(
                environment=self.environment,
                worker_id=worker_id,
                task_ids=task_ids,
                version=version,
                short=short,
                wanting=wanting,
                now=now,
                live_since=now - self.live_window_ms,
                wanting_since=now - WANT_WINDOW_MS,
            )
        )

    async def finish_attempts(self, worker_id: str, results: Sequence[AttemptResult]) -> list[bool]:
        """Write how attempts ended (one transaction); False where the fence rejected one.

        Finished runs wake their in-process waiters; parents waiting for them are woken by the
        same transaction; a retry wakes the environment's workers (:meth:`settle_finished`).
        """
        params = self._finish_params(worker_id, results, self.now())
        accepted = await self.store.run_finish_many(params)
        self._wake_finished(results, accepted)
        return accepted

    async def finish_and_claim(
        self,
        worker_id: str,
        results: Sequence[AttemptResult],
        task_ids: Sequence[str],
        limit: int,
        lease_ms: int,
        version: str | None = None,
        *,
        share: ClaimShare | None = None,
    ) -> tuple[list[bool], list[RunRecord]]:
        """:meth:`finish_attempts`, then :meth:`claim_runs` of up to ``limit`` runs with the
        slots the results freed: one transaction where the store can (PostgreSQL: one round
        trip), so a freed slot starts its next run without waiting for another claim."""
        self.transitions.check([RunStatus.QUEUED], RunStatus.EXECUTING, "claim")
        now = self.now()
        try:
            accepted, claimed = await self.store.run_finish_and_claim(
                self._finish_params(worker_id, results, now),
                self._claim_params(worker_id, task_ids, limit, lease_ms, version, now, share),
            )
        except ClaimAfterFinishError as exc:
            self._wake_finished(results, exc.accepted)  # the results are written
            raise
        self._wake_finished(results, accepted)
        return accepted, claimed

    def _finish_params(
        self, worker_id: str, results: Sequence[AttemptResult], now: int
    ) -> RunFinishManyParams:
        for result in results:
            self.transitions.check([RunStatus.EXECUTING], result.status, "finish", [result.run_id])
        return RunFinishManyParams(
            environment=self.environment,
            finishes=[
                RunFinishParams(
                    run_id=r.run_id,
                    attempt_number=r.attempt_number,
                    worker_id=worker_id,
                    status=r.status,
                    attempt_status=r.attempt_status,
                    now=now,
                    output=r.output,
                    error=r.error,
                    retry_at=r.retry_at,
                    events=r.events,
                    metadata=r.metadata,
                    awaitable=r.awaitable,
                )
                for r in results
            ],
        )

    def _wake_finished(self, results: Sequence[AttemptResult], accepted: Sequence[bool]) -> None:
        """Wake the in-process waiters of the runs that ended."""
        finished = [
            r.run_id
            for r, ok in zip(results, accepted, strict=True)
            if ok and r.status != RunStatus.QUEUED
        ]
        if finished:
            self.run_finished(finished)

    async def settle_finished(
        self, results: Sequence[AttemptResult], accepted: Sequence[bool]
    ) -> None:
        """After :meth:`finish_attempts`: wake workers for retries. Separate, so that a failure
        here (the results are already written) cannot make a caller write them again.

        The waitpoints of parents waiting for the finished runs need nothing here: the finish
        settled them and woke the parents in its own transaction. (A resolver peek after every
        child's finish was kept when that moved into the finish: a round trip and ~5 % of a
        trigger_and_wait's client CPU, for what the resolver's own tick catches anyway.)"""
        done = [r for r, ok in zip(results, accepted, strict=True) if ok]
        if any(r.status == RunStatus.QUEUED for r in done):
            await self.notify_ready()

    async def suspend_and_claim(
        self,
        worker_id: str,
        blocks: Sequence[WaitpointBlockParams],
        task_ids: Sequence[str],
        limit: int,
        lease_ms: int,
        version: str | None = None,
        *,
        share: ClaimShare | None = None,
    ) -> tuple[list[WaitpointBlockResult], list[RunRecord]]:
        """Block a worker's durable calls (:meth:`suspend`'s batch) and claim, in the same
        transaction, up to ``limit`` runs plus one per run suspended (the slots they gave
        back): the child a parent just triggered and waits for starts without a claim of its
        own; the calls made while a batch is written go in the next one (the worker's
        coalescer): alone, each suspend waited for the previous one's commit on the
        environment's slot row. Raises if the batch fails (the caller then blocks each
        alone: :meth:`suspend_each`)."""
        self.transitions.check([RunStatus.QUEUED], RunStatus.EXECUTING, "claim")
        return await self.store.waitpoint_block_and_claim(
            WaitpointBlockManyParams(environment=self.environment, blocks=blocks),
            self._claim_params(worker_id, task_ids, limit, lease_ms, version, self.now(), share),
        )

    async def suspend_many(
        self, blocks: Sequence[WaitpointBlockParams]
    ) -> list[WaitpointBlockResult | Exception]:
        """Block a worker's durable calls in one transaction, without a claim; if it fails,
        each alone (:meth:`suspend_each`)."""
        try:
            found = await self.store.waitpoint_block_many(
                WaitpointBlockManyParams(environment=self.environment, blocks=blocks)
            )
            return list(found)
        except Exception:
            if len(blocks) == 1:
                raise
        return await self.suspend_each(blocks)

    async def suspend_each(
        self, blocks: Sequence[WaitpointBlockParams]
    ) -> list[WaitpointBlockResult | Exception]:
        """Block each call alone: after a batch failed, one bad call (an unknown waitpoint)
        fails only its own attempt."""
        results: list[WaitpointBlockResult | Exception] = []
        for block in blocks:
            try:
                results.append(await self.store.waitpoint_block(block))
            except Exception as exc:
                results.append(exc)
        return results

    async def release_run(self, worker_id: str, run_id: str, attempt_number: int) -> bool:
        """Give a claimed run back to the queue without counting its attempt (shutdown)."""
        self.transitions.check([RunStatus.EXECUTING], RunStatus.QUEUED, "release", [run_id])
        return await self.store.run_release(
            RunReleaseParams(
                environment=self.environment,
                run_id=run_id,
                attempt_number=attempt_number,
                worker_id=worker_id,
                now=self.now(),
            )
        )

    async def reap_expired(self) -> list[ReapedRun]:
        """Take back runs whose worker stopped heartbeating (retry, or CRASHED when spent)."""
        for target in (RunStatus.QUEUED, RunStatus.CRASHED):
            self.transitions.check([RunStatus.EXECUTING], target, "reap")
        reaped = await self.store.run_reap_expired(
            RunReapParams(
                environment=self.environment,
                now=self.now(),
                crash_error=dumps(_WORKER_LOST),
            )
        )
        if reaped:
            self.run_finished([r.run_id for r in reaped if r.status != RunStatus.QUEUED])
            await self.notify_ready()
        return reaped

    async def promote_due(self) -> ScheduledRuns:
        """DELAYED → QUEUED when due; runs whose TTL passed before they started → EXPIRED."""
        self.transitions.check([RunStatus.DELAYED], RunStatus.QUEUED, "promote")
        self.transitions.check(_RELEASABLE, RunStatus.EXPIRED, "expire")
        done = await self.store.run_schedule_due(
            RunScheduleParams(
                environment=self.environment,
                now=self.now(),
                expired_error=dumps(_TTL_EXPIRED),
            )
        )
        if done.expired:
            self.run_finished(done.expired)
        return done

    async def resolve_waitpoints(self, *, peek: bool = True) -> list[str]:
        """Complete due waitpoints; runs no longer blocked go WAITING → QUEUED (their ids).
        ``peek=False``: the caller knows something is due (skips the lock-free look)."""
        self.transitions.check([RunStatus.WAITING], RunStatus.QUEUED, "resume")
        return await self.store.waitpoint_resolve_due(
            WaitpointResolveParams(
                environment=self.environment,
                now=self.now(),
                timeout_error=dumps(_WAITPOINT_TIMEOUT),
                peek=peek,
            )
        )

    async def purge_finished(self, limit: int = 500) -> PurgedRows:
        """Retention: delete one batch (``limit``) of runs finished longer ago than
        ``run_retention``, with their attempts, events and streams, and of completed
        waitpoints as old; nothing when retention is off (0)."""
        retention = self.settings.run_retention_ms()
        if retention is None:
            return PurgedRows(runs=0, waitpoints=0)
        return await self.store.run_purge(
            RunPurgeParams(environment=self.environment, before=self.now() - retention, limit=limit)
        )

    async def refresh_statistics(self) -> list[str]:
        """Refresh the database's planner statistics of the tables that outgrew them (on
        PostgreSQL; see store/postgres/statistics.py): the tables analyzed."""
        return await self.store.statistics_refresh()

    async def leased_runs(self, worker_id: str) -> list[RunRecord]:
        """The runs leased to ``worker_id`` now (EXECUTING, it the lease owner)."""
        return await self.store.run_leased(
            RunLeasedParams(environment=self.environment, worker_id=worker_id)
        )

    async def run_ownership(self, run_ids: Sequence[str]) -> list[RunOwnership]:
        """Status, attempt and lease owner of runs a worker holds (its fence check)."""
        return await self.store.run_ownership(
            RunOwnershipParams(environment=self.environment, run_ids=list(run_ids))
        )

    def heartbeat(
        self, worker_id: str, run_ids: Sequence[str], lease_ms: int, *, now: int | None = None
    ) -> int:
        """Blocking, from the heartbeat thread: extend the leases of the runs the worker holds
        (as of ``now``, default the clock's)."""
        now = self.now() if now is None else max(now, self.now())
        return self.store.worker_heartbeat(
            WorkerHeartbeatParams(
                environment=self.environment,
                worker_id=worker_id,
                now=now,
                lease_expires_at=now + lease_ms,
                run_ids=run_ids,
            )
        )

    async def stop_worker(self, worker_id: str) -> None:
        """Mark the worker as stopped."""
        self._local_workers.pop(worker_id, None)
        await self.store.worker_stop(
            WorkerStopParams(environment=self.environment, worker_id=worker_id, now=self.now())
        )
