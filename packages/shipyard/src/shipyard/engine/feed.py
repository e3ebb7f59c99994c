"""The feed hub: one reader of the change feed per engine, fanning out to every subscriber of
the process.

However many subscriptions and stream readers a process serves, the hub makes at most two
queries per wake-up — the feed since its position, and the heads of the streams being read —
and delivers what it read to each interested subscriber's bounded buffer. It is woken by the
store (PostgreSQL ``LISTEN``; SQLite after this process's commits) and looks anyway every
``poll_interval`` (SQLite: 25 ms, for other processes' commits; PostgreSQL: 1 s, for
notifications lost while its connection was down). It starts with its first subscriber and
stops when the last one leaves.

Backpressure: a subscriber whose buffer is full stops receiving; once it has drained what it
holds, :meth:`Subscriber.get` returns :data:`OVERFLOW`, and its owner resumes from the last
position it delivered by reading the store (``engine/realtime.py``). Nobody else waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.errors import ShipyardError
from shipyard.jsonutil import dumps, loads
from shipyard.metadata_ops import apply_ops, op_from_dict
from shipyard.records import RunRecord
from shipyard.statuses import FINAL_STATUSES
from shipyard.store.feed import (
    FeedEventRecord,
    FeedHistoryParams,
    FeedPage,
    FeedReadParams,
    StreamChunkRecord,
    StreamHeadsParams,
    StreamReadParams,
)
from shipyard.store.protocol import FeedListener

if TYPE_CHECKING:
    from shipyard.engine.base import EngineBase

__all__ = [
    "CLOSED",
    "END",
    "OVERFLOW",
    "ChunkReader",
    "FeedHub",
    "FeedItem",
    "Subscriber",
    "annotate",
    "event_metadata",
    "replay",
]

log = logging.getLogger("shipyard.realtime")

OVERFLOW = "overflow"
"""The subscriber fell behind: resume from the last position delivered."""
CLOSED = "closed"
"""The engine is closing: stop."""
END = "end"
"""A stream reader's run has finished and every chunk has been read."""

SUBSCRIBER_BUFFER = 1000
"""Items a subscriber may hold before it is told to resume from the store."""
_PAGE = 500
_METADATA_BASES = 10_000
_FINAL = frozenset(str(s) for s in FINAL_STATUSES)


@dataclass(slots=True, eq=False)
class FeedItem:
    """One feed event as the hub delivers it: the event, its run as of the hub's read, the
    run's metadata and tags as of the event when known (else None: the run's), and a cache
    the readers fill (the built update, its encoded forms) so each is made once."""

    event: FeedEventRecord
    run: RunRecord | None
    metadata: dict[str, Any] | None = None
    tags: tuple[str, ...] | None = None
    cache: dict[str, Any] = field(default_factory=dict)


class _Buffer:
    """A bounded buffer one consumer awaits: past ``capacity`` data items it overflows (it
    keeps what it holds, then :data:`OVERFLOW`). Waiting costs a future and, with a timeout,
    a timer handle — no task — so an idle subscriber is cheap."""

    __slots__ = ("_waiter", "capacity", "items", "overflowed")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: deque[Any] = deque()
        self.overflowed = False
        self._waiter: asyncio.Future[None] | None = None

    def _push(self, item: Any, data: bool) -> None:
        if self.overflowed:
            return
        if data and len(self.items) >= self.capacity:
            self.overflowed = True
            self.items.append(OVERFLOW)
        else:
            self.items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _get(self, timeout: float | None) -> Any:
        if not self.items:
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiter = waiter
            timer = loop.call_later(timeout, _expire, waiter) if timeout is not None else None
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
            if not self.items:
                return None
        return self.items.popleft()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Subscriber(_Buffer):
    """A subscription's bounded buffer of feed items, filtered by run ids, or by tags (any
    of) and creation time, and by event kind."""

    __slots__ = ("created_from", "kinds", "run_ids", "tags")

    def __init__(
        self,
        *,
        run_ids: Iterable[str] | None = None,
        tags: Iterable[str] | None = None,
        created_from: int | None = None,
        kinds: Iterable[str] = ("created", "status", "metadata", "tag"),
        capacity: int = SUBSCRIBER_BUFFER,
    ) -> None:
        super().__init__(capacity)
        self.run_ids = frozenset(run_ids) if run_ids is not None else None
        self.tags = frozenset(tags) if tags is not None else None
        self.created_from = created_from
        self.kinds = frozenset(kinds)

    def matches(self, item: FeedItem) -> bool:
        """Whether the item is for this subscription."""
        if item.event.kind not in self.kinds:
            return False
        if self.run_ids is not None:
            return item.event.run_id in self.run_ids
        run = item.run
        if run is None:
            return False
        if self.created_from is not None and run.created_at < self.created_from:
            return False
        if self.tags is None:
            return True
        return not self.tags.isdisjoint(loads(run.tags) or ())

    def offer(self, item: FeedItem | str) -> None:
        """Buffer an item; past capacity, mark the subscriber as overflowed instead."""
        self._push(item, isinstance(item, FeedItem))

    async def get(self, timeout: float | None = None) -> FeedItem | str | None:
        """The next item, :data:`OVERFLOW`/:data:`CLOSED`, or None after ``timeout`` seconds."""
        item: FeedItem | str | None = await self._get(timeout)
        return item


