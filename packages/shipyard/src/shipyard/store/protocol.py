"""The storage seam: one narrow, typed protocol that every backend implements.

Methods are named noun first (``run_insert``, ``run_claim``, ``run_complete``) so that sorted
they group by record, and each takes one params dataclass so that adding a field never breaks
a caller. The store does I/O only: the engine decides *what* should happen (which statuses
release an idempotency key, how long a lease lasts, whether an attempt retries) and passes
that decision in; the store makes it happen atomically.

Every backend runs the same conformance suite (``tests/conformance``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shipyard.records import (
    AttemptRecord,
    BatchRecord,
    NewEvent,
    Page,
    QueueRecord,
    RunEventRecord,
    RunRecord,
    TaskRecord,
    WaitpointRecord,
    WorkerRecord,
)


@dataclass(slots=True)
class RunInsertParams:
    """A run to create. ``status`` is QUEUED or DELAYED; times are epoch ms."""

    id: str
    environment: str
    task_id: str
    status: str
    payload: str | None
    queue: str
    queued_at: int
    created_at: int
    metadata: str = "{}"
    tags: Sequence[str] = ()
    concurrency_key: str | None = None
    priority_ms: int = 0
    available_at: int | None = None
    delay_until: int | None = None
    ttl_ms: int | None = None
    max_attempts: int | None = None
    idempotency_key: str | None = None
    idempotency_key_expires_at: int | None = None
    parent_run_id: str | None = None
    root_run_id: str | None = None
    depth: int = 0
    batch_id: str | None = None
    batch_index: int | None = None
    machine: str | None = None
    max_duration_s: int | None = None
    trigger_function: str = "trigger"
    is_test: bool = False
    ttl_expires_at: int | None = None
    # Debounce: a DELAYED run holding the same key is updated instead of creating a run.
    debounce_key: str | None = None
    debounce_delay_until: int | None = None
    debounce_trailing: bool = False
    debounce_max_delay_ms: int | None = None
    # Statuses of an existing run with the same idempotency key that free the key for a new
    # run (FAILED, CRASHED, ...). Any other status returns the existing run as cached.
    idempotency_release_statuses: frozenset[str] = frozenset()


@dataclass(slots=True)
class RunInsertResult:
    """The run the trigger resolved to, and whether it already existed."""

    run: RunRecord
    cached: bool


@dataclass(slots=True)
class BatchInsertParams:
    """A batch row written in the same transaction as its runs."""

    id: str
    environment: str
    idempotency_key: str | None
    created_at: int


@dataclass(slots=True)
class RunClaimParams:
    """Claim up to ``limit`` ready runs of ``task_ids`` for ``worker_id``.

    Concurrency: a (queue, concurrency key) group runs at most its queue's limit (capped at
    ``environment_limit``), and the environment at most ``environment_limit × burst_factor``.
    """

    environment: str
    worker_id: str
    task_ids: Sequence[str]
    limit: int
    now: int
    lease_expires_at: int
    environment_limit: int = 100
    burst_factor: float = 2.0


@dataclass(slots=True)
class RunFinishParams:
    """The end of one attempt, fenced by ``attempt_number`` and ``worker_id``.

    ``status`` is the run's next status: a final one (COMPLETED, FAILED, TIMED_OUT, CANCELED,
    CRASHED) or QUEUED to retry at ``retry_at``. ``attempt_status`` is what the attempt row
    records (COMPLETED, FAILED, CANCELED, CRASHED).
    """

    run_id: str
    attempt_number: int
    worker_id: str
    status: str
    attempt_status: str
    now: int
    output: str | None = None
    error: str | None = None
    retry_at: int | None = None
    events: Sequence[NewEvent] = ()


@dataclass(slots=True)
class RunReleaseParams:
    """Give a claimed run back without counting its attempt (graceful shutdown)."""

    run_id: str
    attempt_number: int
    worker_id: str
    now: int


@dataclass(slots=True)
class RunReapParams:
    """Re-queue (or crash) runs whose lease expired before ``now``."""

    environment: str
    now: int
    crash_error: str


@dataclass(slots=True)
class ReapedRun:
    """A run the reaper took back from a lost worker, and where it went."""

    run_id: str
    attempt_number: int
    status: str


@dataclass(slots=True)
class QueueUpsertParams:
    """A queue as code defines it; registering never changes ``paused`` or an override."""

    environment: str
    name: str
    concurrency_limit: int | None
    now: int


@dataclass(slots=True)
class QueueUpdateParams:
    """Pause/resume a queue or set/clear its limit override (None leaves a field as is)."""

    environment: str
    name: str
    now: int
    paused: bool | None = None
    limit_override: int | None = None
    clear_override: bool = False


@dataclass(slots=True)
class RunScheduleParams:
    """Promote due DELAYED runs and expire runs whose TTL passed before their first start."""

    environment: str
    now: int
    expired_error: str


@dataclass(slots=True)
class ScheduledRuns:
    """What :meth:`Store.run_schedule_due` changed."""

    promoted: list[str]
    expired: list[str]


@dataclass(slots=True)
class RunRescheduleParams:
    """Move a DELAYED run to ``delay_until`` (its TTL countdown moves with it)."""

    environment: str
    run_id: str
    delay_until: int
    now: int


@dataclass(slots=True)
class RateTakeParams:
    """Take ``count`` tokens from the environment's trigger bucket."""

    environment: str
    count: int
    now: int
    bucket_size: int
    refill_tokens: int
    refill_interval_ms: int


