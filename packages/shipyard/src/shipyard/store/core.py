"""The store core: every method of the :class:`~shipyard.store.protocol.Store` protocol,
written once over the shared procedures (``store/procedures/``).

A backend subclasses :class:`StoreCore`, supplies :meth:`StoreCore._run` (how it drives a
procedure: SQLite on its store thread, PostgreSQL with awaits on a pooled connection) and
overrides only what it does differently: its claim, its finish, its wake-ups, its migrations,
its heartbeat connection, and its fast paths.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TypeVar

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
from shipyard.store import procedures
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
    covers,
)
from shipyard.store.params import (
    AttemptListParams,
    BatchGetParams,
    BatchListParams,
    BatchRunsParams,
    IdempotencyKeyResetParams,
    PurgedRows,
    QueueListParams,
    QueueUpdateParams,
    QueueUpsertParams,
    RateTakeParams,
    ReapedRun,
    RecordedCall,
    RunCancelParams,
    RunClaimParams,
    RunEventsAppendParams,
    RunEventsListParams,
    RunFinishManyParams,
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
    WorkerListLiveParams,
    WorkerShareParams,
    WorkerStopParams,
)
from shipyard.store.procedures import schedules as schedule_procedures
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
from shipyard.store.steps import Procedure

T = TypeVar("T")


class StoreCore(ABC):
    """The backend-independent half of a store. See the module docstring."""

    url: str

    @abstractmethod
    async def _run(self, procedure: Procedure[T]) -> T:
        """Drive ``procedure`` to its end on one connection and return its result."""

    # -- runs -----------------------------------------------------------------------------

    async def run_insert(self, params: RunInsertParams) -> RunInsertResult:
        """Create a run, or return the live run holding the same idempotency key."""
        return await self._run(procedures.run_insert(params))

    async def run_insert_many(self, params: RunInsertManyParams) -> list[RunInsertResult]:
        """Create many runs (and their batch) in one transaction, in order; wakes workers once."""
        if not params.runs and params.batch is None:
            return []
        return await self._run(procedures.run_insert_many(params))

    async def run_insert_bulk(self, params: RunInsertBulkParams) -> int:
        """Create runs made from one template (and their batch) in one transaction, in order;
        wakes workers once. Returns how many were created."""
        if not params.ids and params.batch is None:
            return 0
        return await self._run(procedures.run_insert_bulk(params))

    async def run_get(self, params: RunGetParams) -> RunRecord | None:
        """One run by id, or None."""
        return await self._run(procedures.run_get(params))

    async def run_list(self, params: RunListParams) -> Page:
        """Runs newest first, filtered, one page at a time."""
        return await self._run(procedures.run_list(params))

    async def batch_list(self, params: BatchListParams) -> tuple[list[BatchRecord], str | None]:
        """Batches newest first (without their run ids), one page, and the next cursor."""
        return await self._run(procedures.batch_list(params))

    async def run_stats(self, params: RunStatsParams) -> list[tuple[int, str, int]]:
        """``(bucket, status, runs)``: runs created since ``created_from`` by window, status."""
        return await self._run(procedures.run_stats(params))

    @abstractmethod
    async def run_finish_many(self, params: RunFinishManyParams) -> list[bool]:
        """Record the end of attempts; False where the fence rejected a stale attempt. A
        worker's hot path: each backend writes a batch its own way (SQLite:
        ``store/sqlite/finish.py``; PostgreSQL: one statement)."""

    @abstractmethod
    async def run_finish_and_claim(
        self, finish: RunFinishManyParams, claim: RunClaimParams
    ) -> tuple[list[bool], list[RunRecord]]:
        """Record the end of attempts, then claim with the slots they freed (see
        :meth:`~shipyard.store.protocol.Store.run_finish_and_claim`)."""

    @abstractmethod
    async def run_claim(self, params: RunClaimParams) -> list[RunRecord]:
        """Atomically take up to ``limit`` ready runs within every concurrency limit."""

    async def run_release(self, params: RunReleaseParams) -> bool:
        """Give a claimed run back to the queue without counting the attempt."""
        return await self._run(procedures.run_release(params))

    async def run_reap_expired(self, params: RunReapParams) -> list[ReapedRun]:
        """Take back runs whose worker stopped heartbeating."""
        return await self._run(procedures.run_reap_expired(params))

    async def run_cancel(self, params: RunCancelParams) -> list[str]:
        """Cancel a non-final run and its non-final descendants; return the ids canceled."""
        return await self._run(procedures.run_cancel(params))

    async def run_purge(self, params: RunPurgeParams) -> PurgedRows:
        """Retention: delete one batch of old finished runs and completed waitpoints (a short
        transaction each: a busy install's tables are never locked for long)."""
        return await self._run(procedures.run_purge(params))

    async def statistics_refresh(self) -> list[str]:
        """Refresh the planner's statistics of the tables that outgrew them; their names.
        Nothing here: SQLite plans a statement from its indexes alone while no ``ANALYZE``
        has run, and again whenever one has (PostgreSQL keeps plans: it overrides this)."""
        return []

    async def run_leased(self, params: RunLeasedParams) -> list[RunRecord]:
        """The runs leased to a worker now: EXECUTING with it as the lease owner."""
        return await self._run(procedures.run_leased(params))

    async def run_ownership(self, params: RunOwnershipParams) -> list[RunOwnership]:
        """Status, attempt and owner of the given runs (for a worker's fence check)."""
        if not params.run_ids:
            return []
        return await self._run(procedures.run_ownership(params))

    async def run_metadata_update(self, params: RunMetadataParams) -> str:
        """Read-modify-write a run's metadata in one transaction; return the new JSON."""
        return await self._run(procedures.run_metadata_update(params))

    async def run_tags_add(self, params: RunTagsAddParams) -> list[str]:
        """Add tags to a run (deduplicated, capped, a ``tag`` event); return its tags."""
        return await self._run(procedures.run_tags_add(params))

    async def run_events_append(self, params: RunEventsAppendParams) -> None:
        """Append logs, spans and other events in order."""
        if params.events:
            await self._run(procedures.run_events_append(params))

    async def run_events_list(self, params: RunEventsListParams) -> list[RunEventRecord]:
        """A run's events after ``after_id``, oldest first."""
        return await self._run(procedures.run_events_list(params))

    async def attempt_list(self, params: AttemptListParams) -> list[AttemptRecord]:
        """A run's attempts, in order."""
        return await self._run(procedures.attempt_list(params))

    async def run_schedule_due(self, params: RunScheduleParams) -> ScheduledRuns:
        """DELAYED → QUEUED when due; a run whose TTL passed unstarted → EXPIRED."""
        return await self._run(procedures.run_schedule_due(params))

    async def run_reschedule(self, params: RunRescheduleParams) -> RunRecord | None:
        """Change a DELAYED run's time; None if the run is not DELAYED."""
        return await self._run(procedures.run_reschedule(params))

    # -- batches, keys, queues, rate limits ---------------------------------------------------

    async def batch_get(self, params: BatchGetParams) -> BatchRecord | None:
        """One batch by id, or None."""
        return await self._run(procedures.batch_get(params))

    async def batch_runs(self, params: BatchRunsParams) -> list[RunRecord]:
        """A batch's runs in input order."""
        return await self._run(procedures.batch_runs(params))

    async def idempotency_key_reset(self, params: IdempotencyKeyResetParams) -> int:
        """Clear a key on every run of a task that holds it; return how many."""
        return await self._run(procedures.idempotency_key_reset(params))

    async def queue_upsert(self, params: QueueUpsertParams) -> None:
        """Register queues as code defines them (limits only; never un-pauses)."""
        if params.queues:
            await self._run(procedures.queue_upsert(params))

    async def queue_list(self, params: QueueListParams) -> list[QueueRecord]:
        """Every queue of the environment with its running and queued counts."""
        return await self._run(procedures.queue_list(params))

    async def queue_update(self, params: QueueUpdateParams) -> QueueRecord | None:
        """Pause, resume or override a queue's limit; None if there is no such queue."""
        return await self._run(procedures.queue_update(params))

    async def environment_rate_take(self, params: RateTakeParams) -> int:
        """Take tokens; 0 if taken, else the milliseconds until enough have refilled."""
        return await self._run(procedures.environment_rate_take(params))

    # -- tasks and workers --------------------------------------------------------------------

    async def task_register(self, params: TaskRegisterParams) -> list[str]:
        """Record a worker, its version, its queues and the tasks it can execute; promote the
        environment's PENDING_VERSION runs of those tasks to QUEUED (their ids)."""
        return await self._run(procedures.task_register(params))

    async def run_promote_pending(self, params: RunPromotePendingParams) -> list[str]:
        """PENDING_VERSION → QUEUED for the runs of the given tasks; their ids."""
        return await self._run(procedures.run_promote_pending(params))

    async def version_list(self, params: VersionListParams) -> list[VersionRecord]:
        """Every version the environment's workers registered, with its live workers."""
        return await self._run(procedures.version_list(params))

    async def task_list(self, params: TaskListParams) -> list[TaskRecord]:
        """Every task any worker of the environment registered."""
        return await self._run(procedures.task_list(params))

    async def worker_list_live(self, params: WorkerListLiveParams) -> list[WorkerRecord]:
        """Workers that heartbeated at or after ``since`` and have not stopped."""
        return await self._run(procedures.worker_list_live(params))

    async def worker_stop(self, params: WorkerStopParams) -> None:
        """Mark a worker as stopped."""
        await self._run(procedures.worker_stop(params))

    async def worker_share(self, params: WorkerShareParams) -> tuple[bool, int, int]:
        """Record whether the worker wants more runs; count the others, and those that do."""
        return await self._run(procedures.worker_share(params))

    # -- waitpoints ---------------------------------------------------------------------------

    async def waitpoint_create(self, params: WaitpointCreateParams) -> tuple[WaitpointRecord, bool]:
        """Create a waitpoint, or return the live one holding its idempotency key (True)."""
        return await self._run(procedures.waitpoint_create_alone(params))

    async def waitpoint_get(self, params: WaitpointGetParams) -> WaitpointRecord | None:
        """One waitpoint by id, or None."""
        return await self._run(procedures.waitpoint_get(params))

    async def waitpoint_list(self, params: WaitpointListParams) -> WaitpointPage:
        """Tokens (MANUAL waitpoints) newest first, filtered and paged in SQL, without output."""
        return await self._run(procedures.waitpoint_list(params))

    async def waitpoint_recorded(self, params: WaitpointRecordedParams) -> RecordedCall | None:
        """The durable call an attempt recorded at ``seq``, or None."""
        return await self._run(procedures.waitpoint_recorded(params))

    async def waitpoint_block(self, params: WaitpointBlockParams) -> WaitpointBlockResult:
        """Link the attempt's call ``seq`` to a waitpoint; suspend the run if it is pending."""
        return await self._run(procedures.waitpoint_block(params))

    async def waitpoint_reads(self, params: WaitpointReadsParams) -> WaitpointReads:
        """Waitpoints by id and recorded calls, many at once (one round trip)."""
        return await self._run(procedures.waitpoint_reads(params))

    async def waitpoint_create_many(
        self, params: WaitpointCreateManyParams
    ) -> list[WaitpointRecord]:
        """New waitpoints (no idempotency keys) in one transaction, in order."""
        return await self._run(procedures.waitpoint_create_many(params))

    async def waitpoint_block_many(
        self, params: WaitpointBlockManyParams
    ) -> list[WaitpointBlockResult]:
        """:meth:`waitpoint_block` for each of ``params.blocks``, in one transaction."""
        return await self._run(procedures.waitpoint_block_many(params))

    async def waitpoint_block_and_claim(
        self, block: WaitpointBlockManyParams, claim: RunClaimParams
    ) -> tuple[list[WaitpointBlockResult], list[RunRecord]]:
        """Block, then claim with the slots the suspended runs gave back. This default makes
        two transactions; a backend overrides it to make one."""
        results = await self.waitpoint_block_many(block)
        return results, await self.run_claim(procedures.with_freed_slots(claim, results))

    async def waitpoint_resolve_due(self, params: WaitpointResolveParams) -> list[str]:
        """Complete due waitpoints; WAITING → QUEUED for runs no longer blocked (their ids)."""
        return await self._run(procedures.waitpoint_resolve_due(params))

    async def waitpoint_complete(self, params: WaitpointCompleteParams) -> WaitpointRecord | None:
        """Complete a token (first output wins) and re-queue the runs it released."""
        return await self._run(procedures.waitpoint_complete(params))

    # -- realtime: the change feed, output streams, input streams ------------------------------

    async def feed_head(self, environment: str) -> str:
        """The feed position of everything committed now (``store/feed.py``)."""
        return await self._run(procedures.feed_head(environment))

    async def feed_read(self, params: FeedReadParams) -> FeedPage:
        """Feed events after a position, oldest first, with their runs as of the same moment."""
        return await self._run(procedures.feed_read(params))

    async def feed_snapshot(self, params: FeedSnapshotParams) -> FeedSnapshot:
        """The runs a subscription starts from, and the feed position they are current at."""
        return await self._run(procedures.feed_snapshot(params))

    async def feed_metadata_history(
        self, params: FeedHistoryParams
    ) -> dict[str, list[tuple[str, str | None]]]:
        """Runs' ``created`` and ``metadata`` events before an event of each (kind,
        attributes), to replay their metadata up to it."""
        return await self._run(procedures.feed_metadata_history(params))

    def feed_covers(self, position: str, event: FeedEventRecord) -> bool:
        """Whether ``event`` had been read at ``position`` (no I/O)."""
        return covers(position, event)

    async def stream_append(self, params: StreamAppendParams) -> int:
        """Append chunks to a run's stream (dense indexes); the stream's next index."""
        if not params.chunks:
            raise ValueError("stream_append needs at least one chunk")
        return await self._run(procedures.stream_append(params))

    async def stream_read(self, params: StreamReadParams) -> list[StreamChunkRecord]:
        """A stream's chunks from an index, in order."""
        return await self._run(procedures.stream_read(params))

    async def stream_heads(self, params: StreamHeadsParams) -> dict[str, StreamHead]:
        """Statuses of runs and the next index of each of their streams (by run id)."""
        if not params.run_ids:
            return {}
        return await self._run(procedures.stream_heads(params))

    async def input_send(self, params: InputSendParams) -> InputSendResult:
        """Send data to a run's input stream (completes a waiting ``.wait()`` or is kept)."""
        return await self._run(procedures.input_send(params))

    async def input_take(self, params: InputTakeParams) -> str | None:
        """Take the oldest data kept for a run's input stream, or None."""
        return await self._run(procedures.input_take(params))

    async def input_wait(self, params: InputWaitParams) -> WaitpointRecord:
        """The token a ``.wait()`` of an input stream blocks on (completed if data was kept)."""
        return await self._run(procedures.input_wait(params))

    # -- access ---------------------------------------------------------------------------

    async def access_key_insert(self, params: AccessKeyInsertParams) -> AccessKeyRecord:
        """Store a secret key (hashed); its environment gets a signing key if it has none."""
        return await self._run(procedures.access_key_insert(params))

    async def access_key_list(self, params: AccessKeyListParams) -> list[AccessKeyRecord]:
        """Secret keys (without hashes) of one environment or all, oldest first."""
        return await self._run(procedures.access_key_list(params))

    async def access_key_revoke(self, params: AccessKeyRevokeParams) -> AccessKeyRecord | None:
        """Revoke a key by id; the key after, or None if there is none."""
        return await self._run(procedures.access_key_revoke(params))

    async def access_key_find(self, params: AccessKeyFindParams) -> AccessKeyRecord | None:
        """The live key with this hash, whatever its environment."""
        return await self._run(procedures.access_key_find(params))

    async def signing_key_get(self, params: SigningKeyParams) -> str | None:
        """An environment's signing key (``candidate`` becomes it if it has none)."""
        return await self._run(procedures.signing_key_get(params))

    async def token_use(self, params: TokenUseParams) -> bool:
        """Spend a single-use token: True the first time."""
        return await self._run(procedures.token_use(params))

    async def request_key_claim(self, params: RequestKeyClaimParams) -> RequestKeyClaim:
        """Claim a request id, or what its first request answered."""
        return await self._run(procedures.request_key_claim(params))

    async def request_key_answer(self, params: RequestKeyAnswerParams) -> None:
        """Record the answer of a claimed request id."""
        return await self._run(procedures.request_key_answer(params))

    async def request_key_release(self, params: RequestKeyReleaseParams) -> None:
        """Forget an unanswered request id claim."""
        return await self._run(procedures.request_key_release(params))

    # -- schedules ----------------------------------------------------------------------------

    async def schedule_upsert(self, params: ScheduleUpsertParams) -> tuple[ScheduleRecord, bool]:
        """Create a schedule or update the one holding its key; (row, created)."""
        return await self._run(schedule_procedures.schedule_upsert(params))

    async def schedule_get(self, params: ScheduleGetParams) -> ScheduleRecord | None:
        """One schedule by id, or None."""
        return await self._run(schedule_procedures.schedule_get(params))

    async def schedule_list(self, params: ScheduleListParams) -> SchedulePage:
        """One page of the environment's schedules (oldest first) and the total."""
        return await self._run(schedule_procedures.schedule_list(params))

    async def schedule_update(self, params: ScheduleUpdateParams) -> ScheduleRecord | None:
        """Replace an IMPERATIVE schedule's definition; None if there is no such schedule."""
        return await self._run(schedule_procedures.schedule_update(params))

    async def schedule_set_active(self, params: ScheduleSetActiveParams) -> ScheduleRecord | None:
        """Activate or deactivate a schedule; None if there is no such schedule."""
        return await self._run(schedule_procedures.schedule_set_active(params))

    async def schedule_delete(self, params: ScheduleDeleteParams) -> bool:
        """Delete a schedule; False if there was none."""
        return await self._run(schedule_procedures.schedule_delete(params))

    async def schedule_sync(self, params: ScheduleSyncParams) -> ScheduleSyncResult:
        """Make the environment's DECLARATIVE schedules exactly the given ones."""
        return await self._run(schedule_procedures.schedule_sync(params))

    async def schedule_due(self, params: ScheduleDueParams) -> list[ScheduleRecord]:
        """Active schedules due at ``now``, soonest first."""
        return await self._run(schedule_procedures.schedule_due(params))

    async def schedule_next_at(self, environment: str) -> int | None:
        """The soonest ``next_run_at`` of the environment's active schedules, or None."""
        return await self._run(schedule_procedures.schedule_next_at(environment))

    async def schedule_fire(self, params: ScheduleFireParams) -> ScheduleFireResult:
        """Fire one tick exactly once: compare-and-set the next tick and create its run."""
        return await self._run(schedule_procedures.schedule_fire(params))

    async def schedule_fire_many(
        self, params: Sequence[ScheduleFireParams]
    ) -> list[ScheduleFireResult]:
        """Fire many ticks in one transaction (each once); results in order."""
        return await self._run(schedule_procedures.schedule_fire_many(params))
