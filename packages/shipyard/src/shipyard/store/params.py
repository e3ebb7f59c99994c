"""The params and results of every store operation: one params type per method.

Every operation is scoped by ``environment`` (the SQL filters by it) and every time is an epoch
millisecond the caller passes in (``now``): a store never reads the wall clock. Adding a field
with a default never breaks a caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shipyard.records import NewEvent, RunRecord, TaskRecord, WorkerRecord
from shipyard.store.claims import ClaimShare

# The waitpoint operations' params live in their own module (size); re-exported here so
# every params type is still found in this one place.
from shipyard.store.waitpoint_params import (
    RecordedCall as RecordedCall,
)
from shipyard.store.waitpoint_params import (
    WaitpointBlockManyParams as WaitpointBlockManyParams,
)
from shipyard.store.waitpoint_params import (
    WaitpointBlockParams as WaitpointBlockParams,
)
from shipyard.store.waitpoint_params import (
    WaitpointBlockResult as WaitpointBlockResult,
)
from shipyard.store.waitpoint_params import (
    WaitpointCompleteParams as WaitpointCompleteParams,
)
from shipyard.store.waitpoint_params import (
    WaitpointCreateManyParams as WaitpointCreateManyParams,
)
from shipyard.store.waitpoint_params import (
    WaitpointCreateParams as WaitpointCreateParams,
)
from shipyard.store.waitpoint_params import (
    WaitpointGetParams as WaitpointGetParams,
)
from shipyard.store.waitpoint_params import (
    WaitpointListParams as WaitpointListParams,
)
from shipyard.store.waitpoint_params import (
    WaitpointReads as WaitpointReads,
)
from shipyard.store.waitpoint_params import (
    WaitpointReadsParams as WaitpointReadsParams,
)
from shipyard.store.waitpoint_params import (
    WaitpointRecordedParams as WaitpointRecordedParams,
)
from shipyard.store.waitpoint_params import (
    WaitpointResolveParams as WaitpointResolveParams,
)

# -- runs ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class MigrateParams:
    """Apply pending migrations; ``now`` is recorded as each migration's ``applied_at``."""

    now: int


@dataclass(slots=True)
class RunInsertParams:
    """A run to create. ``status`` is QUEUED or DELAYED; times are epoch ms.

    ``connection`` is the caller's own database connection, inside its transaction: the run
    then exists only if that transaction commits (PostgreSQL only).
    """

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
    # The version the run is locked to (*_and_wait children: the parent's); None = any.
    version: str | None = None
    # Statuses of an existing run with the same idempotency key that free the key for a new
    # run (FAILED, CRASHED, ...). Any other status returns the existing run as cached.
    idempotency_release_statuses: frozenset[str] = frozenset()
    connection: Any | None = None


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
class RunInsertManyParams:
    """Many runs of one environment (and their batch), created in one transaction, in order."""

    environment: str
    runs: Sequence[RunInsertParams]
    batch: BatchInsertParams | None = None


@dataclass(slots=True)
class RunInsertBulkParams:
    """Many runs made from one template, created in one transaction, in order.

    Run ``i`` is ``template`` with id ``ids[i]``, payload ``payloads[i]`` and batch index
    ``i`` (a batch trigger whose items share their task and options). The template has no
    idempotency key, debounce key or tags: nothing to resolve, every row is inserted as is.
    """

    environment: str
    template: RunInsertParams
    ids: Sequence[str]
    payloads: Sequence[str | None]
    batch: BatchInsertParams | None = None


@dataclass(slots=True)
class RunGetParams:
    """One run by id."""

    environment: str
    run_id: str


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
    schedule_id: str | None = None
    parent_run_id: str | None = None


@dataclass(slots=True)
class RunStatsParams:
    """Count the runs created at or after ``created_from``, by status and by ``bucket_ms``
    window of creation time (bucket 0 starts at ``created_from``)."""

    environment: str
    created_from: int
    bucket_ms: int


@dataclass(slots=True)
class RunClaimParams:
    """Claim up to ``limit`` ready runs of ``task_ids`` for ``worker_id``.

    Concurrency: a (queue, concurrency key) group runs at most its queue's limit (capped at
    ``environment_limit``), and the environment at most ``environment_limit × burst_factor``.

    Versions: the claimed runs lock to ``version`` (the worker's); a run already locked to
    another version is skipped while a worker of that version heartbeated at or after
    ``live_since`` and has not stopped.

    ``peek``: first look, without the claim's lock, whether any run is ready (an idle poll
    then takes no lock); off when the caller was just told runs are ready (one round trip
    less between a trigger and the run's start).

    ``share``: the worker's part of each group's limit while other workers want runs too
    (``store/claims.py``); None: the whole limit.
    """

    environment: str
    worker_id: str
    task_ids: Sequence[str]
    limit: int
    now: int
    lease_expires_at: int
    environment_limit: int = 100
    burst_factor: float = 2.0
    version: str | None = None
    live_since: int = 0
    peek: bool = True
    share: ClaimShare | None = None