@dataclass(slots=True)
class RunListParams:
    """Filters for ``run_list``; ``cursor`` is the last id of the previous page."""

    environment: str
    limit: int = 50
    cursor: str | None = None
    statuses: Sequence[str] = ()
    task_ids: Sequence[str] = ()
    tag: str | None = None
    batch_id: str | None = None
    created_from: int | None = None
    created_to: int | None = None


@dataclass(slots=True)
class RunCancelParams:
    """Cancel a run and, recursively, its non-final children."""

    environment: str
    run_id: str
    now: int
    final_statuses: frozenset[str]
    error: str


@dataclass(slots=True)
class RunMetadataParams:
    """Apply ``mutate`` to a run's metadata atomically; it returns the new JSON text."""

    run_id: str
    mutate: Callable[[str], str]
    now: int
    event: NewEvent | None = None


@dataclass(slots=True)
class RunTagsAddParams:
    """Add tags to a run, up to ``max_tags`` in total; returns the tags it ended with."""

    run_id: str
    tags: Sequence[str]
    max_tags: int
    now: int


@dataclass(slots=True)
class TaskRegisterParams:
    """The tasks a worker can execute, and the worker itself."""

    worker: WorkerRecord
    tasks: Sequence[TaskRecord] = field(default_factory=list)
    queues: Sequence[QueueUpsertParams] = field(default_factory=list)


@dataclass(slots=True)
class WorkerHeartbeatParams:
    """Extend the leases of the runs ``worker_id`` is executing (``run_ids``).

    Only the runs the worker knows it holds: a claim whose result was lost with the connection
    leaves runs leased to this worker that it never started; their leases must run out so the
    reaper gives them to someone.
    """

    worker_id: str
    now: int
    lease_expires_at: int
    run_ids: Sequence[str] = ()


@dataclass(slots=True)
class RunOwnership:
    """Whether a run a worker is executing is still its own."""

    run_id: str
    status: str
    attempt_number: int
    lease_owner: str | None


@dataclass(slots=True)
class WaitpointCreateParams:
    """A waitpoint to create; with ``idempotency_key`` the live one holding it is reused."""

    id: str
    environment: str
    kind: str
    now: int
    completes_at: int | None = None
    timeout_at: int | None = None
    idempotency_key: str | None = None
    idempotency_key_expires_at: int | None = None
    tags: Sequence[str] = ()
    target_id: str | None = None


