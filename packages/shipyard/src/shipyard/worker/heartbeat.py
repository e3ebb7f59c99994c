"""The heartbeat thread: extends this worker's leases, independent of the event loop.

A task that blocks the event loop (CPU work in an ``async def``) must not make its worker look
dead, so heartbeats come from a plain thread (the store gives it a connection of its own).
Under a :class:`~shipyard.clock.FakeClock` the thread also beats each time the clock is moved,
so a live worker's leases follow the fake time while a stopped heartbeat lets them run out.

Beats keep a fixed rate, counted from each beat's start: a lease runs from the moment its beat
read the clock, so a slow beat (a commit waiting on a busy disk) must not also push the next
one a whole interval further out — the next beat starts as soon as the slow one ends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("shipyard.worker")


class Heartbeat:
    """Calls ``beat()`` every ``interval`` seconds from its own thread until stopped.

    ``beat`` extends the leases of the runs the worker holds and returns how many.
    """

    def __init__(
        self,
        beat: Callable[[int | None], int],
        interval: float,
        name: str,
        *,
        lease: float | None = None,
    ) -> None:
        self._beat = beat
        self._interval = interval
        # A beat slower than this leaves the leases it renews less than an interval to spare.
        self._slow = (3 * interval if lease is None else lease) - interval
        self._name = name
        self._stop = threading.Event()
        # One beat at a time: each beat reads the clock inside the lock, so a later beat never
        # writes an older lease than an earlier one.
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failing = False

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._loop, name=f"shipyard-heartbeat-{self._name}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (safe to call twice)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def running(self) -> bool:
        """The thread is beating."""
        return self._thread is not None and not self._stop.is_set()

    def beat(self, at_ms: int | None = None) -> int:
        """One heartbeat now (or as of ``at_ms``); returns how many leases were extended."""
        with self._lock:
            return self._beat(at_ms)

    def beat_if_running(self, at_ms: int | None = None) -> None:
        """A beat on demand, as of ``at_ms`` (the fake clock is about to move there), only
        while the thread runs."""
        if self.running:
            try:
                self.beat(at_ms)
            except Exception as exc:
                log.error("heartbeat failed: %s (will keep trying)", exc)

    def _loop(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(next_wait(started, time.monotonic(), self._interval)):
            started = time.monotonic()
            try:
                self.beat()
                took = time.monotonic() - started
                if took > self._slow:
                    # Rare and worth a line: another worker's reaper may already have taken
                    # this worker's runs over (their attempts then count as crashed).
                    log.warning(
                        "heartbeat took %.0f ms (every %.0f ms, leases last %.0f ms): the "
                        "database answers slowly; runs may be taken over as lost",
                        took * 1000,
                        self._interval * 1000,
                        (self._slow + self._interval) * 1000,
                    )
                if self._failing:
                    log.warning("heartbeats to the database work again")
                    self._failing = False
            except Exception as exc:
                # One line per outage, not a stack trace per beat.
                if not self._failing:
                    log.error("heartbeat failed: %s (will keep trying)", exc)
                    self._failing = True
                time.sleep(min(self._interval, 1.0))


def next_wait(started: float, now: float, interval: float) -> float:
    """Seconds to wait before the next beat: one ``interval`` after the last beat ``started``
    (monotonic), none if that beat took longer than the interval."""
    return max(0.0, started + interval - now)