@dataclass(slots=True)
class RunFinishParams:
    """The end of one attempt, fenced by ``attempt_number`` and ``worker_id``.

    ``status`` is the run's next status: a final one (COMPLETED, FAILED, TIMED_OUT, CANCELED,
    CRASHED) or QUEUED to retry at ``retry_at``. ``attempt_status`` is what the attempt row
    records (COMPLETED, FAILED, CANCELED, CRASHED). ``events`` (the attempt's buffered logs
    and spans) are written only if the finish is accepted, before the status change's event.
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
    metadata: RunFinishMetadata | None = None
    # Whether a waitpoint may target the run (engine.claims.awaitable): only such runs' ends
    # settle waitpoints and wake parents in the finish (three statements fewer per batch).
    awaitable: bool = True

    @property
    def settles(self) -> bool:
        """Whether this finish ends a run a waitpoint may target (its waitpoints settle)."""
        return self.awaitable and self.status != "QUEUED"


@dataclass(slots=True)
class RunFinishMetadata:
    """The attempt's last metadata operations, written with its finish (no write of their own).

    ``mutate`` turns the stored metadata (JSON text, read under the finish's lock) into the new
    text, or None to leave it as it is (the operations failed, e.g. too large: the engine has
    reported it). ``event`` (the change's record) is appended after the finish's other events,
    before the status change's. Applied only if the finish is accepted.

    ``expected``/``text``, when known: the stored text the operations were applied to and the
    result. While the row still holds ``expected`` a store may write ``text`` without reading
    the row first (PostgreSQL: the finish stays one statement, compare-and-set); otherwise it
    reads, locks and ``mutate``s.
    """

    mutate: Callable[[str], str | None]
    event: NewEvent
    expected: str | None = None
    text: str | None = None


@dataclass(slots=True)
class RunFinishManyParams:
    """The ends of many attempts of one environment, written in one transaction."""

    environment: str
    finishes: Sequence[RunFinishParams]


@dataclass(slots=True)
class RunReleaseParams:
    """Give a claimed run back without counting its attempt (graceful shutdown)."""

    environment: str
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
class RunCancelParams:
    """Cancel a run and, recursively, its non-final children."""

    environment: str
    run_id: str
    now: int
    final_statuses: frozenset[str]
    error: str


@dataclass(slots=True)
class RunOwnershipParams:
    """The runs a worker is executing, for its fence check."""

    environment: str
    run_ids: Sequence[str]


@dataclass(slots=True)
class RunPurgeParams:
    """Delete up to ``limit`` runs that finished before ``before`` (ms) — with their tags,
    attempts, events, waitpoint links and streams — and up to ``limit`` waitpoints completed
    before it that no remaining run waits on."""

    environment: str
    before: int
    limit: int = 500


@dataclass(slots=True)
class PurgedRows:
    """What one retention pass deleted."""

    runs: int
    waitpoints: int


@dataclass(slots=True)
class RunLeasedParams:
    """The runs leased to a worker (EXECUTING, ``lease_owner`` = ``worker_id``)."""

    environment: str
    worker_id: str


@dataclass(slots=True)
class RunOwnership:
    """Whether a run a worker is executing is still its own."""

    run_id: str
    status: str
    attempt_number: int
    lease_owner: str | None


@dataclass(slots=True)
class RunMetadataParams:
    """Apply ``mutate`` to a run's metadata atomically; it returns the new JSON text.

    ``event`` (the engine's record of the change) is appended in the same transaction.
    """

    environment: str
    run_id: str
    mutate: Callable[[str], str]
    now: int
    event: NewEvent | None = None


@dataclass(slots=True)
class RunTagsAddParams:
    """Add tags to a run, up to ``max_tags`` in total; returns the tags it ended with."""

    environment: str
    run_id: str
    tags: Sequence[str]
    max_tags: int
    now: int


@dataclass(slots=True)
class RunEventsAppendParams:
    """Logs, spans and other events to append, in order (events of other environments' runs
    are dropped)."""

    environment: str
    events: Sequence[NewEvent]


@dataclass(slots=True)
class RunEventsListParams:
    """A run's events after ``after_id``, oldest first."""

    environment: str
    run_id: str
    after_id: int = 0
    limit: int = 1000


@dataclass(slots=True)
class AttemptListParams:
    """A run's attempts."""

    environment: str
    run_id: str


@dataclass(slots=True)
class RunScheduleParams:
    """Promote due DELAYED runs and expire runs whose TTL passed before their first start."""

    environment: str
    now: int
    expired_error: str


@dataclass(slots=True)
class ScheduledRuns:
    """What :meth:`Store.run_schedule_due` changed, and when it has work next."""

    promoted: list[str]
    expired: list[str]
    # The earliest time (ms) a DELAYED run falls due or an unstarted run's TTL passes, as of
    # after this pass; None when nothing is scheduled. Workers sleep until then.
    next_due: int | None = None


@dataclass(slots=True)
class RunRescheduleParams:
    """Move a DELAYED run to ``delay_until`` (its TTL countdown moves with it)."""

    environment: str
    run_id: str
    delay_until: int
    now: int


# -- batches, keys, queues, rate limits --------------------------------------------------------


@dataclass(slots=True)
class BatchListParams:
    """Batches newest first, one page; ``cursor`` is the last id of the previous page."""

    environment: str
    limit: int = 50
    cursor: str | None = None


@dataclass(slots=True)
class BatchGetParams:
    """One batch by id."""

    environment: str
    batch_id: str


@dataclass(slots=True)
class BatchRunsParams:
    """A batch's runs."""

    environment: str
    batch_id: str


@dataclass(slots=True)
class IdempotencyKeyResetParams:
    """Clear ``key`` on every run of ``task_id`` that holds it."""

    environment: str
    task_id: str
    key: str
    now: int


@dataclass(slots=True)
class QueueDefinition:
    """A queue as code defines it."""

    name: str
    concurrency_limit: int | None


@dataclass(slots=True)
class QueueUpsertParams:
    """Queues as code defines them; registering never changes ``paused`` or an override."""

    environment: str
    queues: Sequence[QueueDefinition]
    now: int


@dataclass(slots=True)
class QueueListParams:
    """Every queue of an environment."""

    environment: str


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
class RateTakeParams:
    """Take ``count`` tokens from the environment's trigger bucket."""

    environment: str
    count: int
    now: int
    bucket_size: int
    refill_tokens: int
    refill_interval_ms: int


# -- tasks and workers --------------------------------------------------------------------------


@dataclass(slots=True)
class TaskRegisterParams:
    """The tasks a worker can execute, the queues they use, and the worker itself.

    Everything is written under ``environment``. The worker's version (``worker.version``)
    is recorded with its tasks, and the environment's PENDING_VERSION runs of these tasks are
    promoted to QUEUED in the same transaction.
    """

    environment: str
    worker: WorkerRecord
    now: int
    tasks: Sequence[TaskRecord] = field(default_factory=list)
    queues: Sequence[QueueDefinition] = field(default_factory=list)


@dataclass(slots=True)
class RunPromotePendingParams:
    """PENDING_VERSION → QUEUED for the runs of ``task_ids`` (a worker with them is here)."""

    environment: str
    task_ids: Sequence[str]
    now: int


@dataclass(slots=True)
class VersionListParams:
    """Every version the environment's workers registered; ``since`` dates live workers."""

    environment: str
    since: int


@dataclass(slots=True)
class TaskListParams:
    """Every task any worker of an environment registered."""

    environment: str


@dataclass(slots=True)
class WorkerListLiveParams:
    """Workers that heartbeated at or after ``since`` and have not stopped."""

    environment: str
    since: int


@dataclass(slots=True)
class WorkerShareParams:
    """Record whether a worker wants more runs than its claims give it (``short``: a claim came
    back with fewer runs than it had free slots; it wants more if runs of ``task_ids`` it may
    start are ready), and count the other live workers of its version that want more.

    ``wanting``: what the store holds for this worker now (no write when nothing changes);
    a want recorded before ``wanting_since``, or by a worker that last heartbeated before
    ``live_since``, no longer counts.
    """

    environment: str
    worker_id: str
    task_ids: Sequence[str]
    version: str | None
    short: bool
    wanting: bool
    now: int
    live_since: int
    wanting_since: int


@dataclass(slots=True)
class WorkerStopParams:
    """Mark a worker as stopped."""

    environment: str
    worker_id: str
    now: int


@dataclass(slots=True)
class WorkerHeartbeatParams:
    """Extend the leases of the runs ``worker_id`` is executing (``run_ids``).

    Only the runs the worker knows it holds: a claim whose result was lost with the connection
    leaves runs leased to this worker that it never started; their leases must run out so the
    reaper gives them to someone.
    """

    environment: str
    worker_id: str
    now: int
    lease_expires_at: int
    run_ids: Sequence[str] = ()


@dataclass(slots=True)
class ReadyNotifyParams:
    """Wake the environment's workers; ``now`` dates which workers count as live."""

    environment: str
    now: int
