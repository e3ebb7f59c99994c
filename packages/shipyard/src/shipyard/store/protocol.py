"""The storage seam: one narrow, typed protocol that every backend implements.

Methods are named noun first (``run_insert``, ``run_claim``, ``waitpoint_block``) so that
sorted they group by record, and each takes exactly one params dataclass (``store/params.py``,
re-exported here) so that adding a field never breaks a caller. Every operation is scoped by
the environment its params name, and a store never reads the wall clock: the caller passes
``now``.

The store does I/O only: the engine decides *what* should happen (which statuses release an
idempotency key, how long a lease lasts, whether an attempt retries, how many tags a run may
have) and passes that decision in; the store makes it happen atomically. Every status change
of a run appends a ``status`` event in the same transaction, made by the database itself
(triggers), whichever operation changed it.

Every backend runs the same conformance suite (``tests/conformance``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from shipyard.records import (
    AttemptRecord,
    BatchRecord,
    Page,
    QueueRecord,
    RunEventRecord,
    RunRecord,
    TaskRecord,
    VersionRecord,
    WaitpointPage,
    WaitpointRecord,
    WorkerRecord,
)
from shipyard.store.access import (
    AccessKeyFindParams,
    AccessKeyInsertParams,
    AccessKeyListParams,
    AccessKeyRecord,
    AccessKeyRevokeParams,
    RequestKeyAnswerParams,
    RequestKeyClaim,
    RequestKeyClaimParams,
    RequestKeyReleaseParams,
    SigningKeyParams,
    TokenUseParams,
)
from shipyard.store.feed import (
    FeedEventRecord,
    FeedHistoryParams,
    FeedPage,
    FeedReadParams,
    FeedSnapshot,
    FeedSnapshotParams,
    InputSendParams,
    InputSendResult,
    InputTakeParams,
    InputWaitParams,
    StreamAppendParams,
    StreamChunkRecord,
    StreamHead,
    StreamHeadsParams,
    StreamReadParams,
)
from shipyard.store.params import (
    AttemptListParams,
    BatchGetParams,
    BatchInsertParams,
    BatchListParams,
    BatchRunsParams,
    IdempotencyKeyResetParams,
    MigrateParams,
    PurgedRows,
    QueueDefinition,
    QueueListParams,
    QueueUpdateParams,
    QueueUpsertParams,
    RateTakeParams,
    ReadyNotifyParams,
    ReapedRun,
    RecordedCall,
    RunCancelParams,
    RunClaimParams,
    RunEventsAppendParams,
    RunEventsListParams,
    RunFinishManyParams,
    RunFinishParams,
    RunGetParams,
    RunInsertBulkParams,
    RunInsertManyParams,
    RunInsertParams,
    RunInsertResult,
    RunLeasedParams,
    RunListParams,
    RunMetadataParams,
    RunOwnership,
    RunOwnershipParams,
    RunPromotePendingParams,
    RunPurgeParams,
    RunReapParams,
    RunReleaseParams,
    RunRescheduleParams,
    RunScheduleParams,
    RunStatsParams,
    RunTagsAddParams,
    ScheduledRuns,
    TaskListParams,
    TaskRegisterParams,
    VersionListParams,
    WaitpointBlockManyParams,
    WaitpointBlockParams,
    WaitpointBlockResult,
    WaitpointCompleteParams,
    WaitpointCreateManyParams,
    WaitpointCreateParams,
    WaitpointGetParams,
    WaitpointListParams,
    WaitpointReads,
    WaitpointReadsParams,
    WaitpointRecordedParams,
    WaitpointResolveParams,
    WorkerHeartbeatParams,
    WorkerListLiveParams,
    WorkerShareParams,
    WorkerStopParams,
)
from shipyard.store.schedules import (
    ScheduleDeleteParams,
    ScheduleDueParams,
    ScheduleFireParams,
    ScheduleFireResult,
    ScheduleGetParams,
    ScheduleListParams,
    SchedulePage,
    ScheduleRecord,
    ScheduleSetActiveParams,
    ScheduleSyncParams,
    ScheduleSyncResult,
    ScheduleUpdateParams,
    ScheduleUpsertParams,
)


class ReadyListener(Protocol):
    """A worker's end of the wake-up channel."""

    port: int | None
    wants: asyncio.Event
    """Set when a worker's want of more runs changed (``worker_share``); its reader clears it."""

    def poke(self) -> None:
        """Wake the waiter from inside this process."""
        ...

    async def wait(self, timeout: float) -> bool:
        """Wait for a wake-up or ``timeout`` seconds; True if woken."""
        ...

    def follow(self) -> asyncio.Event:
        """A new event set on every wake-up from outside, without consuming the waiter's."""
        ...

    def close(self) -> None:
        """Stop listening."""
        ...


