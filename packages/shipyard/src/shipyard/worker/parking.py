"""Durable calls reaching a worker's runs: suspended in batches; a batch that waits for runs it
just triggered (``trigger_and_wait``, ``batch_trigger_and_wait``) claims the slots it gives
back in the same transaction (``Store.waitpoint_block_and_claim``).

A parent that triggers a child and waits for it gives its slot back in the transaction that
inserts the child, records the call and suspends the parent; the claim in that transaction
takes the child when this worker has its task (``trigger_and_wait``: one commit before the
child starts, and its finish claims the parent back). Runs parking at tokens claim the next
runs in the same commit.

The worker's ``parking`` service (:func:`check_parked`, once a second) drops the coroutines of
runs parked too long, or canceled, finished or taken on elsewhere meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from shipyard.engine.claims import WaitpointBlockParams, WaitpointBlockResult
from shipyard.records import RunRecord
from shipyard.statuses import RunStatus

if TYPE_CHECKING:
    from shipyard.worker.active import Active
    from shipyard.worker.worker import Worker

log = logging.getLogger("shipyard.worker")

__all__ = ["PARKED_CHECK_BATCH", "check_parked", "suspend_batch"]

PARKED_CHECK_BATCH = 1_000
"""Parked runs one check reads (once a second). A worker with 10,000 parked read all of their
rows every second (40–60 ms a check on PostgreSQL, with nothing else happening); a slice a
tick visits each within ten seconds at a bounded cost."""


async def suspend_batch(
    worker: Worker, items: Sequence[tuple[Active, WaitpointBlockParams]]
) -> list[WaitpointBlockResult | Exception]:
    """Block a batch of durable calls and, in the same transaction, claim with the slots
    the suspended runs give back (a child its parent just triggered starts here without a
    claim of its own). Under the claim lock, and the suspended runs leave ``active`` before
    it is released, as in :func:`~shipyard.worker.finishing.write_batch`: the claimer never
    counts a slot twice."""
    blocks = [block for _, block in items]
    if not any(b.create is not None and b.create.kind in ("RUN", "BATCH") for b in blocks):
        return await _suspend_alone(worker, items)
    results: list[WaitpointBlockResult | Exception] | None = None
    claimed: list[RunRecord] = []
    async with worker.claim_lock:
        began = time.monotonic()
        if not worker.stopping and worker.task_ids:
            try:
                with worker.reserve() as free:
                    found, claimed = await worker.engine.suspend_and_claim(
                        worker.id,
                        blocks,
                        worker.task_ids,
                        free,
                        worker.lease_ms,
                        worker.version,
                        share=worker.share.claim_share(leaving=[active for active, _ in items]),
                    )
                results = list(found)
            except Exception:
                # Nothing was written (one transaction), or it committed and the answer
                # was lost: each call is blocked again alone below (a linked call keeps
                # its waitpoint, the suspend is fenced), and the claimer adopts the runs
                # the claim may have leased to this worker.
                worker.claim_unsure = True
        claimer_needed = results is None
        if results is None:
            results = await worker.engine.suspend_each(blocks)
        for (active, _), result in zip(items, results, strict=True):
            if not isinstance(result, Exception) and result.suspended:
                worker._hold(active)
        for run in claimed:
            worker.take(run)
    if claimed:  # outside the lock: a heartbeat may wait for the database
        await worker.renew_if_late(began)
    if claimer_needed and any(not isinstance(r, Exception) and r.suspended for r in results):
        # Slots are free and nothing claimed them. (After the claim above, nothing was
        # left ready, or no slot: waking the claimer would only cost a claim.)
        worker.poke()
    return results


async def _suspend_alone(
    worker: Worker, items: Sequence[tuple[Active, WaitpointBlockParams]]
) -> list[WaitpointBlockResult | Exception]:
    """A batch that waits for no child (tokens, dates): suspended without a claim, then the
    claimer is woken for the slots. Measured: runs parking at tokens claimed in each suspend
    went through in cohorts of the suspend's size (~30 on SQLite instead of ~100: more
    transactions and CPU per parked run); the claimer's claim takes every free slot at once."""
    results = await worker.engine.suspend_many([block for _, block in items])
    async with worker.claim_lock:  # the runs leave `active` as the claimer counts slots
        for (active, _), result in zip(items, results, strict=True):
            if not isinstance(result, Exception) and result.suspended:
                worker._hold(active)
    if any(not isinstance(r, Exception) and r.suspended for r in results):
        worker.poke()  # slots are free
    return results


async def check_parked(worker: Worker) -> None:
    """Evict parked coroutines idle too long, or whose run was canceled, finished or taken on
    by another attempt: all of them for idleness, the next ``PARKED_CHECK_BATCH`` of them
    (round robin) for their run's state. Eviction only frees memory: a run whose coroutine is
    gone resumes by replay wherever it is claimed."""
    if not worker.parked:
        return
    idle_before = asyncio.get_running_loop().time() - worker.parked_idle
    for idle in [a for a in worker.parked.values() if a.parked_at < idle_before]:
        worker.evict(idle)
    ids = list(worker.parked)
    if not ids:
        return
    start = worker.parked_checked % len(ids)
    chosen = (ids[start:] + ids[:start])[:PARKED_CHECK_BATCH]
    worker.parked_checked = start + len(chosen)
    for row in await worker.engine.run_ownership(chosen):
        active = worker.parked.get(row.run_id)
        if active is None:
            continue
        if row.status in (RunStatus.WAITING, RunStatus.QUEUED) and (
            row.attempt_number == active.run.attempt_number
        ):
            continue
        log.info("%s is %s; dropping its parked attempt", row.run_id, row.status)
        worker.evict(active)
