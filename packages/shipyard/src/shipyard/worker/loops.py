"""The worker's own loops: the claimer, the scheduler of due work, and the finisher.

Each is a :class:`~shipyard.worker.services.Service` around a
:class:`~shipyard.worker.worker.Worker`:

* **claimer** — when slots are free, claim up to that many ready runs at once (first adopting
  runs a claim that may have committed unseen leased to this worker); otherwise wait for a
  wake-up (doorbell/NOTIFY), a freed slot, or the backup poll;
* **scheduler** (service name ``promoter``) — promote delayed runs and expire TTLs at their due
  time, sleeping until the earliest one the store reports;
* **finisher** — write the attempts that ended, in batches, claiming the slots they free in the
  same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from shipyard.records import RunRecord
from shipyard.worker.services import Service

if TYPE_CHECKING:
    from shipyard.worker.worker import Worker

log = logging.getLogger("shipyard.worker")

__all__ = ["Claimer", "Finisher", "Scheduler"]

# The scheduler looks for an earlier due time at most this often when wake-ups arrive.
_RECHECK = 0.02


class Claimer(Service):
    """Claims runs while slots are free (see the module docstring)."""

    name = "claimer"

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker
        # Claim passes made (tests wait for passes instead of sleeping: "it looked, and left
        # the run alone").
        self.passes = 0

    async def run(self) -> None:
        worker = self.worker
        listener = worker.listener
        assert listener is not None
        # Woken (a notification, a promotion, a retry due, a freed slot): runs are likely
        # ready, so the claim skips its lock-free peek. After a quiet backup poll it peeks.
        woken = False
        while not worker.stopping:
            claimed: list[RunRecord] = []
            failed_for: float | None = None
            # The finisher claims too (finish_and_claim), meanwhile: each claim counts and
            # promises its slots with worker.reserve, and takes its runs inside it.
            async with worker.claim_lock:
                if worker.claim_unsure:
                    await worker.adopt_leased()
                with worker.reserve() as free:
                    if free > 0:
                        began = time.monotonic()
                        try:
                            claimed = await worker.engine.claim_runs(
                                worker.id,
                                worker.task_ids,
                                free,
                                worker.lease_ms,
                                worker.version,
                                peek=not woken,
                                share=worker.share.claim_share(),
                            )
                        except Exception as exc:
                            # The claim may have committed with its answer lost on the way.
                            worker.claim_unsure = True
                            down_for = worker.outage.failed("claiming runs", exc)
                            failed_for = min(worker.poll_interval * (1 + down_for), 2.0)
                        else:
                            worker.outage.ok()
                            worker.share.claimed(free, len(claimed))
                            for run in claimed:
                                worker.take(run)
            if failed_for is not None:
                await asyncio.sleep(failed_for)
                continue
            if claimed:  # outside the lock: a heartbeat may wait for the database
                await worker.renew_if_late(began)
            self.passes += 1
            if not claimed or len(claimed) < free:
                # Took what was ready (or nothing); more may come with the next wake-up.
                woken = await listener.wait(worker.poll_interval)
            else:
                woken = True  # every free slot found a run: more may be ready


class Scheduler(Service):
    """Promotes delayed runs and expires TTLs at their due time: after each pass it sleeps
    until the earliest due time the store reported (at most ``tick``), or until new runs may
    have brought an earlier one (a wake-up, at most one pass per ``_RECHECK`` seconds)."""

    name = "promoter"

    def __init__(self, worker: Worker, tick: float) -> None:
        super().__init__()
        self.worker = worker
        self.tick = tick
        # How long the last pass planned to sleep (seconds): a test reads it.
        self.next_wait = tick

    async def run(self) -> None:
        worker = self.worker
        assert worker.listener is not None
        woken = worker.listener.follow()
        loop = asyncio.get_running_loop()
        wait = self.tick
        while True:
            started = loop.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), wait)
            if woken.is_set():
                # A wake-up (new runs, often thousands a second): look again, but not more
                # often than every _RECHECK seconds, nor later than the known due time.
                woken.clear()
                rest = min(_RECHECK, wait) - (loop.time() - started)
                if rest > 0:
                    await asyncio.sleep(rest)
            wait = self.tick
            try:
                done = await worker.engine.promote_due()
                worker.outage.ok()
            except Exception as exc:
                worker.outage.failed("scheduling delayed runs", exc)
                self.passes += 1
                continue
            if done.expired:
                log.info(
                    "expired %d run(s) whose TTL passed before they started", len(done.expired)
                )
            if done.promoted:
                worker.poke()
            if done.next_due is not None:
                wait = min(self.tick, max(0.0, (done.next_due - worker.engine.now()) / 1000))
            self.next_wait = wait
            self.passes += 1


class Finisher(Service):
    """Writes the attempts that ended, when any did."""

    name = "finisher"

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker

    async def run(self) -> None:
        while True:
            await self.worker.pending_event.wait()
            self.worker.pending_event.clear()
            await self.worker.flush_finished()
