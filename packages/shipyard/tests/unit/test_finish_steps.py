"""A worker's batch of plain finishes is two statements on SQLite, whatever its size.

The SQLite store ran the shared procedure ``run_finish_many``: two statements per finish — the
fenced run update and its attempt's — half of a drain's database time. A batch of finishes
with no logs and no metadata, of distinct runs, is now ``run_finish_set`` then
``attempt_finish_set`` (store/sqlite/finish.py; PostgreSQL has one statement of its own;
bench/claim_cycle.py: a finish of 100 runs 7.5 → 5.1 ms). What each finish writes is checked
against both backends in conformance/test_store_runs.py.
"""

from __future__ import annotations

import json
from typing import Any

from shipyard.records import NewEvent
from shipyard.store.params import RunFinishManyParams, RunFinishParams
from shipyard.store.sqlite.finish import run_finish_many
from shipyard.testing.steps import drive


def finish(n: int, **kw: Any) -> RunFinishParams:
    return RunFinishParams(f"run_{n}", 1, "w1", "COMPLETED", "COMPLETED", 5, **kw)


def test_a_batch_of_plain_finishes_is_two_statements() -> None:
    batch = [finish(n, awaitable=False) for n in range(50)]
    accepted_ids = [(f"run_{n}",) for n in range(50) if n != 7]
    seen = drive(
        run_finish_many(RunFinishManyParams("development", batch)),
        {"run_finish_set": accepted_ids},
    )
    names = [name for name, _ in seen if name]  # BEGIN has no name
    assert names == ["run_finish_set", "attempt_finish_set"]
    attempts = json.loads(seen[-1][1]["input"])
    assert len(attempts) == 49 and ["run_7", 1, "COMPLETED", 5, None] not in attempts


def test_finishes_with_logs_or_of_one_run_twice_go_one_by_one() -> None:
    with_log = finish(1, events=[NewEvent("run_1", 5, "log", "hello", "info")])
    for batch in ([finish(0), with_log], [finish(0), finish(0)]):
        names = [
            name
            for name, _ in drive(
                run_finish_many(RunFinishManyParams("development", batch)),
                {"run_finish_fence": ("run_1",)},
            )
        ]
        assert "run_finish_set" not in names
        assert names.count("run_finish") == 2