class ChunkReader(_Buffer):
    """A stream reader's bounded buffer of chunks; ``join_index`` is the first index the hub
    delivers to it (it reads the ones before from the store)."""

    __slots__ = ("join_index",)

    def __init__(self, capacity: int = SUBSCRIBER_BUFFER) -> None:
        super().__init__(capacity)
        self.join_index = 0

    def offer(self, item: StreamChunkRecord | str) -> None:
        """Buffer a chunk (or :data:`END`); past capacity, mark the reader as overflowed."""
        self._push(item, isinstance(item, StreamChunkRecord))

    async def get(self, timeout: float | None) -> StreamChunkRecord | str | None:
        """The next chunk, a marker, or None after ``timeout`` seconds without one."""
        item: StreamChunkRecord | str | None = await self._get(timeout)
        return item


@dataclass(slots=True, eq=False)
class _Tap:
    """One stream being read in this process: the next index the hub will read, whether the
    run has finished and all of it was read, and its readers."""

    run_id: str
    stream_id: str
    read_index: int
    ended: bool = False
    readers: set[ChunkReader] = field(default_factory=set)


class FeedHub:
    """The process's one reader of an environment's change feed (see the module docstring)."""

    def __init__(self, engine: EngineBase) -> None:
        self._engine = engine
        self._by_run: dict[str, set[Subscriber]] = {}
        self._wide: set[Subscriber] = set()
        self._taps: dict[tuple[str, str], _Tap] = {}
        self._task: asyncio.Task[None] | None = None
        self._listener: FeedListener | None = None
        self._start_lock = asyncio.Lock()
        self._position = ""
        self._poke = asyncio.Event()
        # Metadata of runs subscribers follow, as of the hub's position: the base the metadata
        # events' operations apply to, so each update carries the metadata of its moment.
        self._metadata: OrderedDict[str, str] = OrderedDict()
        self.reads = 0  # feed reads made (tests and benchmarks count them)

    # -- membership -----------------------------------------------------------------------------

    async def add(self, subscriber: Subscriber) -> None:
        """Deliver feed items to ``subscriber`` from now on (starts the hub if needed)."""
        if subscriber.run_ids is not None:
            for run_id in subscriber.run_ids:
                self._by_run.setdefault(run_id, set()).add(subscriber)
        else:
            self._wide.add(subscriber)
        await self._ensure_running()

    def remove(self, subscriber: Subscriber) -> None:
        """Stop delivering to ``subscriber``."""
        self._wide.discard(subscriber)
        for run_id in subscriber.run_ids or ():
            group = self._by_run.get(run_id)
            if group is not None:
                group.discard(subscriber)
                if not group:
                    del self._by_run[run_id]

    async def add_reader(self, run_id: str, stream_id: str, reader: ChunkReader) -> None:
        """Deliver a stream's chunks from the hub's next read on to ``reader`` (its
        ``join_index`` says from which index); :data:`END` when the run has finished and
        everything was read."""
        key = (run_id, stream_id)
        tap = self._taps.get(key)
        if tap is None:
            heads = await self._engine.store.stream_heads(
                StreamHeadsParams(environment=self._engine.environment, run_ids=[run_id])
            )
            head = heads.get(run_id)
            next_index = head.next_index.get(stream_id, 0) if head else 0
            tap = self._taps.get(key)  # another reader may have made it meanwhile
            if tap is None:
                tap = _Tap(run_id, stream_id, next_index)
                self._taps[key] = tap
        reader.join_index = tap.read_index
        tap.readers.add(reader)
        if tap.ended:
            reader.offer(END)
        await self._ensure_running()
        self._poke.set()

    def remove_reader(self, run_id: str, stream_id: str, reader: ChunkReader) -> None:
        """Stop delivering to ``reader``."""
        tap = self._taps.get((run_id, stream_id))
        if tap is not None:
            tap.readers.discard(reader)
            if not tap.readers:
                del self._taps[(run_id, stream_id)]

    def _has_interest(self) -> bool:
        return bool(self._by_run or self._wide or self._taps)

    # -- the loop -------------------------------------------------------------------------------

    async def _ensure_running(self) -> None:
        if self._task is not None and not self._task.done():
            return
        async with self._start_lock:
            if self._task is not None and not self._task.done():
                return
            store = self._engine.store
            # Listen first: a change committed while the head is read still wakes the loop.
            self._listener = await store.feed_listen()
            self._position = await store.feed_head(self._engine.environment)
            self._task = asyncio.create_task(self._run(self._listener), name="shipyard-feed")

    async def _run(self, listener: FeedListener) -> None:
        backoff = 0.1
        failing = False
        again = False
        try:
            while True:
                if not again:
                    await self._wait(listener)
                if not self._has_interest():
                    return
                try:
                    again = await self._read_feed()
                    again = await self._read_streams() or again
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not failing:
                        log.warning("realtime feed read failed: %s (retrying)", exc)
                        failing = True
                    again = False
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if failing:
                    log.warning("realtime feed reads work again")
                    failing = False
                backoff = 0.1
        finally:
            listener.close()
            if self._listener is listener:
                self._listener = None

    async def _wait(self, listener: FeedListener) -> None:
        if self._poke.is_set():
            self._poke.clear()
            return
        poke = asyncio.ensure_future(self._poke.wait())
        woken = asyncio.ensure_future(listener.wait(listener.poll_interval))
        try:
            await asyncio.wait({poke, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (poke, woken):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        self._poke.clear()

    async def close(self) -> None:
        """Stop reading; every subscriber and reader gets :data:`CLOSED`."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for subscriber in {*self._wide, *(s for g in self._by_run.values() for s in g)}:
            subscriber.offer(CLOSED)
        for tap in self._taps.values():
            for reader in tap.readers:
                reader.offer(CLOSED)

    # -- reading --------------------------------------------------------------------------------

    async def _read_feed(self) -> bool:
        """Read the feed once and deliver it; True if more was left to read."""
        if not (self._by_run or self._wide):
            return False
        engine = self._engine
        page = await engine.store.feed_read(
            FeedReadParams(environment=engine.environment, after=self._position, limit=_PAGE)
        )
        self.reads += 1
        self._position = page.position
        if page.events:
            await self._deliver(page)
        return page.more

    async def _deliver(self, page: FeedPage) -> None:
        targets: list[tuple[FeedItem, list[Subscriber]]] = []
        for event in page.events:
            item = FeedItem(event, page.runs.get(event.run_id))
            interested = [
                s for s in (*self._by_run.get(event.run_id, ()), *self._wide) if s.matches(item)
            ]
            if interested:
                targets.append((item, interested))
            else:
                # Nobody follows this run's metadata now: a base kept from before would miss
                # this event's operations.
                self._metadata.pop(event.run_id, None)
        if not targets:
            return
        await annotate(self._engine, [item for item, _ in targets], page.runs, self._metadata)
        for item, interested in targets:
            for subscriber in interested:
                subscriber.offer(item)

    async def _read_streams(self) -> bool:
        """Read the streams being read once and deliver their new chunks; True if more."""
        if not self._taps:
            return False
        engine = self._engine
        taps = list(self._taps.values())
        heads = await engine.store.stream_heads(
            StreamHeadsParams(environment=engine.environment, run_ids=[t.run_id for t in taps])
        )
        more = False
        for tap in taps:
            if tap.ended:
                continue
            head = heads.get(tap.run_id)
            if head is None:  # the run is gone
                self._end(tap)
                continue
            next_index = head.next_index.get(tap.stream_id, 0)
            if tap.read_index < next_index:
                chunks = await engine.store.stream_read(
                    StreamReadParams(
                        environment=engine.environment,
                        run_id=tap.run_id,
                        stream_id=tap.stream_id,
                        start=tap.read_index,
                        limit=_PAGE,
                    )
                )
                for chunk in chunks:
                    if chunk.index != tap.read_index:
                        break  # never skip: the next read starts at read_index again
                    tap.read_index += 1
                    for reader in tap.readers:
                        reader.offer(chunk)
                more = more or tap.read_index < next_index
            elif head.status in _FINAL:
                self._end(tap)
        return more

    def _end(self, tap: _Tap) -> None:
        tap.ended = True
        for reader in tap.readers:
            reader.offer(END)


async def annotate(
    engine: EngineBase,
    items: list[FeedItem],
    runs: dict[str, RunRecord],
    bases: OrderedDict[str, str] | None = None,
) -> None:
    """Give each item the metadata and tags its run had at that event.

    Metadata: each metadata event's operations applied in order to the run's metadata before
    the first of them — from ``bases`` (the hub's, as of its previous read) or replayed from
    the run's history (its creation's metadata and every change since) — and kept only if
    the result is the run's metadata as read with the items (else the run's metadata is used:
    coalesced). Tags: the run's, less those later tag events of ``items`` added.
    """
    by_run: dict[str, list[FeedItem]] = {}
    for item in items:
        by_run.setdefault(item.event.run_id, []).append(item)
    missing = {
        run_id: run_items[0].event.id
        for run_id, run_items in by_run.items()
        if (bases is None or run_id not in bases)
        and any(i.event.kind == "metadata" for i in run_items)
    }
    history = (
        await engine.store.feed_metadata_history(
            FeedHistoryParams(environment=engine.environment, before=missing)
        )
        if missing
        else {}
    )
    for run_id, run_items in by_run.items():
        record = runs.get(run_id)
        if record is None:
            continue
        base = bases.pop(run_id, None) if bases is not None else None
        if base is None and run_id in history:
            base = replay(history[run_id])
        if base is not None:
            values = event_metadata(base, [i.event for i in run_items])
            if values is not None and values[-1] == (loads(record.metadata) or {}):
                for item, value in zip(run_items, values, strict=True):
                    item.metadata = value
        if bases is not None:
            bases[run_id] = record.metadata
            while len(bases) > _METADATA_BASES:
                bases.popitem(last=False)
        tags = list(loads(record.tags) or ())
        for item in reversed(run_items):
            item.tags = tuple(tags)
            if item.event.kind == "tag":
                added = set(item.event.message.split(","))
                tags = [t for t in tags if t not in added]


def replay(history: list[tuple[str, str | None]]) -> str | None:
    """A run's metadata (JSON text) from its creation's and each change's operations; None
    if they cannot be read back (then the caller coalesces)."""
    current: dict[str, Any] = {}
    for kind, attributes in history:
        if kind == "created":
            current = loads(attributes) or {}
            continue
        try:
            ops = [op_from_dict(d) for d in loads(attributes) or ()]
        except ShipyardError:
            return None
        current, _ = apply_ops(current, ops)
    return dumps(current, max_depth=None)


def event_metadata(base: str, events: list[FeedEventRecord]) -> list[dict[str, Any]] | None:
    """The metadata after each of ``events``, starting from ``base`` (JSON text); None if an
    event's operations cannot be read back."""
    current: dict[str, Any] = loads(base) or {}
    values: list[dict[str, Any]] = []
    for event in events:
        if event.kind == "metadata":
            try:
                ops = [op_from_dict(d) for d in loads(event.attributes) or ()]
            except ShipyardError:
                return None
            current, _ = apply_ops(current, ops)
        values.append(current)
    return values
