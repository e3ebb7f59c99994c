"""Streams (Trigger.dev's v2 semantics): output streams a run's code (or anyone naming the run)
appends chunks to and anyone reads, and input streams that send data into a running task.

Output streams are stored durably (``stream_chunks``: run, stream id, a dense index assigned
atomically, the chunk's JSON, its time), readable while being written and after the run ends,
and go with their run. Limits: a chunk is at most 1 MiB of JSON, a stream at most 300 MiB.
Readers are served by the feed hub: one store read per stream per wake-up, whatever the
number of readers.

Input streams: data sent to a run (at most 1 MiB; a finished run refuses it) completes the
oldest ``.wait()`` suspended on the stream — a wait token, so the run gives its slot back
while it waits — or is kept until a listener takes it (``.wait()`` or ``.once()``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from shipyard.durations import resolve_time
from shipyard.engine.feed import CLOSED, END, OVERFLOW, ChunkReader, FeedItem, Subscriber
from shipyard.engine.options import check_text
from shipyard.engine.realtime import RealtimeOps
from shipyard.engine.scope import RunScope
from shipyard.engine.waitpoints import token_error
from shipyard.engine.waits import durable_call
from shipyard.errors import PayloadTooLargeError, ValidationError, WaitpointTimeoutError
from shipyard.ids import new_id
from shipyard.jsonutil import byte_size, dumps, loads
from shipyard.models.realtime import StreamChunk
from shipyard.models.tokens import WaitTokenResult
from shipyard.records import WaitpointRecord
from shipyard.statuses import FINAL_STATUSES
from shipyard.store.feed import (
    InputSendParams,
    InputTakeParams,
    InputWaitParams,
    StreamAppendParams,
    StreamHeadsParams,
    StreamReadParams,
)

__all__ = [
    "CHUNK_MAX_BYTES",
    "DEFAULT_STREAM",
    "INPUT_MAX_BYTES",
    "STREAM_MAX_BYTES",
    "StreamOps",
    "wait_for_input",
]

DEFAULT_STREAM = "default"
"""Every run has this stream."""
CHUNK_MAX_BYTES = 1024 * 1024
"""A chunk is at most 1 MiB of JSON."""
STREAM_MAX_BYTES = 300 * 1024 * 1024
"""A stream holds at most 300 MiB of chunks (Trigger.dev's limit)."""
INPUT_MAX_BYTES = 1024 * 1024
"""Data sent to an input stream is at most 1 MiB of JSON (Trigger.dev's limit)."""
_PAGE = 500
_FINAL = frozenset(str(s) for s in FINAL_STATUSES)


def check_stream_id(stream_id: object) -> str:
    """A stream id: 1–128 characters, no NUL, no ``/``."""
    value = check_text(stream_id, "stream id", max_length=128)
    if "/" in value:
        raise ValidationError(f"A stream id cannot contain '/'; got {value!r}.", param="streamId")
    return value


class StreamOps(RealtimeOps):
    """Output streams and input streams (see the module docstring)."""

    # -- output streams -------------------------------------------------------------------------

    async def append_stream(self, run_id: str, stream_id: str, values: Sequence[Any]) -> int:
        """Append ``values`` (JSON-serialisable) to a run's stream, in order, at once; the
        stream's next index after them."""
        check_text(run_id, "run id")
        check_stream_id(stream_id)
        chunks = []
        for value in values:
            text = dumps(value, what="A stream chunk")
            size = byte_size(text)
            if size > CHUNK_MAX_BYTES:
                raise PayloadTooLargeError(
                    f"A stream chunk is {size:,} bytes; the limit is {CHUNK_MAX_BYTES:,} bytes "
                    "(1 MiB).",
                    limit=CHUNK_MAX_BYTES,
                    size=size,
                )
            chunks.append(text)
        if not chunks:
            raise ValidationError("Nothing to append: give at least one value.")
        await self.start()
        return await self.store.stream_append(
            StreamAppendParams(
                environment=self.environment,
                run_id=run_id,
                stream_id=stream_id,
                chunks=chunks,
                now=self.now(),
                max_bytes=STREAM_MAX_BYTES,
            )
        )

    async def run_streams(self, run_id: str) -> dict[str, int]:
        """A run's output streams: each stream id (sorted) and how many chunks it holds;
        :class:`~shipyard.errors.RunNotFoundError` for an unknown run."""
        record = await self.get_run(run_id)
        heads = await self.store.stream_heads(
            StreamHeadsParams(environment=self.environment, run_ids=[record.id])
        )
        head = heads.get(record.id)
        return dict(sorted(head.next_index.items())) if head is not None else {}

    async def read_stream(
        self,
        run_id: str,
        stream_id: str = DEFAULT_STREAM,
        *,
        start_index: int = 0,
        timeout_s: float = 60.0,
        heartbeat_s: float | None = None,
    ) -> AsyncIterator[StreamChunk | None]:
        """A stream's chunks from ``start_index``: what is stored, then each new one as it is
        appended. Ends after ``timeout_s`` real seconds without a chunk, or once the run has
        finished and every chunk has been read. With ``heartbeat_s``, None after each
        ``heartbeat_s`` without a chunk (for keep-alives)."""
        check_stream_id(stream_id)
        if not isinstance(start_index, int) or isinstance(start_index, bool) or start_index < 0:
            raise ValidationError(f"start_index must be an integer >= 0; got {start_index!r}.")
        if not timeout_s > 0:
            raise ValidationError(f"The read timeout must be positive; got {timeout_s!r}.")
        await self.get_run(run_id)
        hub = self.feed_hub
        index = start_index
        while True:
            reader = ChunkReader()
            await hub.add_reader(run_id, stream_id, reader)
            try:
                while index < reader.join_index:  # stored before the hub's next read
                    chunks = await self.store.stream_read(
                        StreamReadParams(
                            environment=self.environment,
                            run_id=run_id,
                            stream_id=stream_id,
                            start=index,
                            limit=min(_PAGE, reader.join_index - index),
                        )
                    )
                    if not chunks:
                        break
                    for chunk in chunks:
                        yield StreamChunk(chunk.index, loads(chunk.data))
                        index = chunk.index + 1
                quiet_until = time.monotonic() + timeout_s
                while True:
                    remaining = quiet_until - time.monotonic()
                    if remaining <= 0:
                        return
                    item = await reader.get(
                        remaining if heartbeat_s is None else min(heartbeat_s, remaining)
                    )
                    if item is None:
                        if heartbeat_s is not None and time.monotonic() < quiet_until:
                            yield None
                        continue
                    if item in (END, CLOSED):
                        return
                    if item == OVERFLOW or isinstance(item, str):
                        break  # fell behind: read on from the store
                    if item.index < index:
                        continue
                    if item.index > index:
                        break  # cannot happen (chunks arrive in order); read from the store
                    yield StreamChunk(item.index, loads(item.data))
                    index = item.index + 1
                    quiet_until = time.monotonic() + timeout_s
            finally:
                hub.remove_reader(run_id, stream_id, reader)

    # -- input streams --------------------------------------------------------------------------

    async def send_input(self, run_id: str, stream_id: str, data: Any) -> bool:
        """Send ``data`` to a run's input stream; True if it resumed a waiting ``.wait()``."""
        check_text(run_id, "run id")
        check_stream_id(stream_id)
        text = dumps(data, what="Input stream data")
        size = byte_size(text)
        if size > INPUT_MAX_BYTES:
            raise PayloadTooLargeError(
                f"Input stream data is {size:,} bytes; the limit is {INPUT_MAX_BYTES:,} bytes "
                "(1 MiB).",
                limit=INPUT_MAX_BYTES,
                size=size,
            )
        await self.start()
        result = await self.store.input_send(
            InputSendParams(
                environment=self.environment,
                run_id=run_id,
                stream_id=stream_id,
                data=text,
                now=self.now(),
                final_statuses=_FINAL,
            )
        )
        return result.delivered_to_wait

    async def take_input(self, run_id: str, stream_id: str) -> tuple[bool, Any]:
        """The oldest data kept for a run's input stream: ``(True, data)``, or ``(False,
        None)`` when there is none."""
        text = await self.store.input_take(
            InputTakeParams(
                environment=self.environment, run_id=run_id, stream_id=stream_id, now=self.now()
            )
        )
        return (False, None) if text is None else (True, loads(text))

    async def receive_input(self, run_id: str, stream_id: str, timeout_s: float) -> WaitTokenResult:
        """The next data sent to a run's input stream (kept data first), waiting up to
        ``timeout_s`` real seconds without suspending the run."""
        check_stream_id(stream_id)
        deadline = time.monotonic() + timeout_s
        subscriber = Subscriber(run_ids=[run_id], kinds=("input",))
        hub = self.feed_hub
        await hub.add(subscriber)  # before taking: a send in between still wakes us
        try:
            while True:
                found, value = await self.take_input(run_id, stream_id)
                if found:
                    return WaitTokenResult(ok=True, output=value)
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return WaitTokenResult(ok=False, error=_no_input(stream_id, timeout_s))
                    item = await subscriber.get(remaining)
                    if item is None:
                        continue
                    if item == CLOSED:
                        return WaitTokenResult(ok=False, error=_no_input(stream_id, timeout_s))
                    if item == OVERFLOW or (
                        isinstance(item, FeedItem) and item.event.message == stream_id
                    ):
                        if item == OVERFLOW:
                            hub.remove(subscriber)
                            subscriber = Subscriber(run_ids=[run_id], kinds=("input",))
                            await hub.add(subscriber)
                        break
        finally:
            hub.remove(subscriber)

    async def input_token(
        self, run_id: str, stream_id: str, idempotency_key: str, timeout: Any = None
    ) -> WaitpointRecord:
        """The token a ``.wait()`` of an input stream blocks on (completed at once when data
        was kept); the same ``idempotency_key`` returns the same token."""
        now = self.now()
        return await self.store.input_wait(
            InputWaitParams(
                environment=self.environment,
                run_id=run_id,
                stream_id=stream_id,
                waitpoint_id=new_id("waitpoint"),
                idempotency_key=idempotency_key,
                now=now,
                timeout_at=resolve_time(timeout, now) if timeout is not None else None,
            )
        )


def _no_input(stream_id: str, timeout_s: float) -> WaitpointTimeoutError:
    return WaitpointTimeoutError(
        f"No data arrived on input stream '{stream_id}' within {timeout_s:g} s."
    )


async def wait_for_input(scope: RunScope, stream_id: str, timeout: Any) -> WaitTokenResult:
    """``.wait()``: a durable wait on a token a send completes; the run suspends (its slot
    goes back) until data arrives or ``timeout`` passes."""
    engine = scope.engine
    assert isinstance(engine, StreamOps)
    run_id = scope.ctx.run.id
    driver = scope.waits
    assert driver is not None

    async def create() -> str:
        # The durable call's own sequence number: a replay of this call finds the same token.
        key = f"shipyard:input:{run_id}:{driver.attempt_number()}:{scope.wait_seq - 1}"
        token = await engine.input_token(run_id, stream_id, key, timeout)
        return token.id

    waitpoint = await durable_call(
        scope,
        f"streams.input({stream_id}).wait",
        create,
        lambda wp: {"type": "token", "token": {"id": wp.id}},
    )
    if waitpoint.status == "COMPLETED":
        return WaitTokenResult(ok=True, output=loads(waitpoint.output))
    return WaitTokenResult(ok=False, error=token_error(waitpoint))
