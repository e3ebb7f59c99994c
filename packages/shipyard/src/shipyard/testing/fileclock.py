"""A clock several processes share: the time is a number in a file that a test moves.

Worker processes built with a :class:`FileClock` on the same file see the same time, so a
test can drive time for real worker processes the way :class:`~shipyard.clock.FakeClock` does
within one process (for example: 200 ticks of a per-minute schedule, fired by three worker
processes, in seconds). For tests and benchmarks only.

Example::

    FileClock.write(path, 1_767_225_630_000)        # the test
    engine = Engine(settings, clock=FileClock(path))  # each worker process
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["FileClock"]

# How often a sleeper looks at the file (real seconds).
_LOOK = 0.005


class _Timer:
    def __init__(self, task: asyncio.Task[None]) -> None:
        self.task = task

    def cancel(self) -> None:
        self.task.cancel()


class FileClock:
    """Epoch milliseconds read from ``path``; sleeping waits until the file's time has moved
    on by the amount asked."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @staticmethod
    def write(path: str | Path, now_ms: int) -> None:
        """Set the shared time (atomically: readers never see a half-written number)."""
        target = Path(path)
        temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        temporary.write_text(str(int(now_ms)))
        os.replace(temporary, target)

    def now_ms(self) -> int:
        """The time in the file."""
        return int(self.path.read_text())

    async def sleep(self, seconds: float) -> None:
        """Return once the file's time is ``seconds`` later than now."""
        until = self.now_ms() + round(seconds * 1000)
        # Another process moves the time: nothing here could set an Event, so look.
        while self.now_ms() < until:  # noqa: ASYNC110
            await asyncio.sleep(_LOOK)

    def call_later(self, seconds: float, callback: Callable[[], object]) -> _Timer:
        """Call ``callback`` once the file's time is ``seconds`` later than now."""

        async def later() -> None:
            await self.sleep(seconds)
            callback()

        return _Timer(asyncio.get_running_loop().create_task(later()))