class FeedListener(Protocol):
    """A process's end of the change feed's wake-ups: woken when the feed may have grown.

    ``poll_interval`` is how often a reader should look anyway (wake-ups from other processes
    can be lost, or, on SQLite, do not exist).
    """

    poll_interval: float

    async def wait(self, timeout: float) -> bool:
        """Wait for a wake-up or ``timeout`` seconds; True if woken."""
        ...

    def close(self) -> None:
        """Stop listening."""
        ...


class Store(Protocol):
    """What the engine needs from a database. Implemented by SQLite and PostgreSQL."""

    url: str
    writers: int
    """How many of one worker's batch writes (a finish and its claim) are worth having in
    flight at once: 2 where each takes its own connection and they overlap (PostgreSQL), 1
    where every write waits for the one writer (SQLite)."""

    async def migrate(self, params: MigrateParams) -> list[str]:
        """Apply pending migrations; return the names applied. Safe to run concurrently."""
        ...

    async def close(self) -> None:
        """Release connections and threads. Safe to call twice."""
        ...

    async def run_insert(self, params: RunInsertParams) -> RunInsertResult:
        """Create a run, or return the live run holding the same idempotency key.

        With ``params.connection`` (PostgreSQL) the insert joins the caller's transaction. A
        new run wakes the environment's workers once the insert commits.
        """
        ...

    async def run_insert_many(self, params: RunInsertManyParams) -> list[RunInsertResult]:
        """Create many runs (and their batch) in one transaction, in order; wakes workers once."""
        ...

    async def run_insert_bulk(self, params: RunInsertBulkParams) -> int:
        """Create runs made from one template (and their batch) in one transaction, in order;
        wakes workers once. Returns how many were created (all, or it raises)."""
        ...

    async def run_get(self, params: RunGetParams) -> RunRecord | None:
        """One run by id, or None."""
        ...

    async def run_list(self, params: RunListParams) -> Page:
        """Runs newest first, filtered, one page at a time."""
        ...

    async def batch_list(self, params: BatchListParams) -> tuple[list[BatchRecord], str | None]:
        """Batches newest first (without their run ids), one page, and the next cursor."""
        ...

    async def run_stats(self, params: RunStatsParams) -> list[tuple[int, str, int]]:
        """``(bucket, status, runs)``: runs created since ``created_from`` by window, status."""
        ...

    async def run_claim(self, params: RunClaimParams) -> list[RunRecord]:
        """Atomically take up to ``limit`` ready runs, oldest priority-adjusted first."""
        ...

    async def run_finish_many(self, params: RunFinishManyParams) -> list[bool]:
        """Record the end of attempts; False where the fence rejected a stale attempt."""
        ...

    async def run_finish_and_claim(
        self, finish: RunFinishManyParams, claim: RunClaimParams
    ) -> tuple[list[bool], list[RunRecord]]:
        """:meth:`run_finish_many`, then :meth:`run_claim` with the slots it freed (a worker's
        finished batch and its next claim): one transaction (SQLite), or the finish's and
        then the claim's (PostgreSQL, so that a finish never waits for the environment's slot
        row). When the claim fails after the finish committed, it raises
        :class:`~shipyard.errors.ClaimAfterFinishError` with the finish's answer."""
        ...

    async def run_release(self, params: RunReleaseParams) -> bool:
        """Give a claimed run back to the queue without counting the attempt."""
        ...

    async def run_reap_expired(self, params: RunReapParams) -> list[ReapedRun]:
        """Take back runs whose worker stopped heartbeating."""
        ...

    async def run_cancel(self, params: RunCancelParams) -> list[str]:
        """Cancel a non-final run and its non-final descendants; return the ids canceled."""
        ...

    async def run_purge(self, params: RunPurgeParams) -> PurgedRows:
        """Retention: delete one batch of old finished runs and completed waitpoints."""
        ...

    async def statistics_refresh(self) -> list[str]:
        """Refresh the planner's statistics of the tables that outgrew them; their names."""
        ...

    async def run_leased(self, params: RunLeasedParams) -> list[RunRecord]:
        """The runs leased to a worker now: EXECUTING with it as the lease owner."""
        ...

    async def run_ownership(self, params: RunOwnershipParams) -> list[RunOwnership]:
        """Status, attempt and owner of the given runs (for a worker's fence check)."""
        ...

    async def run_metadata_update(self, params: RunMetadataParams) -> str:
        """Read-modify-write a run's metadata in one transaction; return the new JSON."""
        ...

    async def run_tags_add(self, params: RunTagsAddParams) -> list[str]:
        """Add tags to a run (deduplicated, capped, a ``tag`` event); return its tags."""
        ...

    async def run_events_append(self, params: RunEventsAppendParams) -> None:
        """Append logs, spans and other events in order."""
        ...

    async def run_events_list(self, params: RunEventsListParams) -> list[RunEventRecord]:
        """A run's events after ``after_id``, oldest first."""
        ...

    async def attempt_list(self, params: AttemptListParams) -> list[AttemptRecord]:
        """A run's attempts, in order."""
        ...

    async def batch_get(self, params: BatchGetParams) -> BatchRecord | None:
        """One batch by id, or None."""
        ...

    async def batch_runs(self, params: BatchRunsParams) -> list[RunRecord]:
        """A batch's runs in input order."""
        ...

    async def idempotency_key_reset(self, params: IdempotencyKeyResetParams) -> int:
        """Clear a key on every run of a task that holds it; return how many."""
        ...

    async def queue_upsert(self, params: QueueUpsertParams) -> None:
        """Register queues as code defines them (limits only; never un-pauses)."""
        ...

    async def queue_list(self, params: QueueListParams) -> list[QueueRecord]:
        """Every queue of the environment with its running and queued counts."""
        ...

    async def queue_update(self, params: QueueUpdateParams) -> QueueRecord | None:
        """Pause, resume or override a queue's limit; None if there is no such queue."""
        ...

    async def run_schedule_due(self, params: RunScheduleParams) -> ScheduledRuns:
        """DELAYED → QUEUED when due; a run whose TTL passed unstarted → EXPIRED."""
        ...

    async def run_reschedule(self, params: RunRescheduleParams) -> RunRecord | None:
        """Change a DELAYED run's time; None if the run is not DELAYED."""
        ...

    async def environment_rate_take(self, params: RateTakeParams) -> int:
        """Take tokens; 0 if taken, else the milliseconds until enough have refilled."""
        ...

    async def task_register(self, params: TaskRegisterParams) -> list[str]:
        """Record a worker, its version, its queues and the tasks it can execute; promote the
        environment's PENDING_VERSION runs of those tasks to QUEUED (their ids)."""
        ...

    async def run_promote_pending(self, params: RunPromotePendingParams) -> list[str]:
        """PENDING_VERSION → QUEUED for the runs of the given tasks; their ids."""
        ...

    async def version_list(self, params: VersionListParams) -> list[VersionRecord]:
        """Every version the environment's workers registered, with its live workers."""
        ...

    async def task_list(self, params: TaskListParams) -> list[TaskRecord]:
        """Every task any worker of the environment registered."""
        ...

    async def worker_list_live(self, params: WorkerListLiveParams) -> list[WorkerRecord]:
        """Workers that heartbeated at or after ``since`` and have not stopped."""
        ...

    async def worker_stop(self, params: WorkerStopParams) -> None:
        """Mark a worker as stopped."""
        ...

    async def worker_share(self, params: WorkerShareParams) -> tuple[bool, int, int]:
        """Record whether the worker wants more runs than its claims give it, waking the
        environment's workers (their listener's ``wants``) when that changed; return it, how
        many other live workers of its version there are and how many of them want more
        (``store/claims.py``)."""
        ...

    async def ready_listen(self) -> ReadyListener:
        """Start receiving "runs are ready" wake-ups for this process."""
        ...

    async def ready_notify(self, params: ReadyNotifyParams) -> None:
        """Wake the environment's workers: runs became ready to claim."""
        ...

    async def waitpoint_create(self, params: WaitpointCreateParams) -> tuple[WaitpointRecord, bool]:
        """Create a waitpoint, or return the live one holding its idempotency key (True)."""
        ...

    async def waitpoint_get(self, params: WaitpointGetParams) -> WaitpointRecord | None:
        """One waitpoint by id, or None."""
        ...

    async def waitpoint_list(self, params: WaitpointListParams) -> WaitpointPage:
        """Tokens (MANUAL waitpoints) newest first, filtered and paged in SQL, without output."""
        ...

    async def waitpoint_recorded(self, params: WaitpointRecordedParams) -> RecordedCall | None:
        """The durable call an attempt recorded at ``seq``, or None."""
        ...

    async def waitpoint_block(self, params: WaitpointBlockParams) -> WaitpointBlockResult:
        """Link the attempt's call ``seq`` to a waitpoint; suspend the run if it is pending."""
        ...

    async def waitpoint_reads(self, params: WaitpointReadsParams) -> WaitpointReads:
        """Waitpoints by id and recorded calls, many at once (one round trip)."""
        ...

    async def waitpoint_create_many(
        self, params: WaitpointCreateManyParams
    ) -> list[WaitpointRecord]:
        """New waitpoints (no idempotency keys) in one transaction, in order."""
        ...

    async def waitpoint_block_many(
        self, params: WaitpointBlockManyParams
    ) -> list[WaitpointBlockResult]:
        """:meth:`waitpoint_block` for each of ``params.blocks``, in one transaction."""
        ...

    async def waitpoint_block_and_claim(
        self, block: WaitpointBlockManyParams, claim: RunClaimParams
    ) -> tuple[list[WaitpointBlockResult], list[RunRecord]]:
        """:meth:`waitpoint_block_many`, then :meth:`run_claim` of up to ``claim.limit`` runs
        plus one per run the blocks suspended (the slots they gave back), in one transaction
        where the backend can: a worker's runs reaching durable waits and the runs that take
        their slots (a child just triggered) cost one commit."""
        ...

    async def waitpoint_resolve_due(self, params: WaitpointResolveParams) -> list[str]:
        """Complete due waitpoints; WAITING → QUEUED for runs no longer blocked (their ids)."""
        ...

    async def waitpoint_complete(self, params: WaitpointCompleteParams) -> WaitpointRecord | None:
        """Complete a token (first output wins) and re-queue the runs it released."""
        ...

    async def feed_listen(self) -> FeedListener:
        """Start receiving "the change feed may have grown" wake-ups for this process."""
        ...

    async def feed_head(self, environment: str) -> str:
        """The feed position of everything committed now (``store/feed.py``)."""
        ...

    async def feed_read(self, params: FeedReadParams) -> FeedPage:
        """Feed events after a position, oldest first, with their runs as of the same moment."""
        ...

    async def feed_snapshot(self, params: FeedSnapshotParams) -> FeedSnapshot:
        """The runs a subscription starts from, and the feed position they are current at."""
        ...

    async def feed_metadata_history(
        self, params: FeedHistoryParams
    ) -> dict[str, list[tuple[str, str | None]]]:
        """Runs' ``created`` and ``metadata`` events before an event of each (kind,
        attributes), to replay their metadata up to it."""
        ...

    def feed_covers(self, position: str, event: FeedEventRecord) -> bool:
        """Whether ``event`` had been read at ``position`` (no I/O)."""
        ...

    async def stream_append(self, params: StreamAppendParams) -> int:
        """Append chunks to a run's stream (dense indexes); the stream's next index."""
        ...

    async def stream_read(self, params: StreamReadParams) -> list[StreamChunkRecord]:
        """A stream's chunks from an index, in order."""
        ...

    async def stream_heads(self, params: StreamHeadsParams) -> dict[str, StreamHead]:
        """Statuses of runs and the next index of each of their streams (by run id)."""
        ...

    async def input_send(self, params: InputSendParams) -> InputSendResult:
        """Send data to a run's input stream (completes a waiting ``.wait()`` or is kept)."""
        ...

    async def input_take(self, params: InputTakeParams) -> str | None:
        """Take the oldest data kept for a run's input stream, or None."""
        ...

    async def input_wait(self, params: InputWaitParams) -> WaitpointRecord:
        """The token a ``.wait()`` of an input stream blocks on (completed if data was kept)."""
        ...

    # -- access ---------------------------------------------------------------------------

    async def access_key_insert(self, params: AccessKeyInsertParams) -> AccessKeyRecord:
        """Store a secret key (hashed); its environment gets a signing key if it has none."""
        ...

    async def access_key_list(self, params: AccessKeyListParams) -> list[AccessKeyRecord]:
        """Secret keys (without hashes) of one environment or all, oldest first."""
        ...

    async def access_key_revoke(self, params: AccessKeyRevokeParams) -> AccessKeyRecord | None:
        """Revoke a key by id; the key after, or None if there is none."""
        ...

    async def access_key_find(self, params: AccessKeyFindParams) -> AccessKeyRecord | None:
        """The live key with this hash, whatever its environment."""
        ...

    async def signing_key_get(self, params: SigningKeyParams) -> str | None:
        """An environment's signing key (``candidate`` becomes it if it has none)."""
        ...

    async def token_use(self, params: TokenUseParams) -> bool:
        """Spend a single-use token: True the first time."""
        ...

    async def request_key_claim(self, params: RequestKeyClaimParams) -> RequestKeyClaim:
        """Claim a request id, or what its first request answered."""
        ...

    async def request_key_answer(self, params: RequestKeyAnswerParams) -> None:
        """Record the answer of a claimed request id."""
        ...

    async def request_key_release(self, params: RequestKeyReleaseParams) -> None:
        """Forget an unanswered request id claim."""

    async def schedule_upsert(self, params: ScheduleUpsertParams) -> tuple[ScheduleRecord, bool]:
        """Create a schedule or update the one holding its key; (row, created)."""
        ...

    async def schedule_get(self, params: ScheduleGetParams) -> ScheduleRecord | None:
        """One schedule by id, or None."""
        ...

    async def schedule_list(self, params: ScheduleListParams) -> SchedulePage:
        """One page of the environment's schedules (oldest first) and the total."""
        ...

    async def schedule_update(self, params: ScheduleUpdateParams) -> ScheduleRecord | None:
        """Replace an IMPERATIVE schedule's definition; None if there is no such schedule."""
        ...

    async def schedule_set_active(self, params: ScheduleSetActiveParams) -> ScheduleRecord | None:
        """Activate or deactivate a schedule; None if there is no such schedule."""
        ...

    async def schedule_delete(self, params: ScheduleDeleteParams) -> bool:
        """Delete a schedule; False if there was none."""
        ...

    async def schedule_sync(self, params: ScheduleSyncParams) -> ScheduleSyncResult:
        """Make the environment's DECLARATIVE schedules exactly the given ones."""
        ...

    async def schedule_due(self, params: ScheduleDueParams) -> list[ScheduleRecord]:
        """Active schedules due at ``now``, soonest first."""
        ...

    async def schedule_next_at(self, environment: str) -> int | None:
        """The soonest ``next_run_at`` of the environment's active schedules, or None."""
        ...

    async def schedule_fire(self, params: ScheduleFireParams) -> ScheduleFireResult:
        """Fire one tick exactly once: compare-and-set the next tick and create its run."""
        ...

    async def schedule_fire_many(
        self, params: Sequence[ScheduleFireParams]
    ) -> list[ScheduleFireResult]:
        """Fire many ticks in one transaction (each once); results in order."""
        ...

    def worker_heartbeat(self, params: WorkerHeartbeatParams) -> int:
        """Blocking, callable from any thread: extend the worker's leases; return how many.

        Heartbeats come from a thread of their own so that a task that blocks the event loop
        cannot make its worker look dead.
        """
        ...


