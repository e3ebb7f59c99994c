"""Attempts that ended, written in batches: each batch's round trip also claims with the
slots it frees (``Engine.finish_and_claim``), fenced by attempt number, so a late or repeated
write of a run taken over elsewhere is rejected, never applied twice. Two batches may be in
flight (``Worker.flush_finished``); each counts its slots with ``Worker.reserve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from shipyard.engine.claims import AttemptResult, ClaimShare, awaitable
from shipyard.engine.metadata import (
    FinalMetadata,
    drain_events,
    final_metadata,
    write_final_metadata,
)
from shipyard.errors import ClaimAfterFinishError
from shipyard.records import RunRecord
from shipyard.statuses import RunStatus
from shipyard.worker.executor import AttemptOutcome

if TYPE_CHECKING:
    from shipyard.worker.active import Active
    from shipyard.worker.worker import Worker

log = logging.getLogger("shipyard.worker")

__all__ = ["write_batch"]


async def write_batch(
    worker: Worker, batch: list[tuple[Active, AttemptOutcome]], *, exclusive: bool = False
) -> None:
    """Write a batch of ended attempts in one transaction, claiming with the slots they free.
    ``exclusive``: the claim also waits for the claimer's and the suspends' (the claim lock),
    as every write's did before two could be in flight."""
    # Final metadata: the run's own last operations travel with its finish (no write of
    # their own); those aimed at its parent or root are written first (rarely any).
    finals: list[FinalMetadata | None] = [None] * len(batch)
    for i, (active, _) in enumerate(batch):
        if active.scope.has_pending_metadata() or active.scope.flush_lock.locked():
            finals[i] = await final_metadata(active.scope)
    results = []
    for (active, outcome), final in zip(batch, finals, strict=True):
        assert outcome.status is not None
        results.append(
            AttemptResult(
                run_id=active.run.id,
                attempt_number=active.run.attempt_number,
                status=outcome.status,
                attempt_status=outcome.attempt_status,
                output=outcome.output,
                error=outcome.error,
                retry_at=outcome.retry_at,
                # Logs emitted after the last metadata write travel with the result.
                events=drain_events(active.scope),
                parent_run_id=active.run.parent_run_id,
                awaitable=awaitable(active.run),
                metadata=final,
            )
        )
    # The slots this batch frees are claimed again in the same round trip, counted and
    # promised with worker.reserve, and the batch leaves `active` as the runs claimed join
    # it, inside the reservation: no other claim counts a slot twice. (Exclusive, the
    # claimer's and the suspends' claims also wait, as all did before.)
    lock: contextlib.AbstractAsyncContextManager[object] = (
        worker.claim_lock if exclusive else contextlib.nullcontext()
    )
    async with lock:
        with worker.reserve(leaving=len(batch)) as free:
            began = time.monotonic()
            share = worker.share.claim_share(leaving=[active for active, _ in batch])
            accepted, claimed = await _write_results(worker, results, free, share)
            for (active, _), ok, result in zip(batch, accepted, results, strict=True):
                if worker.active.get(active.run.id) is active:
                    del worker.active[active.run.id]
                if ok and result.parent_run_id and RunStatus(result.status).is_final:
                    # Before the parents this claim took back continue (take, below).
                    worker.engine.note_final(
                        result.run_id,
                        active.run.task_id,
                        result.status,
                        result.output,
                        result.error,
                    )
            for run in claimed:
                worker.take(run)
    if claimed:  # outside the lock: a heartbeat may wait for the database
        await worker.renew_if_late(began)
    for (active, outcome), ok, result in zip(batch, accepted, results, strict=True):
        if not ok:
            log.warning(
                "%s attempt %d: result rejected, the run is no longer ours "
                "(canceled or taken over after a lost lease)",
                active.run.id,
                active.run.attempt_number,
            )
            await _write_rejected_metadata(worker, result)
            continue
        worker.completed += 1
        if outcome.status == RunStatus.QUEUED and outcome.retry_at is not None:
            worker.wake_at(outcome.retry_at)
        log.info(
            "%s %s attempt %d → %s",
            active.run.id,
            active.task.id,
            active.run.attempt_number,
            outcome.status,
        )
    for active, _ in batch:
        active.release()
    try:
        await worker.engine.settle_finished(results, accepted)
    except Exception as exc:
        # The results are written; a lost wake-up only waits for the backup poll. Raising
        # here would end the finisher and strand every later result.
        worker.outage.failed("settling finished runs", exc)
    if not claimed:
        # Slots are free (the claim found nothing ready, or was not made): the claimer
        # looks again.
        worker.poke()
    if share is not None and len(claimed) < len(batch):
        # Past its share, this worker left slots it freed to the workers that want runs:
        # they claim them now, not at their next poll.
        try:
            await worker.engine.notify_ready()
        except Exception as exc:
            worker.outage.failed("waking the workers that want runs", exc)


async def _write_rejected_metadata(worker: Worker, result: AttemptResult) -> None:
    """A rejected finish (the run was canceled meanwhile) still leaves its last metadata
    operations applied, as a flush of their own would have."""
    if result.metadata is None:
        return
    try:
        await write_final_metadata(worker.engine, result.run_id, result.metadata)
    except Exception as exc:
        log.error("final metadata of %s not written: %s", result.run_id, exc)


async def _write_results(
    worker: Worker,
    results: list[AttemptResult],
    free: int,
    share: ClaimShare | None,
) -> tuple[list[bool], list[RunRecord]]:
    """Write results, claiming up to ``free`` runs (the slots they free and any others
    reserved for it) in the same round trip, within the worker's ``share``; after a
    failure, write them alone (the claimer claims)."""
    if free > 0 and not worker.stopping and worker.task_ids:
        try:
            written = await worker.engine.finish_and_claim(
                worker.id,
                results,
                worker.task_ids,
                free,
                worker.lease_ms,
                worker.version,
                share=share,
            )
            worker.outage.ok()
            worker.share.claimed(free, len(written[1]))
            return written
        except ClaimAfterFinishError as exc:
            # The results are written; the claim may have leased runs unseen (adopted next).
            worker.claim_unsure = True
            worker.outage.failed("claiming runs", exc.__cause__ or exc)
            return exc.accepted, []
        except Exception as exc:
            # Nothing was written, or the finish committed and its answer was lost: the
            # attempt-number fence makes the finish safe to repeat, and the
            # claimer adopts the runs the claim may have leased to us.
            worker.claim_unsure = True
            worker.outage.failed(f"writing {len(results)} result(s)", exc)
    delay = 0.1
    while True:
        try:
            accepted = await worker.engine.finish_attempts(worker.id, results)
            worker.outage.ok()
            return accepted, []
        except Exception as exc:
            # Results stay in memory until the database takes them; the attempt-number
            # fence makes a late write safe.
            worker.outage.failed(f"writing {len(results)} result(s)", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
