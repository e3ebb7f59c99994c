"""Time, injected: every engine decision and every worker service reads one :class:`Clock`.

Production code uses :class:`SystemClock`. Tests pass a :class:`FakeClock` and move time with
:meth:`FakeClock.advance`: a wait of eight seconds, a TTL of ten minutes or a lease that runs out
then take no real time, and nothing sleeps hoping that something happened meanwhile.

Example::

    clock = FakeClock(start_ms=1_700_000_000_000)
    engine = Engine(settings, clock=clock)
    ...
    await clock.advance(seconds=8)   # due waitpoints resolve, delayed runs become ready
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["Clock", "FakeClock", "SystemClock", "Timer"]


class Timer(Protocol):
    """A callback scheduled on a clock; :meth:`cancel` stops it if it has not fired."""

    def cancel(self) -> None:
        """Do not fire (no effect once fired)."""
        ...


class Clock(Protocol):
    """Wall time in epoch milliseconds, sleeping and timers — all on the same time line."""

    def now_ms(self) -> int:
        """Epoch milliseconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of this clock's time."""
        ...

    def call_later(self, seconds: float, callback: Callable[[], object]) -> Timer:
        """Call ``callback`` (on the running event loop) after ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real clock: ``time.time()`` and the event loop's timers."""

    def now_ms(self) -> int:
        """Epoch milliseconds from the system clock."""
        return int(time.time() * 1000)

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(seconds)

    def call_later(self, seconds: float, callback: Callable[[], object]) -> Timer:
        """``loop.call_later``."""
        return asyncio.get_running_loop().call_later(max(0.0, seconds), callback)


class _FakeTimer:
    __slots__ = ("callback", "cancelled", "due_ms", "fired")

    def __init__(self, due_ms: int, callback: Callable[[], object]) -> None:
        self.due_ms = due_ms
        self.callback = callback
        self.cancelled = False
        self.fired = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that moves only when told to. For tests.

    ``sleep`` and ``call_later`` register against the fake time line; :meth:`advance` moves
    time forward in order, waking each sleeper and firing each timer whose time has come, and
    lets the event loop run between steps so the code they wake can react (and schedule more)
    before time moves on.
    """

    def __init__(self, start_ms: int | None = None) -> None:
        self._now = int(time.time() * 1000) if start_ms is None else start_ms
        self._heap: list[tuple[int, int, _FakeTimer]] = []
        self._order = itertools.count()
        self._listeners: list[Callable[[int], object]] = []

    def on_advance(self, listener: Callable[[int], object]) -> Callable[[], None]:
        """Call ``listener(new_now_ms)`` (in a thread) each time :meth:`advance` is about to
        move time, before the time moves and before timers fire — e.g. a worker's heartbeat, so
        a live worker's leases already reach past the new time when anything can read it.
        Returns a function that removes the listener."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def now_ms(self) -> int:
        """The fake epoch milliseconds."""
        return self._now

    def call_later(self, seconds: float, callback: Callable[[], object]) -> Timer:
        """Fire ``callback`` when :meth:`advance` reaches ``now + seconds``."""
        timer = _FakeTimer(self._now + max(0, round(seconds * 1000)), callback)
        heapq.heappush(self._heap, (timer.due_ms, next(self._order), timer))
        return timer

    async def sleep(self, seconds: float) -> None:
        """Return once :meth:`advance` has moved time ``seconds`` forward."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self.call_later(seconds, wake)
        try:
            await future
        finally:
            timer.cancel()

    async def advance(self, seconds: float = 0, *, ms: int | None = None) -> None:
        """Move time forward by ``seconds`` (or ``ms``), firing what comes due on the way."""
        target = self._now + (ms if ms is not None else round(seconds * 1000))
        await _settle()
        while self._heap and self._heap[0][0] <= target:
            due, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            await self._moved(due)
            timer.fired = True
            timer.callback()
            await _settle()
        await self._moved(target)
        await _settle()

    async def _moved(self, to_ms: int) -> None:
        if to_ms <= self._now:
            return
        for listener in list(self._listeners):
            # Listeners may block (a heartbeat writes to the database): run them off the event
            # loop, which must stay free to finish the transactions they may wait for. They run
            # before the time moves, so nothing observes the new time without them (a reaper
            # pass between the two would see every live lease expired).
            await asyncio.to_thread(listener, to_ms)
        self._now = to_ms

    def pending(self) -> int:
        """How many live timers and sleepers wait on this clock (tests and diagnostics)."""
        return sum(1 for _, _, t in self._heap if not t.cancelled)


async def _settle(rounds: int = 20) -> None:
    """Let the event loop run what became ready (a few passes, for chains of callbacks)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