__all__ = [
    "AttemptListParams",
    "BatchGetParams",
    "BatchInsertParams",
    "BatchListParams",
    "BatchRunsParams",
    "FeedListener",
    "IdempotencyKeyResetParams",
    "MigrateParams",
    "PurgedRows",
    "QueueDefinition",
    "QueueListParams",
    "QueueUpdateParams",
    "QueueUpsertParams",
    "RateTakeParams",
    "ReadyListener",
    "ReadyNotifyParams",
    "ReapedRun",
    "RecordedCall",
    "RunCancelParams",
    "RunClaimParams",
    "RunEventsAppendParams",
    "RunEventsListParams",
    "RunFinishManyParams",
    "RunFinishParams",
    "RunGetParams",
    "RunInsertBulkParams",
    "RunInsertManyParams",
    "RunInsertParams",
    "RunInsertResult",
    "RunLeasedParams",
    "RunListParams",
    "RunMetadataParams",
    "RunOwnership",
    "RunOwnershipParams",
    "RunPromotePendingParams",
    "RunPurgeParams",
    "RunReapParams",
    "RunReleaseParams",
    "RunRescheduleParams",
    "RunScheduleParams",
    "RunStatsParams",
    "RunTagsAddParams",
    "ScheduledRuns",
    "Store",
    "TaskListParams",
    "TaskRegisterParams",
    "VersionListParams",
    "WaitpointBlockParams",
    "WaitpointBlockResult",
    "WaitpointCompleteParams",
    "WaitpointCreateParams",
    "WaitpointGetParams",
    "WaitpointListParams",
    "WaitpointRecordedParams",
    "WaitpointResolveParams",
    "WorkerHeartbeatParams",
    "WorkerListLiveParams",
    "WorkerStopParams",
]
