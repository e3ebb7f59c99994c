"""The run state machine: the 13 public statuses and every allowed transition.

``docs/runs.md`` draws this machine. Every status change the engine makes goes through
:func:`check_transition`; the store's guarded updates (``WHERE status = ...``) make each one
atomic, and this table makes sure the engine never asks for one that is not allowed.
"""

from __future__ import annotations

from enum import StrEnum

from shipyard.errors import IllegalTransitionError


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
        return self in (RunStatus.DELAYED, RunStatus.PENDING_VERSION, RunStatus.QUEUED)

    @property
    def is_executing(self) -> bool:
        """DEQUEUED or EXECUTING."""
        return self in (RunStatus.DEQUEUED, RunStatus.EXECUTING)

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
        return self.is_final


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

_S = RunStatus
TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    _S.DELAYED: frozenset({_S.QUEUED, _S.PENDING_VERSION, _S.CANCELED, _S.EXPIRED}),
    _S.PENDING_VERSION: frozenset({_S.QUEUED, _S.CANCELED, _S.EXPIRED}),
    _S.QUEUED: frozenset({_S.DEQUEUED, _S.EXECUTING, _S.CANCELED, _S.EXPIRED}),
    _S.DEQUEUED: frozenset({_S.EXECUTING, _S.QUEUED, _S.CANCELED, _S.CRASHED}),
    _S.EXECUTING: frozenset(
        {
            _S.COMPLETED,
            _S.FAILED,
            _S.TIMED_OUT,
            _S.CANCELED,
            _S.CRASHED,
            _S.SYSTEM_FAILURE,
            _S.QUEUED,  # retry after a failed attempt, release on shutdown, lost lease
            _S.WAITING,
        }
    ),
    _S.WAITING: frozenset({_S.QUEUED, _S.CANCELED, _S.SYSTEM_FAILURE}),
}
for _final in FINAL_STATUSES:
    TRANSITIONS[_final] = frozenset()


def check_transition(current: RunStatus | str, target: RunStatus | str) -> None:
    """Raise :class:`IllegalTransitionError` unless ``current → target`` is allowed."""
    src, dst = RunStatus(current), RunStatus(target)
    if dst not in TRANSITIONS[src]:
        raise IllegalTransitionError(
            f"A run cannot go from {src} to {dst}.", current=str(src), target=str(dst)
        )
