"""The run state machine allows exactly the documented transitions."""

from __future__ import annotations

import pytest

from shipyard import RunStatus
from shipyard.engine.runs import FINAL_STATUSES, TRANSITIONS, check_transition
from shipyard.errors import IllegalTransitionError


def test_thirteen_public_statuses() -> None:
    assert len(RunStatus) == 13


@pytest.mark.parametrize("status", sorted(FINAL_STATUSES))
def test_final_statuses_have_no_way_out(status: RunStatus) -> None:
    assert TRANSITIONS[status] == frozenset()
    for target in RunStatus:
        with pytest.raises(IllegalTransitionError):
            check_transition(status, target)


def test_allowed_and_forbidden_examples() -> None:
    check_transition("QUEUED", "EXECUTING")
    check_transition("EXECUTING", "QUEUED")  # retry or release
    check_transition("EXECUTING", "COMPLETED")
    with pytest.raises(IllegalTransitionError, match="QUEUED to COMPLETED"):
        check_transition("QUEUED", "COMPLETED")


def test_helper_flags() -> None:
    assert RunStatus.CANCELED.is_completed and RunStatus.CANCELED.is_cancelled
    assert not RunStatus.CANCELED.is_failed
    assert RunStatus.CRASHED.is_failed and RunStatus.EXPIRED.is_failed
    assert RunStatus.DELAYED.is_queued and RunStatus.PENDING_VERSION.is_queued
    assert RunStatus.DEQUEUED.is_executing and not RunStatus.WAITING.is_executing
    assert RunStatus.COMPLETED.is_success and not RunStatus.FAILED.is_success
