"""The run state machine: every allowed transition, checked in one place.

``docs/runs.md`` draws this machine (a test compares the drawing with :data:`TRANSITIONS`). The
engine's claim, finish, release, reap, promotion, expiry, resume and cancel paths check their
status change here before asking the store (the store's guarded updates — ``WHERE status = …``
— make each one atomic; this table makes sure the engine never asks for one that is not
allowed). :class:`TransitionLog` is the one place that sees every change the engine makes, where
tracing spans and metrics hook in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from shipyard.errors import IllegalTransitionError
from shipyard.statuses import FINAL_STATUSES, RunStatus

__all__ = ["TRANSITIONS", "Transition", "TransitionLog", "check_transition"]

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


@dataclass(frozen=True, slots=True)
class Transition:
    """A status change the engine asked for: ``run_ids`` (empty: "whichever match") from any of
    ``sources`` to ``target``, for ``reason`` (claim, finish, cancel, reap …)."""

    sources: frozenset[RunStatus]
    target: RunStatus
    reason: str
    run_ids: tuple[str, ...] = ()


Observer = Callable[[Transition], None]


class TransitionLog:
    """Checks each transition against :data:`TRANSITIONS` and tells observers about it.

    Observers (metrics, tracing) must not raise; one that does is removed rather than break
    the engine.
    """

    def __init__(self) -> None:
        self._observers: list[Observer] = []

    def subscribe(self, observer: Observer) -> None:
        """Call ``observer`` with every transition the engine makes from now on."""
        self._observers.append(observer)

    def check(
        self,
        sources: Iterable[RunStatus | str],
        target: RunStatus | str,
        reason: str,
        run_ids: Iterable[str] = (),
    ) -> Transition:
        """Validate ``sources → target`` (every source must allow it) and record it."""
        # Callers mostly pass members already: an Enum call per value costs more than the check.
        src = frozenset(s if type(s) is RunStatus else RunStatus(s) for s in sources)
        dst = target if type(target) is RunStatus else RunStatus(target)
        for status in src:
            if dst not in TRANSITIONS[status]:
                check_transition(status, dst)  # raises, with the message
        transition = Transition(src, dst, reason, tuple(run_ids))
        for observer in list(self._observers):
            try:
                observer(transition)
            except Exception:
                self._observers.remove(observer)
        return transition
