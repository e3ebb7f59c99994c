"""Coalescing concurrent writes: calls made while a batch is being written go together in the
next one (one transaction, one commit for all), like a database's group commit.

A worker's runs reaching a durable wait at about the same time each create a token and suspend;
alone, every suspend waited for the previous one's commit on the environment's slot row (about
one commit time each, ~100 runs/s). Batched, a few hundred share one commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Coalescer"]

P = TypeVar("P")
R = TypeVar("R")


class Coalescer(Generic[P, R]):
    """Submit items one by one; ``write_many`` gets them in batches and returns, per item, its
    result or the exception to raise in its caller.

    Example::

        creates = Coalescer(write_many)
        record = await creates.submit(params)   # written with the others submitted meanwhile
    """

    def __init__(self, write_many: Callable[[Sequence[P]], Awaitable[Sequence[R | Exception]]]):
        self._write_many = write_many
        self._pending: list[tuple[P, asyncio.Future[R]]] = []
        self._writing = False
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: P) -> R:
        """Write ``item`` with the next batch; its result (or its exception, raised here)."""
        return await self.enqueue(item)

    def enqueue(self, item: P) -> asyncio.Future[R]:
        """:meth:`submit` without a coroutine: ``item`` is queued now; await the future for its
        result. (A caller with two items to send together needs no task for the second.)"""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if not self._writing:
            # The writer starts at the next turn of the loop: items submitted in this turn join
            # the first batch.
            self._writing = True
            self._writer = loop.create_task(self._drain())  # referenced: not collected
        return future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    results: Sequence[R | Exception] = await self._write_many([i for i, _ in batch])
                except Exception as exc:
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():  # the caller was canceled meanwhile
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        except BaseException as exc:  # canceled with the loop: fail every waiting caller
            for _, future in self._pending:
                if not future.done():
                    future.set_exception(RuntimeError(f"batched write interrupted: {exc!r}"))
            self._pending = []
            raise
        finally:
            self._writing = False
