"""The run state machine allows exactly the documented transitions."""

from __future__ import annotations

import pytest

from shipyard import RunStatus
from shipyard.engine.transitions import TRANSITIONS, TransitionLog, check_transition
from shipyard.errors import IllegalTransitionError
from shipyard.statuses import FINAL_STATUSES


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


def test_the_engine_transition_log_checks_every_source_and_tells_observers() -> None:
    log = TransitionLog()
    seen = []
    log.subscribe(seen.append)
    log.check(["QUEUED", "DELAYED"], "CANCELED", "cancel", ["run_1"])
    assert [(t.target, t.reason, t.run_ids) for t in seen] == [
        (RunStatus.CANCELED, "cancel", ("run_1",))
    ]
    with pytest.raises(IllegalTransitionError, match="WAITING to COMPLETED"):
        log.check(["EXECUTING", "WAITING"], "COMPLETED", "finish")
    assert len(seen) == 1  # an illegal transition is never reported as made


async def test_an_illegal_transition_asked_of_the_engine_raises_before_any_write(engine) -> None:
    from shipyard import task
    from shipyard.engine.claims import AttemptResult

    @task(id="transition-probe")
    async def probe(payload):
        return None

    handle = await probe.trigger()
    before = (await engine.get_run(handle.id)).status  # PENDING_VERSION: no worker has the task
    # A finish may only move an executing run to a final status or back to QUEUED.
    with pytest.raises(IllegalTransitionError, match="EXECUTING to DELAYED"):
        await engine.finish_attempts(
            "worker_x", [AttemptResult(handle.id, 1, status="DELAYED", attempt_status="FAILED")]
        )
    assert (await engine.get_run(handle.id)).status == before
