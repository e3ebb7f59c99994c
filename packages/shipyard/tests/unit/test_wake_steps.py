"""A completion wakes the runs linked to the waitpoint it completed, not every waiting run.

The shared procedures are generators of steps (store/steps.py); each backend runs a step's
statement by name. A token's completion and an input stream's delivery used to re-check every
WAITING run of the environment (``runs_wake``): O(parked runs) per completion, ~12 ms per
token with 5,000 parked. Their statement is now ``runs_wake_waitpoint`` (its plans are checked
in conformance/test_claim_plans.py); the PostgreSQL store sends its own pipeline for a token
(``runs_wake_waitpoint_notify``, checked there too).
"""

from __future__ import annotations

from typing import Any

from shipyard.store import procedures
from shipyard.store.feed import InputSendParams
from shipyard.store.params import WaitpointCompleteParams
from shipyard.store.steps import Procedure
from shipyard.testing.steps import drive


def statements(procedure: Procedure[Any], answers: dict[str, Any]) -> list[str]:
    """The names of the statements ``procedure`` runs, answered from ``answers``."""
    return [name for name, _ in drive(procedure, answers)]


def test_a_token_completion_wakes_through_its_own_links() -> None:
    found = statements(
        procedures.waitpoint_complete(WaitpointCompleteParams("development", "wp_1", "1", 5)),
        {"waitpoint_complete": 1, "runs_wake_waitpoint": [("run_1",)]},
    )
    assert "runs_wake_waitpoint" in found
    assert "runs_wake" not in found


def test_an_input_delivered_to_a_wait_wakes_through_its_own_links() -> None:
    params = InputSendParams(
        environment="development",
        run_id="run_1",
        stream_id="approval",
        data='"yes"',
        now=5,
        final_statuses=frozenset({"COMPLETED"}),
    )
    found = statements(
        procedures.input_send(params),
        {
            "input_run_lock": ("EXECUTING",),
            "input_wait_pending": ("wp_1",),
            "waitpoint_complete": 1,
            "runs_wake_waitpoint": [("run_1",)],
        },
    )
    assert "runs_wake_waitpoint" in found
    assert "runs_wake" not in found