@dataclass(slots=True)
class WaitpointBlockParams:
    """Block an attempt on a waitpoint at its durable call ``seq``.

    Either ``create`` (a new waitpoint, or the live one holding its idempotency key) or
    ``waitpoint_id`` (an existing one: a token, or the call recorded at ``seq``). If the
    waitpoint is still pending the run goes EXECUTING → WAITING, fenced like a finish.
    """

    run_id: str
    attempt_number: int
    worker_id: str
    seq: int
    call: str
    now: int
    create: WaitpointCreateParams | None = None
    waitpoint_id: str | None = None


@dataclass(slots=True)
class WaitpointBlockResult:
    """The waitpoint the call is blocked on and what happened to the run."""

    waitpoint: WaitpointRecord
    suspended: bool
    owned: bool


@dataclass(slots=True)
class RecordedCall:
    """The durable call recorded at a sequence number of an attempt."""

    call: str
    waitpoint: WaitpointRecord


@dataclass(slots=True)
class WaitpointResolveParams:
    """Resolve due waitpoints of an environment and re-queue the runs they released."""

    environment: str
    now: int
    timeout_error: str


@dataclass(slots=True)
class WaitpointCompleteParams:
    """Complete a PENDING token with ``output`` (JSON); a completed token keeps its output."""

    environment: str
    waitpoint_id: str
    output: str
    now: int


@dataclass(slots=True)
class WaitpointListParams:
    """Filters for ``waitpoint_list`` (tokens only), newest first."""

    environment: str
    statuses: Sequence[str] = ()
    tags: Sequence[str] = ()
    limit: int = 100


class ReadyListener(Protocol):
    """A worker's end of the wake-up channel."""

    port: int | None

    def poke(self) -> None:
        """Wake the waiter from inside this process."""
        ...

    async def wait(self, timeout: float) -> bool:
        """Wait for a wake-up or ``timeout`` seconds; True if woken."""
        ...

    def close(self) -> None:
        """Stop listening."""
        ...


