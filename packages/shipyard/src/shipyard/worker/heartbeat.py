"""The heartbeat thread: extends this worker's leases, independent of the event loop.

A task that blocks the event loop (CPU work in an ``async def``) must not make its worker look
dead, so heartbeats come from a plain thread with its own database connection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from shipyard.store.protocol import Store, WorkerHeartbeatParams

log = logging.getLogger("shipyard.worker")


class Heartbeat:
    """Calls ``store.worker_heartbeat`` every ``interval`` seconds until stopped."""

    def __init__(
        self,
        store: Store,
        environment: str,
        worker_id: str,
        interval: float,
        lease_ms: int,
        clock: Callable[[], int],
        held: Callable[[], Sequence[str]] = tuple,
    ) -> None:
        self._store = store
        self._environment = environment
        self._worker_id = worker_id
        self._interval = interval
        self._lease_ms = lease_ms
        self._clock = clock
        self._held = held
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name=f"shipyard-heartbeat-{self._worker_id}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (safe to call twice)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def beat(self) -> int:
        """One heartbeat now; returns how many leases were extended."""
        now = self._clock()
        return self._store.worker_heartbeat(
            WorkerHeartbeatParams(
                environment=self._environment,
                worker_id=self._worker_id,
                now=now,
                lease_expires_at=now + self._lease_ms,
                run_ids=self._held(),
            )
        )

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
