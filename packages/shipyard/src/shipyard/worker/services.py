"""The worker's background services, each with one job and one lifecycle.

Every service has ``start()`` and ``stop()`` (safe to call twice) and runs one loop. Periodic
services pace themselves in real time (``interval`` seconds) and make every decision on the
engine's clock, so a test that drives a :class:`~shipyard.clock.FakeClock` sees due work done on
the next pass without cranking each loop by hand. A failing pass is reported to the worker's
:class:`Outage` (one line per database outage, one traceback per distinct bug) and the loop
carries on: one failing duty must never stop another (the reaper above all).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from shipyard.errors import DatabaseFullError

__all__ = ["Outage", "PeriodicService", "SchedulerService", "Service"]

log = logging.getLogger("shipyard.worker")


class Outage:
    """Logs one line when the database becomes unreachable (or its disk full) and one when it
    is back.

    Errors that are not about reaching the database (a bug, a constraint) are logged with
    their traceback, once per distinct error, and do not count as an outage.
    """

    def __init__(self, is_unavailable: Callable[[BaseException], bool]) -> None:
        self.is_unavailable = is_unavailable
        self.down_since: float | None = None
        self.recovered_at: float | None = None
        self._seen: set[tuple[str, str]] = set()

    def failed(self, what: str, exc: BaseException) -> float:
        """Record a failure; returns how long the outage has lasted (seconds)."""
        now = time.monotonic()
        if not self.is_unavailable(exc):
            key = (what, f"{type(exc).__name__}: {exc}")
            if key not in self._seen and len(self._seen) < 1000:
                self._seen.add(key)
                log.error("%s failed: %s", what, key[1], exc_info=exc)
            return 0.0
        if self.down_since is None:
            self.down_since = now
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            # A full disk is an outage too (writes fail until space is freed), not a bug.
            state = "full" if isinstance(exc, DatabaseFullError) else "unreachable"
            log.error(
                "database %s while %s: %s — retrying with backoff; finished results are kept "
                "in memory until it is back",
                state,
                what,
                first,
            )
        return now - self.down_since

    def ok(self) -> None:
        """Record a success; logs the recovery after an outage."""
        if self.down_since is not None:
            self.recovered_at = time.monotonic()
            log.warning(
                "database reachable again after %.1f s; resuming",
                self.recovered_at - self.down_since,
            )
            self.down_since = None

    def settled(self, seconds: float) -> bool:
        """Reachable, and for at least ``seconds`` since the last outage ended."""
        if self.down_since is not None:
            return False
        return self.recovered_at is None or time.monotonic() - self.recovered_at >= seconds


class Service:
    """A background loop with a ``start()``/``stop()`` lifecycle; ``passes`` counts its rounds
    (tests wait for a round instead of sleeping)."""

    name = "service"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self.passes = 0

    @property
    def running(self) -> bool:
        """Started and not yet stopped."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the loop (no effect if it runs)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"shipyard-{self.name}")

    async def stop(self) -> None:
        """Stop the loop and wait for it (safe to call twice)."""
        task, self._task = self._task, None
        if task is None:
            return
        # Cancel until it ends: on Python 3.11 `asyncio.wait_for` loses a cancellation that
        # arrives as the awaited thing completes (a wake-up set just before stop), and the
        # loop would go on forever.
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def run(self) -> None:
        """The loop; subclasses implement it."""
        raise NotImplementedError


class PeriodicService(Service):
    """Calls ``duty`` every ``interval`` seconds; failures go to ``outage``."""

    def __init__(
        self,
        name: str,
        duty: Callable[[], Awaitable[object]],
        interval: float,
        outage: Outage,
        what: str,
    ) -> None:
        super().__init__()
        self.name = name
        self.duty = duty
        self.interval = interval
        self.outage = outage
        self.what = what

    async def run(self) -> None:
        """Sleep, then do the duty; forever."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.duty()
            except Exception as exc:
                self.outage.failed(self.what, exc)
            self.passes += 1


class SchedulerService(Service):
    """Fires due schedule ticks (``fire``: the engine's ``fire_due_schedules``, which returns
    when the next tick is due, in epoch ms on ``now``'s clock) and sleeps until then, or at
    most ``interval`` seconds: a schedule created or changed by another process is seen within
    one interval, and a tick is fired within milliseconds of its time. Every worker runs one;
    the store's compare-and-set makes each tick fire once however many do."""

    name = "scheduler"

    def __init__(
        self,
        fire: Callable[[], Awaitable[int | None]],
        now: Callable[[], int],
        interval: float,
        outage: Outage,
    ) -> None:
        super().__init__()
        self.fire = fire
        self.now = now
        self.interval = interval
        self.outage = outage

    async def run(self) -> None:
        """Fire what is due, sleep until the next tick (at most ``interval``); forever."""
        while True:
            next_at: int | None = None
            try:
                next_at = await self.fire()
                self.outage.ok()
            except Exception as exc:
                self.outage.failed("firing schedules", exc)
            self.passes += 1
            wait = self.interval
            if next_at is not None:
                wait = min(wait, max(0.0, (next_at - self.now()) / 1000))
            await asyncio.sleep(wait)