class Store(Protocol):
    """What the engine needs from a database. Implemented by SQLite and PostgreSQL."""

    url: str

    async def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied. Safe to run concurrently."""
        ...

    async def close(self) -> None:
        """Release connections and threads. Safe to call twice."""
        ...

    async def run_insert(
        self, params: RunInsertParams, connection: Any | None = None
    ) -> RunInsertResult:
        """Create a run, or return the live run holding the same idempotency key.

        ``connection`` is the caller's own database connection, inside its transaction: the
        run then exists only if that transaction commits (PostgreSQL only). A new run wakes
        the environment's workers once the insert commits.
        """
        ...

    async def run_insert_many(
        self, params: Sequence[RunInsertParams], batch: BatchInsertParams | None = None
    ) -> list[RunInsertResult]:
        """Create many runs (and their batch) in one transaction, in order; wakes workers once."""
        ...

    async def run_get(self, environment: str, run_id: str) -> RunRecord | None:
        """One run by id, or None."""
        ...

    async def run_list(self, params: RunListParams) -> Page:
        """Runs newest first, filtered, one page at a time."""
        ...

    async def run_claim(self, params: RunClaimParams) -> list[RunRecord]:
        """Atomically take up to ``limit`` ready runs, oldest priority-adjusted first."""
        ...

    async def run_finish_many(self, params: Sequence[RunFinishParams]) -> list[bool]:
        """Record the end of attempts; False where the fence rejected a stale attempt."""
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

    async def run_ownership(self, run_ids: Sequence[str]) -> list[RunOwnership]:
        """Status, attempt and owner of the given runs (for a worker's fence check)."""
        ...

    async def run_metadata_update(self, params: RunMetadataParams) -> str:
        """Read-modify-write a run's metadata in one transaction; return the new JSON."""
        ...

    async def run_tags_add(self, params: RunTagsAddParams) -> list[str]:
        """Add tags to a run (deduplicated, capped); return its tags."""
        ...

    async def run_events_append(self, events: Sequence[NewEvent]) -> None:
        """Append logs, spans and other events in order."""
        ...

    async def run_events_list(
        self, run_id: str, after_id: int = 0, limit: int = 1000
    ) -> list[RunEventRecord]:
        """A run's events after ``after_id``, oldest first."""
        ...

    async def attempt_list(self, run_id: str) -> list[AttemptRecord]:
        """A run's attempts, in order."""
        ...

    async def batch_get(self, environment: str, batch_id: str) -> BatchRecord | None:
        """One batch by id, or None."""
        ...

    async def batch_runs(self, batch_id: str) -> list[RunRecord]:
        """A batch's runs in input order."""
        ...

    async def idempotency_key_reset(self, environment: str, task_id: str, key: str) -> int:
        """Clear a key on every run of a task that holds it; return how many."""
        ...

    async def queue_upsert(self, params: Sequence[QueueUpsertParams]) -> None:
        """Register queues as code defines them (limits only; never un-pauses)."""
        ...

    async def queue_list(self, environment: str) -> list[QueueRecord]:
        """Every queue of the environment with its running and queued counts."""
        ...

    async def queue_update(self, params: QueueUpdateParams) -> QueueRecord | None:
        """Pause, resume or override a queue's limit; None if there is no such queue."""
        ...

    async def run_schedule_due(self, params: RunScheduleParams) -> ScheduledRuns:
        """DELAYED → QUEUED when due; QUEUED/DELAYED → EXPIRED when the TTL passed unstarted."""
        ...

    async def run_reschedule(self, params: RunRescheduleParams) -> RunRecord | None:
        """Change a DELAYED run's time; None if the run is not DELAYED."""
        ...

    async def environment_rate_take(self, params: RateTakeParams) -> int:
        """Take tokens; 0 if taken, else the milliseconds until enough have refilled."""
        ...

    async def task_register(self, params: TaskRegisterParams) -> None:
        """Record a worker and the tasks it can execute."""
        ...

    async def task_list(self, environment: str) -> list[TaskRecord]:
        """Every task any worker of the environment registered."""
        ...

    async def worker_list_live(self, environment: str, since: int) -> list[WorkerRecord]:
        """Workers that heartbeated at or after ``since`` and have not stopped."""
        ...

    async def worker_stop(self, worker_id: str, now: int) -> None:
        """Mark a worker as stopped."""
        ...

    async def ready_listen(self) -> ReadyListener:
        """Start receiving "runs are ready" wake-ups for this process."""
        ...

    async def ready_notify(self, environment: str) -> None:
        """Wake the environment's workers: runs became ready to claim."""
        ...

    async def waitpoint_create(self, params: WaitpointCreateParams) -> tuple[WaitpointRecord, bool]:
        """Create a waitpoint, or return the live one holding its idempotency key (True)."""
        ...

    async def waitpoint_get(self, environment: str, waitpoint_id: str) -> WaitpointRecord | None:
        """One waitpoint by id, or None."""
        ...

    async def waitpoint_list(self, params: WaitpointListParams) -> list[WaitpointRecord]:
        """Tokens (MANUAL waitpoints) newest first, filtered by status and tags (all of)."""
        ...

    async def waitpoint_recorded(
        self, run_id: str, attempt_number: int, seq: int
    ) -> RecordedCall | None:
        """The durable call an attempt recorded at ``seq``, or None."""
        ...

    async def waitpoint_block(self, params: WaitpointBlockParams) -> WaitpointBlockResult:
        """Link the attempt's call ``seq`` to a waitpoint; suspend the run if it is pending."""
        ...

    async def waitpoint_resolve_due(self, params: WaitpointResolveParams) -> list[str]:
        """Complete due waitpoints; WAITING → QUEUED for runs no longer blocked (their ids)."""
        ...

    async def waitpoint_complete(self, params: WaitpointCompleteParams) -> WaitpointRecord | None:
        """Complete a token (first output wins) and re-queue the runs it released."""
        ...

    def worker_heartbeat(self, params: WorkerHeartbeatParams) -> int:
        """Blocking, callable from any thread: extend the worker's leases; return how many.

        Heartbeats come from a thread of their own so that a task that blocks the event loop
        cannot make its worker look dead.
        """
        ...
