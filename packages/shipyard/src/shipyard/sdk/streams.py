"""``streams``: send data out of a running task as it is produced, and into it.

Output streams (Trigger.dev's v2 streams): a task appends chunks — LLM tokens, log lines,
partial results — that anyone reads while the run goes on and after it ends. Every run has a
``"default"`` stream; many writers may append to one stream. Chunks are stored durably (at
most 1 MiB each, 300 MiB per stream) and go with their run.

Input streams send data into a running task: ``.wait()`` suspends the run until data arrives
(its slot goes back, like a wait token); ``.once()`` waits without suspending; ``.send()``
works anywhere (at most 1 MiB; data sent before anyone listens is kept; a finished run
refuses it).

Example::

    from shipyard import streams, task

    tokens = streams.define("tokens")
    approval = streams.input("approval")

    @task(id="write-story")
    async def write_story(payload: dict) -> str:
        await tokens.pipe(llm.stream(payload["prompt"]))     # returns when the source ends
        decision = await approval.wait(timeout="1h")          # the run suspends meanwhile
        return "published" if decision.ok and decision.output["ok"] else "dropped"

    # anywhere else
    async for token in tokens.read(handle.id):
        print(token, end="")
    await approval.send(handle.id, {"ok": True})
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any, Generic, TypeVar

from shipyard.engine.scope import current_scope
from shipyard.engine.streams import DEFAULT_STREAM, StreamOps, check_stream_id, wait_for_input
from shipyard.engine.waits import require_durable_scope
from shipyard.errors import NotInRunError, ValidationError
from shipyard.models.handles import RunHandle
from shipyard.models.runs import Run
from shipyard.models.tokens import WaitTokenResult
from shipyard.sdk.backend import current_backend, current_engine

__all__ = ["InputStream", "Stream", "streams"]

T = TypeVar("T")

# pipe() writes what arrived while its previous write was in flight in one transaction, so a
# fast source costs one write per batch rather than per chunk.
_PIPE_BATCH = 500


def _engine() -> StreamOps:
    # Appending needs the engine: inside the run (the usual case) or in a process on the
    # engine's database; the HTTP API has no append route.
    return current_engine("Appending to a stream from outside its run")


def _run_id(run: str | RunHandle | Run) -> str:
    return run if isinstance(run, str) else run.id


def resolve_target(target: str | RunHandle | Run | None) -> str:
    """The run a write goes to: ``"self"`` (the default inside a task), ``"parent"``,
    ``"root"`` or a run id (required outside a task)."""
    scope = current_scope()
    if target is None or target == "self":
        if scope is None:
            raise NotInRunError(
                "Writing a stream outside a task needs target=<run id> (or a run handle)."
            )
        return scope.ctx.run.id
    if target in ("parent", "root"):
        if scope is None:
            raise NotInRunError(f'target="{target}" can only be used inside a task.')
        run = scope.ctx.run
        if target == "parent":
            if run.parent_id is None:
                raise ValidationError(f'Run {run.id} has no parent: target="parent" is invalid.')
            return run.parent_id
        return run.root_id or run.id
    return _run_id(target)


class Stream(Generic[T]):
    """An output stream of runs, named by ``id``: ``append``, ``pipe`` and ``read``."""

    def __init__(self, id: str) -> None:
        self.id = check_stream_id(id)

    async def append(self, value: T, *, target: str | RunHandle | Run | None = None) -> int:
        """Append one chunk; the stream's next index after it."""
        return await _engine().append_stream(resolve_target(target), self.id, [value])

    async def append_many(
        self, values: Iterable[T], *, target: str | RunHandle | Run | None = None
    ) -> int:
        """Append chunks in order, in one write; the stream's next index after them."""
        return await _engine().append_stream(resolve_target(target), self.id, list(values))

    async def pipe(
        self, source: AsyncIterable[T] | Iterable[T], *, target: str | RunHandle | Run | None = None
    ) -> int:
        """Append every chunk of ``source`` as it comes; returns, once ``source`` is exhausted
        and everything is stored, how many chunks were written."""
        engine = _engine()
        run_id = resolve_target(target)
        pending: list[T] = []
        finished = False
        arrived = asyncio.Event()
        drained = asyncio.Event()

        async def writer() -> None:
            # Writes whatever arrived while the previous write was in flight, in one go: a fast
            # source costs one write per batch, a slow one a write per chunk, at once.
            try:
                while True:
                    if not pending:
                        drained.set()
                        if finished:
                            return
                        arrived.clear()
                        await arrived.wait()
                        continue
                    batch = pending[:_PIPE_BATCH]
                    del pending[: len(batch)]
                    await engine.append_stream(run_id, self.id, batch)
            finally:
                drained.set()  # a failed writer must not leave the reader loop waiting

        task = asyncio.ensure_future(writer())
        written = 0
        try:
            async for value in _each(source):
                if task.done():
                    break  # the writer failed: its error is raised below
                pending.append(value)
                written += 1
                arrived.set()
                if len(pending) >= 4 * _PIPE_BATCH:  # the store is slower than the source
                    drained.clear()
                    await drained.wait()
        except BaseException:
            task.cancel()
            raise
        finished = True
        arrived.set()
        await task
        return written

    async def read(
        self,
        run: str | RunHandle | Run,
        *,
        start_index: int = 0,
        timeout_in_seconds: float = 60,
    ) -> AsyncIterator[T]:
        """The stream's chunks from ``start_index`` (0: the first), those stored then each new
        one. Ends after ``timeout_in_seconds`` without a new chunk, or once the run has
        finished and everything was read. Resume with ``start_index`` = chunks read so far.
        """
        async for chunk in current_backend().read_stream(
            _run_id(run), self.id, start_index=start_index, timeout_s=timeout_in_seconds
        ):
            if chunk is not None:
                yield chunk.value


