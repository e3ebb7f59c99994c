"""The heartbeat thread: extends this worker's leases, independent of the event loop.

A task that blocks the event loop (CPU work in an ``async def``) must not make its worker look
dead, so heartbeats come from a plain thread (the store gives it a connection of its own).
Under a :class:`~shipyard.clock.FakeClock` the thread also beats each time the clock is moved,
so a live worker's leases follow the fake time while a stopped heartbeat lets them run out.
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

    def __init__(self, beat: Callable[[int | None], int], interval: float, name: str) -> None:
        self._beat = beat
        self._interval = interval
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
        while not self._stop.wait(self._interval):
            try:
                self.beat()
                if self._failing:
                    log.warning("heartbeats to the database work again")
                    self._failing = False
            except Exception as exc:
                # One line per outage, not a stack trace per beat.
                if not self._failing:
                    log.error("heartbeat failed: %s (will keep trying)", exc)
                    self._failing = True
                time.sleep(min(self._interval, 1.0))
