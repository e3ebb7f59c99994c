"""The claim planner: effective limits, capacities and ordering; which runs' ends settle
waitpoints."""

from __future__ import annotations

from dataclasses import fields

from shipyard.engine.claims import awaitable
from shipyard.records import RunRecord
from shipyard.store.claims import (
    GroupState,
    environment_capacity,
    group_capacity,
    group_limit,
    pick,
)


def test_group_limit_prefers_override_then_code_then_environment() -> None:
    assert group_limit(5, None, 100) == 5
    assert group_limit(5, 2, 100) == 2
    assert group_limit(None, None, 100) == 100
    assert group_limit(500, None, 100) == 100  # a single queue is capped at the base limit
    assert group_limit(5, 0, 100) == 0


def test_group_capacity() -> None:
    group = GroupState("q", "", 3, None, False, 1)
    assert group_capacity(group, 100) == 2
    assert group_capacity(GroupState("q", "", 3, None, True, 0), 100) == 0  # paused
    assert group_capacity(GroupState("q", "", 3, None, False, 5), 100) == 0  # over: never < 0


def test_environment_capacity_includes_burst() -> None:
    assert environment_capacity(0, 100, 2.0) == 200
    assert environment_capacity(150, 100, 2.0) == 50
    assert environment_capacity(250, 100, 2.0) == 0
    assert environment_capacity(0, 10, 1.5) == 15


def test_pick_takes_the_smallest_sort_keys() -> None:
    candidates = [(30, "c"), (10, "a"), (20, "b"), (5, "z")]
    assert pick(candidates, 2) == ["z", "a"]
    assert pick(candidates, 0) == []
    assert pick([], 5) == []


def _run(**given: object) -> RunRecord:
    """A run row with every column empty but ``given`` (those awaitable() reads)."""
    values: dict[str, object] = {f.name: None for f in fields(RunRecord)}
    values.update(given)
    return RunRecord(**values)  # type: ignore[arg-type]


def test_only_runs_a_waitpoint_may_target_settle_waitpoints_when_they_end() -> None:
    # A run nothing triggered from inside a run, nor found again by a key: nobody can wait.
    assert not awaitable(_run())
    # trigger_and_wait / batch_trigger_and_wait: the child has its parent.
    assert awaitable(_run(parent_run_id="run_parent"))
    # A trigger_and_wait whose key or debounce key found this run, triggered elsewhere.
    assert awaitable(_run(idempotency_key="k"))
    assert awaitable(_run(debounce_key="d"))
