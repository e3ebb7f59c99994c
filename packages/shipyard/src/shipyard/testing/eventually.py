"""``eventually``: wait for an effect by polling with a deadline, never by sleeping blindly.

Example::

    run = await eventually(lambda: runs.retrieve(handle.id), until=lambda r: r.is_completed)
    await eventually(lambda: worker.completed == 3)
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["eventually"]

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Any],
    *,
    until: Callable[[Any], object] | None = None,
    timeout: float = 10.0,
    interval: float = 0.01,
    message: str | None = None,
) -> Any:
    """Call ``probe`` (sync or async) until its value is truthy — or satisfies ``until`` — and
    return that value; raise :class:`AssertionError` after ``timeout`` seconds with the last
    value seen. The interval grows from ``interval`` to 0.1 s, so fast effects are seen fast.
    """
    deadline = time.monotonic() + timeout
    pause = interval
    last: Any = None
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        last = value
        ok = until(value) if until is not None else value
        if ok:
            return value
        if time.monotonic() > deadline:
            what = message or getattr(probe, "__qualname__", "condition")
            raise AssertionError(f"{what} not met within {timeout} s (last value: {last!r:.300})")
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, 0.1)
