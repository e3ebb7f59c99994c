"""A worker's share of the concurrency limits it has in common with other workers.

A worker's finishes claim the slots they free in the same transaction, so the first worker to
fill a group's limit keeps it: a second worker process never gets a slot, and adding one adds
no capacity (docs/queues.md, "Several workers share a limit"). So each worker says whether it
wants more runs than its claims give it (one came back with fewer runs than it had free slots,
while runs it may start are ready) and reads how many other live workers of its version say
so (``Engine.worker_share``, every :data:`TICK` seconds while it has runs or wants some,
backing off to every ``STEADY × TICK`` while neither changes). With ``n`` others wanting, it
claims at most ``ceil(limit / (n + 1))`` runs of each (queue, concurrency key) group
(``ClaimShare``, applied by the claim itself); the slots it then leaves free it announces, so
the wanting workers claim them. A worker nobody competes with claims the whole limit, as
before.

A want that starts or ends is announced too (``shipyard_wants``, or SQLite's doorbell), and a
claim that comes back short while the worker does not want yet, and has peers (or has not
counted them yet), checks at once: the workers recount within milliseconds instead of at
their next check. Without that, a worker joining a busy limit waited up to ``STEADY × TICK``
for its first run, and a worker the share had just cut back could lose every slot to a peer
still claiming the whole limit until that peer's next check (in a two-process drain of 20,000
no-op runs the two took turns for the first 250 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Collection
from typing import TYPE_CHECKING

from shipyard.engine.claims import ClaimShare
from shipyard.worker.services import Service

if TYPE_CHECKING:
    from shipyard.worker.active import Active
    from shipyard.worker.worker import Worker

__all__ = ["NUDGE_GAP", "STEADY", "TICK", "Share"]

TICK = 0.05
"""Seconds between a busy worker's share checks: how soon a starting worker gets its share."""

STEADY = 8
"""While its want and its others stay the same, a worker checks every ``STEADY × TICK``
seconds at the least often (0.4 s: a want counts for 1 s)."""

NUDGE_GAP = 0.01
"""Seconds at the least between a check and the next one a changed want brings forward (a
bound on the checks a busy environment's want changes can cause)."""


class Share(Service):
    """Keeps the worker's want of more runs recorded, and its share of each limit current."""

    name = "share"

    def __init__(self, worker: Worker, tick: float = TICK) -> None:
        super().__init__()
        self.worker = worker
        self.tick = tick
        # Seconds to the next check: tick after a change, up to STEADY × tick while steady.
        self.interval = tick
        # Other live workers of this version (None until first counted), and how many of
        # them want more runs than they get.
        self.peers: int | None = None
        self.others = 0
        # This worker's want, as the store holds it.
        self.wanting = False
        # Since the last tick: a claim came back short / a claim filled every free slot.
        self._short = False
        self._filled = False

    @property
    def fraction(self) -> float:
        """The part of each group's limit this worker claims: 1 while nobody else wants runs."""
        return 1.0 / (1 + self.others)

    def claim_share(self, leaving: Collection[Active] = ()) -> ClaimShare | None:
        """What the next claim may take (None: the whole limit), counting the runs held now
        except ``leaving`` (a batch whose slots the same transaction frees)."""
        if not self.others:
            return None
        gone = {id(active) for active in leaving}
        held: Counter[tuple[str, str]] = Counter(
            (active.run.queue, active.run.concurrency_key or "")
            for active in self.worker.active.values()
            if id(active) not in gone
        )
        return ClaimShare(self.fraction, dict(held))

    def claimed(self, free: int, got: int) -> None:
        """After a claim that had ``free`` slots to fill and took ``got`` runs."""
        if got < free:
            self._short = True
            listener = self.worker.listener
            if not self.wanting and self.peers != 0 and listener is not None:
                # A want may be starting, and peers only yield once they read it: check now.
                listener.wants.set()
        else:
            self._filled = True

    async def run(self) -> None:
        worker = self.worker
        assert worker.listener is not None
        # Set by a peer's changed want, or by this worker's short claim (claimed).
        nudged = worker.listener.wants
        loop = asyncio.get_running_loop()
        checked_at = loop.time()
        # While nothing changes (the same want, the same others) the check backs off to
        # STEADY ticks: in a two-process drain a check every TICK was a tenth of each
        # worker's CPU. A want is still refreshed well within its window (WANT_WINDOW_MS).
        self.interval = self.tick
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(nudged.wait(), self.interval)
            if nudged.is_set():
                rest = checked_at + NUDGE_GAP - loop.time()
                if rest > 0:
                    await asyncio.sleep(rest)
                nudged.clear()
                self.interval = self.tick
            checked_at = loop.time()
            if not (self._short or self.wanting or self.others or worker.active):
                self.passes += 1
                self.interval = self.tick
                continue  # idle: nothing to say, no limit to share
            before = (self.wanting, self.peers, self.others)
            # A want lasts while runs are ready, until a claim fills every free slot (a worker
            # with no slot free does not claim; one with none taken polls now and then).
            # Alone, a want would be read by nobody: not looked for (one statement a tick).
            look = (self._short or (self.wanting and not self._filled)) and self.peers != 0
            self._short = self._filled = False
            try:
                self.wanting, self.peers, self.others = await worker.engine.worker_share(
                    worker.id, worker.task_ids, worker.version, short=look, wanting=self.wanting
                )
            except Exception as exc:
                # Claims go on with the last share; a stale want stops counting by itself.
                worker.outage.failed("sharing concurrency limits with other workers", exc)
            self.passes += 1
            if (self.wanting, self.peers, self.others) == before:
                self.interval = min(self.interval * 2, self.tick * STEADY)
            else:
                self.interval = self.tick
