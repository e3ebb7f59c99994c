"""Run statuses: the 13 public statuses of Trigger.dev v4 and the groups they fall into.

A neutral module: the store filters by these names, the engine's state machine
(:mod:`shipyard.engine.transitions`) moves runs between them, and every reader reports them.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "EXECUTING_STATUSES",
    "FAILED_STATUSES",
    "FINAL_STATUSES",
    "IDEMPOTENCY_RELEASE_STATUSES",
    "QUEUED_STATUSES",
    "RunStatus",
]


class RunStatus(StrEnum):
    """Public run statuses (Trigger.dev v4 names)."""

    DELAYED = "DELAYED"  # waiting for its delay (or debounce) to pass
    PENDING_VERSION = "PENDING_VERSION"  # no worker has registered the task or queue yet
    QUEUED = "QUEUED"  # ready (or backing off before a retry) and waiting for a slot
    DEQUEUED = "DEQUEUED"  # taken from the queue, not yet executing (claim skips it today)
    EXECUTING = "EXECUTING"  # an attempt holds a lease and runs on a worker
    WAITING = "WAITING"  # parked at a durable wait; holds no slot
    COMPLETED = "COMPLETED"  # finished successfully
    CANCELED = "CANCELED"  # canceled by a user, an API call or a canceled parent
    FAILED = "FAILED"  # task error after its last attempt, or a non-retryable error
    CRASHED = "CRASHED"  # its worker kept dying until the attempts ran out
    SYSTEM_FAILURE = "SYSTEM_FAILURE"  # an unrecoverable engine error
    EXPIRED = "EXPIRED"  # its TTL passed before any worker started it
    TIMED_OUT = "TIMED_OUT"  # an attempt ran past max_duration

    @property
    def is_final(self) -> bool:
        """No further transition is possible."""
        return self in FINAL_STATUSES

    @property
    def is_queued(self) -> bool:
        """Not started yet: DELAYED, PENDING_VERSION or QUEUED."""
        return self in QUEUED_STATUSES

    @property
    def is_executing(self) -> bool:
        """DEQUEUED or EXECUTING."""
        return self in EXECUTING_STATUSES

    @property
    def is_waiting(self) -> bool:
        """Parked at a durable wait."""
        return self is RunStatus.WAITING

    @property
    def is_success(self) -> bool:
        """COMPLETED."""
        return self is RunStatus.COMPLETED

    @property
    def is_failed(self) -> bool:
        """FAILED, CRASHED, SYSTEM_FAILURE, EXPIRED or TIMED_OUT."""
        return self in FAILED_STATUSES

    @property
    def is_cancelled(self) -> bool:
        """CANCELED."""
        return self is RunStatus.CANCELED

    @property
    def is_completed(self) -> bool:
        """Finished: successfully, failed, or canceled."""
        return self in FINAL_STATUSES


QUEUED_STATUSES = frozenset({RunStatus.DELAYED, RunStatus.PENDING_VERSION, RunStatus.QUEUED})
EXECUTING_STATUSES = frozenset({RunStatus.DEQUEUED, RunStatus.EXECUTING})
FAILED_STATUSES = frozenset(
    {
        RunStatus.FAILED,
        RunStatus.CRASHED,
        RunStatus.SYSTEM_FAILURE,
        RunStatus.EXPIRED,
        RunStatus.TIMED_OUT,
    }
)
FINAL_STATUSES = FAILED_STATUSES | {RunStatus.COMPLETED, RunStatus.CANCELED}
# An idempotency key whose run ended in one of these may be reused by a new run.
IDEMPOTENCY_RELEASE_STATUSES = FAILED_STATUSES