async def _each(source: AsyncIterable[T] | Iterable[T]) -> AsyncIterator[T]:
    if isinstance(source, AsyncIterable):
        async for value in source:
            yield value
    else:
        for value in source:
            yield value


class InputStream(Generic[T]):
    """An input stream of runs, named by ``id``: ``wait`` and ``once`` inside the task,
    ``send`` anywhere."""

    def __init__(self, id: str) -> None:
        self.id = check_stream_id(id)

    async def wait(self, *, timeout: Any = None) -> WaitTokenResult:
        """Wait for the next data sent to this run (kept data first). The run suspends and
        gives its slot back until it arrives (a wait token). ``timeout``: a duration or a
        datetime; none by default. Only inside a task. The result is ``ok`` with ``output``,
        or a timeout ``error``; ``.unwrap()`` returns the data or raises."""
        scope = require_durable_scope(f"streams.input({self.id!r}).wait")
        return await wait_for_input(scope, self.id, timeout)

    async def once(self, *, timeout_ms: int = 60_000) -> WaitTokenResult:
        """Wait for the next data sent to this run (kept data first) without suspending: the
        run keeps its slot. At most ``timeout_ms``; the result is like :meth:`wait`'s."""
        scope = current_scope()
        if scope is None:
            raise NotInRunError(f"streams.input({self.id!r}).once can only be used in a task.")
        if not isinstance(timeout_ms, int | float) or not timeout_ms > 0:
            raise ValidationError(f"timeout_ms must be a positive number; got {timeout_ms!r}.")
        engine = scope.engine
        return await engine.receive_input(scope.ctx.run.id, self.id, timeout_ms / 1000)

    async def send(self, run: str | RunHandle | Run, data: T) -> None:
        """Send ``data`` (JSON, at most 1 MiB) to a run's input stream. Raises
        :class:`~shipyard.errors.RunFinishedError` if the run has finished."""
        await current_backend().send_input(_run_id(run), self.id, data)


class _Streams:
    """The ``streams`` namespace."""

    def define(self, id: str) -> Stream[Any]:
        """An output stream named ``id``."""
        return Stream(id)

    def input(self, id: str) -> InputStream[Any]:
        """An input stream named ``id``."""
        return InputStream(id)

    async def append(
        self, value: Any, *, key: str = DEFAULT_STREAM, target: str | RunHandle | Run | None = None
    ) -> int:
        """Append one chunk to stream ``key`` (the run's ``"default"`` stream)."""
        return await Stream[Any](key).append(value, target=target)

    async def pipe(
        self,
        source: AsyncIterable[Any] | Iterable[Any],
        *,
        key: str = DEFAULT_STREAM,
        target: str | RunHandle | Run | None = None,
    ) -> int:
        """Append every chunk of ``source`` to stream ``key``; how many were written."""
        return await Stream[Any](key).pipe(source, target=target)

    async def read(
        self,
        run: str | RunHandle | Run,
        key: str = DEFAULT_STREAM,
        *,
        start_index: int = 0,
        timeout_in_seconds: float = 60,
    ) -> AsyncIterator[Any]:
        """Read stream ``key`` of a run (see :meth:`Stream.read`)."""
        async for value in Stream[Any](key).read(
            run, start_index=start_index, timeout_in_seconds=timeout_in_seconds
        ):
            yield value


streams = _Streams()
