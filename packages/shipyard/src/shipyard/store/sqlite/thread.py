"""The SQLite store's thread: the one thread that owns the store's main connection.

Every store call hops here once (``StoreThread.call``); background upkeep that no caller
waits for (a WAL checkpoint) is posted with ``StoreThread.post``. ``idle`` says whether a
call is queued or running, so a caller may do a short write on a connection of its own
instead of hopping (``SqliteStore.run_insert``) without overtaking a call it made earlier.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["StoreThread"]


class StoreThread:
    """The one thread that owns the store's connection.

    A bare queue and ``call_soon_threadsafe`` instead of ``run_in_executor``: the hop is on
    every store call, and this halves its cost (one queue put and one loop wake-up).
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        # Calls submitted and calls finished (posted upkeep is not counted): equal when no
        # call is queued or running. Submitters may be several threads, hence the lock.
        self._count_lock = threading.Lock()
        self._submitted = 0
        self._finished = 0

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    thread = threading.Thread(
                        target=self._main, name="shipyard-sqlite", daemon=True
                    )
                    thread.start()
                    self._thread = thread

    def idle(self) -> bool:
        """Whether no call is queued or running (posted upkeep aside)."""
        return self._submitted == self._finished

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the store thread; in submission order."""
        self._ensure_started()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._count_lock:
            self._submitted += 1
        self._queue.put((fn, future, loop))
        return await future

    def post(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the store thread after what is queued; nobody waits for it, and it
        does not make the thread busy for :meth:`idle`. ``fn`` must not raise."""
        self._ensure_started()
        self._queue.put((fn, None, None))

    def _main(self) -> None:
        get = self._queue.get
        while True:
            job = get()
            if job is None:
                return
            fn, future, loop = job
            del job
            if future is None:
                fn()
                continue
            outcome = _outcome(fn, future)
            # Counted before the caller can resume: its next call must see the thread idle.
            with self._count_lock:
                self._finished += 1
            if outcome is not None:
                _deliver(loop, future, *outcome)
            # Hold nothing of a finished call while waiting for the next one.
            del fn, future, loop, outcome

    def shutdown(self) -> None:
        """Finish queued work and stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            if self._thread is not threading.current_thread():
                self._thread.join()


_Job = tuple[Callable[[], Any], Any, Any]


def _outcome(
    fn: Callable[[], Any], future: asyncio.Future[Any]
) -> tuple[Any, BaseException | None] | None:
    """``fn()``'s result or error, or None when its caller gave up (cancelled) first."""
    if future.cancelled():
        return None
    try:
        return fn(), None
    except BaseException as exc:
        return None, exc


def _deliver(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
) -> None:
    # RuntimeError: the loop closed while the call ran, so nobody is waiting.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_set_future, future, result, error)


def _set_future(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        if isinstance(error, StopIteration):  # a future cannot carry StopIteration
            error = RuntimeError(f"StopIteration raised on the store thread: {error}")
        future.set_exception(error)
    else:
        future.set_result(result)
