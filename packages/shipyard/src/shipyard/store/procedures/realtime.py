"""Procedures of realtime: the change feed read by position, output streams (append, read,
heads) and input streams (send, take, the token a ``.wait()`` blocks on).

The feed's positions are written differently by each backend (``store/feed.py``); these
procedures read the backend's head inside a one-snapshot transaction and work out the rows
to read from it, so the same code serves both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shipyard.errors import (
    PayloadTooLargeError,
    RunFinishedError,
    RunNotFoundError,
    ValidationError,
)
from shipyard.records import NewEvent, RunRecord, WaitpointRecord
from shipyard.store.feed import (
    FeedEventRecord,
    FeedHistoryParams,
    FeedPage,
    FeedReadParams,
    FeedSnapshot,
    FeedSnapshotParams,
    InputSendParams,
    InputSendResult,
    InputTakeParams,
    InputWaitParams,
    PgSnapshot,
    StreamAppendParams,
    StreamChunkRecord,
    StreamHead,
    StreamHeadsParams,
    StreamReadParams,
    as_json_list,
    parse_position,
)
from shipyard.store.params import WaitpointCreateParams
from shipyard.store.procedures.waitpoints import waitpoint_create
from shipyard.store.rows import event_row
from shipyard.store.steps import (
    Procedure,
    begin,
    count,
    feed,
    many,
    notify,
    row,
    rows,
    runs,
    snapshot,
)

__all__ = [
    "feed_head",
    "feed_metadata_history",
    "feed_read",
    "feed_snapshot",
    "input_send",
    "input_take",
    "input_wait",
    "stream_append",
    "stream_heads",
    "stream_read",
]


# -- the feed -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Segment:
    """One stretch of the feed to read: its query values, the position after an event of it
    (by id), and the position after all of it."""

    values: dict[str, object]
    after_id: int
    at: Callable[[int], str]
    end: str


def _segments(after: str, until: str | None, head: object) -> list[_Segment]:
    parsed = parse_position(after)
    text = str(head)
    if (parsed.since is None) != text.isdigit():
        raise _other_database(after)
    if parsed.since is None:  # SQLite: ids grow in commit order
        last = parse_position(until).after_id if until is not None else int(text)
        last = max(last, parsed.after_id)
        return [_Segment({"until_id": last}, parsed.after_id, str, str(last))]
    target = PgSnapshot.parse(until if until is not None else text)
    segments: list[_Segment] = []
    start = parsed.since
    if parsed.until is not None:  # finish the window the position stopped inside
        segments.append(_window(start, parsed.until, parsed.after_id))
        start = parsed.until
    if start.text != target.text or not segments:
        segments.append(_window(start, target, 0))
    return segments


def _window(since: PgSnapshot, until: PgSnapshot, after_id: int) -> _Segment:
    prefix = f"{since.text}|{until.text}|"
    return _Segment(
        {"since_xmax": str(since.xmax), "since_xip": since.xip_array(), "until": until.text},
        after_id,
        lambda event_id: prefix + str(event_id),
        until.text,
    )


def _other_database(after: str) -> ValidationError:
    """A position the other backend wrote (the database changed under a reader)."""
    return ValidationError(
        f"{after[:40]!r} is a position of another database's feed; subscribe again without it.",
        param="position",
    )


def feed_head(environment: str) -> Procedure[str]:
    """Where a reader stands that has read everything committed now."""
    yield snapshot()
    found = yield row("feed_position", {"environment": environment})
    return str(found[0])


def feed_read(p: FeedReadParams) -> Procedure[FeedPage]:
    """Events after ``p.after`` (up to ``p.until`` or now), oldest first, with their runs as
    of the same snapshot."""
    yield snapshot()
    head = (yield row("feed_position", {"environment": p.environment}))[0]
    filters = {
        "environment": p.environment,
        "run_ids": as_json_list(p.run_ids),
        "tags": as_json_list(p.tags),
        "created_from": p.created_from,
    }
    events: list[FeedEventRecord] = []
    position = p.after
    more = False
    for segment in _segments(p.after, p.until, head):
        room = p.limit - len(events)
        found = yield rows(
            "feed_events",
            {**filters, **segment.values, "after_id": segment.after_id, "limit": room},
        )
        for event_id, run_id, ts, kind, message, attributes, tx, status, started in found:
            events.append(
                FeedEventRecord(
                    event_id,
                    run_id,
                    ts,
                    kind,
                    message,
                    attributes,
                    tx,
                    status,
                    bool(started),
                    segment.at(event_id),
                )
            )
        if len(found) >= room:
            position, more = events[-1].position, True
            break
        position = segment.end
    records: dict[str, RunRecord] = {}
    if events:
        ids = sorted({e.run_id for e in events})
        found_runs: list[RunRecord] = yield runs(
            "feed_runs", {"environment": p.environment, "ids": as_json_list(ids)}
        )
        records = {r.id: r for r in found_runs}
    return FeedPage(events=events, runs=records, position=position, more=more)


def feed_snapshot(p: FeedSnapshotParams) -> Procedure[FeedSnapshot]:
    """The runs a subscription starts from and the position they are current at."""
    yield snapshot()
    head = (yield row("feed_position", {"environment": p.environment}))[0]
    found: list[RunRecord] = yield runs(
        "feed_snapshot_runs",
        {
            "environment": p.environment,
            "run_ids": as_json_list(p.run_ids),
            "tags": as_json_list(p.tags),
            "created_from": p.created_from,
            "after_run_id": p.after_run_id,
            "limit": p.limit,
        },
    )
    return FeedSnapshot(runs=found, position=str(head))


def feed_metadata_history(
    p: FeedHistoryParams,
) -> Procedure[dict[str, list[tuple[str, str | None]]]]:
    """Each run's ``(kind, attributes)`` of its ``created`` and ``metadata`` events before
    the given event, in order."""
    history: dict[str, list[tuple[str, str | None]]] = {r: [] for r in p.before}
    if not p.before:
        return history
    found = yield rows(
        "feed_metadata_history",
        {
            "environment": p.environment,
            "run_ids": as_json_list(sorted(p.before)),
            "before_id": max(p.before.values()),
        },
    )
    for run_id, event_id, kind, attributes in found:
        if event_id < p.before[run_id]:
            history[run_id].append((kind, attributes))
    return history


# -- output streams -----------------------------------------------------------------------------


def stream_append(p: StreamAppendParams) -> Procedure[int]:
    """Append chunks with the next indexes (the stream's row serialises appenders); the
    stream's next index after them."""
    key = {"run_id": p.run_id, "stream_id": p.stream_id, "now": p.now}
    size = sum(len(c.encode("utf-8", "surrogatepass")) for c in p.chunks)
    yield begin()
    if (yield row("stream_run_status", {"environment": p.environment, "run_id": p.run_id})) is None:
        raise RunNotFoundError(f"Run {p.run_id} not found.", run_id=p.run_id)
    reserve = {**key, "count": len(p.chunks), "bytes": size}
    reserved = yield row("stream_reserve", reserve)
    if reserved is None:
        yield count("stream_create", key)
        reserved = yield row("stream_reserve", reserve)
    first, total = int(reserved[0]), int(reserved[1])
    if total > p.max_bytes:
        raise PayloadTooLargeError(
            f"Stream '{p.stream_id}' of run {p.run_id} would hold {total:,} bytes; the limit "
            f"is {p.max_bytes:,} bytes per stream.",
            limit=p.max_bytes,
            size=total,
        )
    yield many(
        "stream_chunk_insert",
        [
            {"run_id": p.run_id, "stream_id": p.stream_id, "idx": first + i, "data": c, "ts": p.now}
            for i, c in enumerate(p.chunks)
        ],
    )
    yield feed()
    return first + len(p.chunks)


def stream_read(p: StreamReadParams) -> Procedure[list[StreamChunkRecord]]:
    """A stream's chunks from index ``p.start``, in order."""
    found = yield rows(
        "stream_read",
        {
            "environment": p.environment,
            "run_id": p.run_id,
            "stream_id": p.stream_id,
            "start": p.start,
            "limit": p.limit,
        },
    )
    return [StreamChunkRecord(int(r[0]), r[1], int(r[2])) for r in found]


def stream_heads(p: StreamHeadsParams) -> Procedure[dict[str, StreamHead]]:
    """The statuses of these runs and the next index of each of their streams."""
    found = yield rows(
        "stream_heads",
        {"environment": p.environment, "run_ids": as_json_list(sorted(set(p.run_ids)))},
    )
    heads: dict[str, StreamHead] = {}
    for run_id, status, stream_id, next_index in found:
        head = heads.setdefault(run_id, StreamHead(run_id=run_id, status=status))
        if stream_id is not None:
            head.next_index[stream_id] = int(next_index)
    return heads


# -- input streams ------------------------------------------------------------------------------


def _locked_status(environment: str, run_id: str) -> Procedure[str]:
    found = yield row("input_run_lock", {"environment": environment, "run_id": run_id})
    if found is None:
        raise RunNotFoundError(f"Run {run_id} not found.", run_id=run_id)
    return str(found[0])


def input_send(p: InputSendParams) -> Procedure[InputSendResult]:
    """Complete the oldest token a ``.wait()`` of this stream is suspended on (waking its
    run), or keep the data for the next listener; an ``input`` event wakes ``.once()``."""
    key = {"environment": p.environment, "run_id": p.run_id, "stream_id": p.stream_id}
    yield begin()
    status = yield from _locked_status(p.environment, p.run_id)
    if status in p.final_statuses:
        raise RunFinishedError(
            f"Run {p.run_id} has finished ({status}); its input stream '{p.stream_id}' no "
            "longer receives data.",
            run_id=p.run_id,
            status=status,
        )
    delivered = False
    while not delivered:
        waiting = yield row("input_wait_pending", key)
        if waiting is None:
            break
        yield count("input_wait_delete", {"waitpoint_id": waiting[0]})
        done = {"environment": p.environment, "id": waiting[0], "output": p.data, "now": p.now}
        if (yield count("waitpoint_complete", done)) == 1:
            delivered = True
            if (yield rows("runs_wake_waitpoint", done)):
                yield notify(p.environment, p.now)
    if not delivered:
        yield count("input_data_insert", {**key, "data": p.data, "now": p.now, "consumed_at": None})
    event = NewEvent(run_id=p.run_id, ts=p.now, kind="input", message=p.stream_id)
    yield count("run_event_insert", event_row(p.environment, event))
    yield feed()
    return InputSendResult(delivered_to_wait=delivered)


def input_take(p: InputTakeParams) -> Procedure[str | None]:
    """The oldest data kept for the stream (now consumed), or None."""
    yield begin()
    yield from _locked_status(p.environment, p.run_id)
    found = yield row("input_data_oldest", {"run_id": p.run_id, "stream_id": p.stream_id})
    if found is None:
        return None
    yield count("input_data_consume", {"id": found[0], "now": p.now})
    return str(found[1])


def input_wait(p: InputWaitParams) -> Procedure[WaitpointRecord]:
    """The token a ``.wait()`` blocks on: completed at once with the oldest kept data, else
    pending until a send completes it (or ``timeout_at``)."""
    key = {"environment": p.environment, "run_id": p.run_id, "stream_id": p.stream_id}
    yield begin()
    yield from _locked_status(p.environment, p.run_id)
    existing = yield row(
        "waitpoint_get_by_key",
        {"environment": p.environment, "idempotency_key": p.idempotency_key},
    )
    if existing is not None:  # this durable call made its token already (a replay)
        return WaitpointRecord(*existing)
    kept = yield row("input_data_oldest", key)
    create = WaitpointCreateParams(
        id=p.waitpoint_id,
        environment=p.environment,
        kind="MANUAL",
        now=p.now,
        timeout_at=None if kept is not None else p.timeout_at,
        idempotency_key=p.idempotency_key,
        tags=(f"input:{p.stream_id}"[:128],),
    )
    waitpoint, _ = yield from waitpoint_create(create)
    if kept is not None:
        yield count("input_data_consume", {"id": kept[0], "now": p.now})
        done = {"environment": p.environment, "id": waitpoint.id, "output": kept[1], "now": p.now}
        yield count("waitpoint_complete", done)
    else:
        yield count("input_wait_insert", {**key, "waitpoint_id": waitpoint.id, "now": p.now})
    found = yield row("waitpoint_get", {"environment": p.environment, "id": waitpoint.id})
    return WaitpointRecord(*found)
