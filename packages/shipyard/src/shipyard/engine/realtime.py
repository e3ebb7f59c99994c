"""Realtime subscriptions: a run, the runs with a tag, a batch — as async iterators of
:class:`~shipyard.models.realtime.RunChange`, served by the process's feed hub
(``engine/feed.py``) and resumable from any change's ``position``.

A subscription starts with a *snapshot* — the matching runs as they are, read with the feed
position they are current at — then follows the feed live, skipping what the snapshot already
showed. Each change carries the position to resume from (the SSE event id). A position
``P~r`` means "runs up to id ``r`` (in id order) are known as of feed position ``P``; the
others are not yet": resuming from it reads the rest of the snapshot afresh and the known
runs' events after ``P``, so a client that reconnects in the middle of a snapshot loses and
repeats nothing. A plain position means "everything as of it".

Status is taken from each event, never only from re-reading the row, so every status change
is delivered, in order, even when several happen between two reads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.durations import parse_duration_ms
from shipyard.engine.feed import CLOSED, OVERFLOW, FeedHub, FeedItem, Subscriber, annotate
from shipyard.engine.options import check_text, validate_tags
from shipyard.engine.waitpoints import WaitpointOps
from shipyard.errors import TooManyTagsError, ValidationError
from shipyard.models.realtime import RealtimeRun, RunChange
from shipyard.models.runs import to_datetime
from shipyard.records import RunRecord
from shipyard.statuses import FINAL_STATUSES, RunStatus
from shipyard.store.feed import FeedReadParams, FeedSnapshotParams, parse_position

__all__ = ["MAX_TAG_WINDOW_MS", "SNAPSHOT_LIMIT", "RealtimeOps", "realtime_run"]

SNAPSHOT_LIMIT = 1000
"""At most this many runs (the newest) start a tag subscription."""
MAX_TAG_WINDOW_MS = 7 * 86_400_000
"""A tag subscription's ``created_at`` window is at most a week (Trigger.dev's limit)."""
_PAGE = 500
_RUN_KINDS = ("created", "status", "metadata", "tag")
_FINAL = frozenset(str(s) for s in FINAL_STATUSES)


@dataclass(frozen=True, slots=True)
class _Filter:
    """Which runs a subscription follows: ``run_ids``, or ``tags`` (any of) created from."""

    run_ids: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    created_from: int | None = None

    def subscriber(self) -> Subscriber:
        return Subscriber(
            run_ids=self.run_ids, tags=self.tags, created_from=self.created_from, kinds=_RUN_KINDS
        )


def realtime_run(
    record: RunRecord,
    status: str | None,
    *,
    metadata: dict[str, Any] | None = None,
    tags: tuple[str, ...] | None = None,
    ts: int | None = None,
    now_ms: int | None = None,
    started: bool = True,
) -> RealtimeRun:
    """The run as of a change: ``status`` from the change (None: the row's), metadata and tags
    as of it when known; output, error and finish time only once the change's status has
    them; a run that had not started yet (``started``) has no start time, version or cost."""
    changes: dict[str, Any] = {}
    if not started:
        # Set by the first claim: as of an earlier change they were not there yet.
        record = dataclasses.replace(record, started_at=None, version=None, attempt_number=0)
    if status is not None and status != record.status:
        changes.update(status=RunStatus(status), output=None, error=None)
        if status not in _FINAL:
            # Not finished as of the change: time it (duration, cost) up to the change.
            record = dataclasses.replace(record, finished_at=None)
    run = RealtimeRun.from_record(record, now_ms=now_ms)
    assert isinstance(run, RealtimeRun)  # from_record builds the class it is called on
    if ts is not None:
        changes["updated_at"] = to_datetime(ts)
    if metadata is not None:
        changes["metadata"] = metadata
    if tags is not None:
        changes["tags"] = tags
    return dataclasses.replace(run, **changes) if changes else run


def _parse_token(token: str | None) -> tuple[str | None, str | None]:
    """``(position, known_up_to)``: known_up_to None means every run is known as of position;
    "" that none is (a fresh start)."""
    if token is None:
        return None, ""
    if not isinstance(token, str) or len(token) > 100_000:
        raise ValidationError("A resume position must be text.", param="position")
    if "~" not in token:
        parse_position(token)
        return token, None
    position, known = token.rsplit("~", 1)
    parse_position(position)
    check_text(known, "resume position's run id")
    return position, known


class RealtimeOps(WaitpointOps):
    """Subscriptions to runs, tags and batches (see the module docstring)."""

    _hub: FeedHub | None = None

    @property
    def feed_hub(self) -> FeedHub:
        """This engine's feed hub (made on first use)."""
        if self._hub is None:
            self._hub = FeedHub(self)
        return self._hub

    async def close(self) -> None:
        """Stop the feed hub (every subscription ends), then close the store."""
        if self._hub is not None:
            await self._hub.close()
        await super().close()

    # -- subscriptions --------------------------------------------------------------------------

    def check_position(self, position: str | None) -> str | None:
        """``position`` if it is one a subscription can resume from (None stays None);
        :class:`ValidationError` otherwise."""
        _parse_token(position)
        return position

    def check_tag_window(self, created_at: Any) -> int:
        """A tag subscription's ``created_at`` window in ms (a duration, at most a week)."""
        window = parse_duration_ms(created_at)
        if window > MAX_TAG_WINDOW_MS:
            raise ValidationError(
                f"created_at can be at most a week (7d); got {created_at!r}.", param="createdAt"
            )
        return window

    async def subscribe_run(
        self,
        run_id: str,
        *,
        after: str | None = None,
        stop_on_completion: bool = True,
        heartbeat_s: float | None = None,
    ) -> AsyncIterator[RunChange | None]:
        """A run's changes: first the run as it is, then each change. Ends after the run's
        final status when ``stop_on_completion`` (a canceled run ends it too). With
        ``heartbeat_s``, None after each ``heartbeat_s`` without a change (for keep-alives)."""
        await self.get_run(run_id)
        flt = _Filter(run_ids=(run_id,))
        async for change in self._follow(flt, after, stop_on_completion, heartbeat_s):
            yield change

    async def subscribe_tags(
        self,
        tags: str | Sequence[str],
        *,
        created_at: Any = "1d",
        after: str | None = None,
        heartbeat_s: float | None = None,
    ) -> AsyncIterator[RunChange | None]:
        """Runs having any of ``tags`` created within ``created_at`` (a duration, at most a
        week, counted from now): first as they are (the newest 1,000), then each change and
        each new run. Never ends. ``heartbeat_s``: as for :meth:`subscribe_run`."""
        wanted = validate_tags(tags)
        if not wanted:
            raise TooManyTagsError("Subscribe to at least one tag.")
        window = self.check_tag_window(created_at)
        await self.start()
        flt = _Filter(tags=wanted, created_from=self.now() - window)
        async for change in self._follow(flt, after, False, heartbeat_s):
            yield change

    async def subscribe_batch(
        self, batch_id: str, *, after: str | None = None, heartbeat_s: float | None = None
    ) -> AsyncIterator[RunChange | None]:
        """A batch's runs: first as they are, then each change. Never ends. ``heartbeat_s``:
        as for :meth:`subscribe_run`."""
        batch = await self.retrieve_batch(batch_id)
        flt = _Filter(run_ids=tuple(batch.runs))
        async for change in self._follow(flt, after, False, heartbeat_s):
            yield change

    async def feed_position(self) -> str:
        """The change feed's position now: :meth:`subscribe_runs` from it misses nothing that
        changes after this call (read it before a list the subscription will keep current)."""
        await self.start()
        return await self.store.feed_head(self.environment)

    async def subscribe_runs(
        self, *, after: str | None = None, heartbeat_s: float | None = None
    ) -> AsyncIterator[RunChange | None]:
        """Every run of the environment, from now (or after ``after``): each new run and each
        change, without a snapshot (a list of runs already shows them). Never ends.
        ``heartbeat_s``: as for :meth:`subscribe_run`."""
        if after is None:
            after = await self.feed_position()
        elif "~" in after:
            raise ValidationError("A resume position of every run has no '~'.", param="position")
        async for change in self._follow(_Filter(), self.check_position(after), False, heartbeat_s):
            yield change

    # -- following the feed -----------------------------------------------------------------

    async def _follow(
        self, flt: _Filter, token: str | None, stop: bool, heartbeat_s: float | None
    ) -> AsyncIterator[RunChange | None]:
        hub = self.feed_hub
        while True:
            subscriber = flt.subscriber()
            await hub.add(subscriber)
            try:
                last = token
                cover: str | None = None
                position, known = _parse_token(token)
                if known and flt.run_ids is not None and known >= max(flt.run_ids, default=""):
                    known = None  # every run followed is known: a plain position
                if known is None:
                    assert position is not None
                    finished_before = stop and await self._finished(flt)
                    cover = position
                    seen_final = False
                    async for change in self._catch_up(flt, position, None):
                        cover = last = change.position
                        final = change.run.status in _FINAL
                        seen_final = seen_final or final
                        yield change
                        del change
                        if stop and final:
                            return
                    if finished_before and not seen_final:
                        return  # it ended before the position the client resumed from
                else:
                    snapshot = await self.store.feed_snapshot(
                        FeedSnapshotParams(
                            environment=self.environment,
                            run_ids=flt.run_ids,
                            tags=flt.tags,
                            created_from=flt.created_from,
                            after_run_id=known or None,
                            limit=SNAPSHOT_LIMIT,
                        )
                    )
                    if position is not None and known:
                        async for change in self._catch_up(flt, position, snapshot.position):
                            if change.run.id <= known:
                                ended = stop and change.run.status in _FINAL
                                yield dataclasses.replace(
                                    change, position=f"{change.position}~{known}"
                                )
                                if ended:
                                    return
                    cover = snapshot.position
                    ended = False
                    async for first in self._snapshot_changes(snapshot.runs, cover):
                        last = first.position
                        ended = stop and first.run.status in _FINAL
                        yield first
                        del first  # an idle subscriber keeps none of its snapshot
                        if ended:
                            return
                    last = last if snapshot.runs else cover
                    del snapshot
                async for live in self._live(subscriber, cover, heartbeat_s):
                    if live is OVERFLOW:  # fell behind: resume from the store
                        break
                    if live is None:
                        yield None  # a heartbeat
                        continue
                    assert isinstance(live, RunChange)
                    last = live.position
                    final = live.run.status in _FINAL
                    yield live
                    del live
                    if stop and final:
                        return
                else:
                    return  # the engine is closing
                token = last
            finally:
                hub.remove(subscriber)

    async def _snapshot_changes(
        self, records: list[RunRecord], position: str
    ) -> AsyncIterator[RunChange]:
        now = self.now()
        for record in records:
            run = realtime_run(record, None, now_ms=now)
            yield RunChange(run=run, change="snapshot", position=f"{position}~{record.id}")

    async def _finished(self, flt: _Filter) -> bool:
        """Whether the (one) run followed is final now."""
        if flt.run_ids is None or len(flt.run_ids) != 1:
            return False
        snapshot = await self.store.feed_snapshot(
            FeedSnapshotParams(environment=self.environment, run_ids=flt.run_ids)
        )
        return bool(snapshot.runs) and snapshot.runs[0].status in _FINAL

    async def _catch_up(
        self, flt: _Filter, after: str, until: str | None
    ) -> AsyncIterator[RunChange]:
        """Changes after ``after`` (up to ``until`` or now), read from the store."""
        while True:
            page = await self.store.feed_read(
                FeedReadParams(
                    environment=self.environment,
                    after=after,
                    until=until,
                    limit=_PAGE,
                    run_ids=flt.run_ids,
                    tags=flt.tags,
                    created_from=flt.created_from,
                )
            )
            items = [FeedItem(e, page.runs.get(e.run_id)) for e in page.events]
            await annotate(self, items, page.runs)
            items = [i for i in items if i.event.kind in _RUN_KINDS]
            for item in items:
                change = self.change_of(item)
                if change is not None:
                    yield change
            if not page.more:
                return
            after = page.position

    async def _live(
        self, subscriber: Subscriber, cover: str, heartbeat_s: float | None
    ) -> AsyncIterator[RunChange | str | None]:
        """Changes the hub delivers, skipping those ``cover`` already includes; None after
        ``heartbeat_s`` without one; :data:`OVERFLOW` when the subscriber fell behind; ends
        when the engine closes."""
        covered = self.store.feed_covers
        while True:
            item = await subscriber.get(heartbeat_s)
            if item is None:
                yield None
                continue
            if item == OVERFLOW:
                yield OVERFLOW
                return
            if item == CLOSED or not isinstance(item, FeedItem):
                return
            if covered(cover, item.event):
                continue
            change = self.change_of(item)
            if change is not None:
                yield change

    def change_of(self, item: FeedItem) -> RunChange | None:
        """The update a feed item makes (built once per item, shared by its subscribers);
        None if its run is gone."""
        change = item.cache.get("change")
        if change is None:
            if item.run is None:
                return None
            event = item.event
            run = realtime_run(
                item.run,
                event.status,
                metadata=item.metadata,
                tags=item.tags,
                ts=event.ts,
                now_ms=event.ts,  # the duration as of the change: the same for every reader
                started=event.started,
            )
            change = RunChange(run=run, change=event.kind, position=event.position)
            item.cache["change"] = change
        assert isinstance(change, RunChange)
        return change
