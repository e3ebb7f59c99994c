"""The SQLite finish: a worker's batch of plain finishes in two statements.

The shared procedure (``procedures.run_finish_many``) writes each finish with two statements,
the fenced run update and its attempt's: half of a SQLite drain's database time. A batch of
finishes of distinct runs with no logs and no metadata to write is instead ``run_finish_set``
(every run, fenced, from one JSON array) then ``attempt_finish_set`` (the accepted runs'
attempts); the runs triggers write each accepted run's status event and give back its slot,
as for a single finish (bench/claim_cycle.py: a finish of 100 runs 7.5 → 5.1 ms). Any other
batch goes through the shared procedure, which orders a run's events before its status
change. PostgreSQL has a statement of its own for every batch (its queries.sql).
"""

from __future__ import annotations

import json

from shipyard.store import procedures
from shipyard.store.params import RunFinishManyParams
from shipyard.store.steps import Procedure, begin, count, rows


def run_finish_many(p: RunFinishManyParams) -> Procedure[list[bool]]:
    """Record the end of attempts, each fenced by attempt number and lease owner."""
    if not _plain_batch(p):
        return (yield from procedures.run_finish_many(p))
    yield begin()
    values = [
        [f.run_id, f.attempt_number, f.worker_id, f.status, f.output, f.error, f.retry_at, f.now]
        for f in p.finishes
    ]
    taken = yield rows(
        "run_finish_set", {"environment": p.environment, "input": json.dumps(values)}
    )
    ids = {r[0] for r in taken}
    accepted = [f.run_id in ids for f in p.finishes]
    if ids:
        attempts = [
            [f.run_id, f.attempt_number, f.attempt_status, f.now, f.error]
            for f, ok in zip(p.finishes, accepted, strict=True)
            if ok
        ]
        yield count("attempt_finish_set", {"input": json.dumps(attempts)})
    yield from procedures.settle_finished(p, accepted)
    return accepted


def _plain_batch(p: RunFinishManyParams) -> bool:
    """Whether ``p`` is several finishes of distinct runs with no events or metadata (one
    input row per run: SQLite's UPDATE … FROM would apply one of two rows for a run)."""
    return (
        len(p.finishes) > 1
        and not any(f.events or f.metadata is not None for f in p.finishes)
        and len({f.run_id for f in p.finishes}) == len(p.finishes)
    )
