"""The change feed's positions, and the params and results of the realtime operations (the
feed, output streams, input streams).

A reader follows an environment's feed — the ``created``, ``status``, ``metadata``, ``tag``
and ``input`` events of ``run_events`` — by *position*: an opaque text each backend writes
its own way, returned after every event and after every read, and handed back to read on.

* **SQLite** commits one writer at a time, so event ids grow in commit order: a position is
  the last id read (``"1234"``).
* **PostgreSQL** takes ids from a sequence when a row is written, not when it commits, so a
  reader reading "ids after N" would skip a row whose transaction commits after a later one.
  A position is a *snapshot* instead (``pg_current_snapshot()`` as text,
  ``xmin:xmax:xip,…``): everything visible in it has been read. The next read is the rows of
  the transactions visible now but not then (their ``tx`` is at least the old ``xmax`` or was
  in progress then) — exact, whatever the commit order, and never held back by a long
  transaction elsewhere. Inside such a window rows are read in id order (a run's own events
  are committed in id order: each change locks its row), so a position inside a window is
  ``A|B|id``: everything visible in ``A``, plus the rows of window ``A→B`` up to ``id``.

:func:`covers` answers "was this event already read at that position?" without a query.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from shipyard.errors import ValidationError
from shipyard.records import RunRecord

__all__ = [
    "FEED_KINDS",
    "FeedEventRecord",
    "FeedHistoryParams",
    "FeedPage",
    "FeedReadParams",
    "FeedSnapshot",
    "FeedSnapshotParams",
    "InputSendParams",
    "InputSendResult",
    "InputTakeParams",
    "InputWaitParams",
    "PgSnapshot",
    "StreamAppendParams",
    "StreamChunkRecord",
    "StreamHead",
    "StreamHeadsParams",
    "StreamReadParams",
    "as_json_list",
    "covers",
    "parse_position",
]

FEED_KINDS = ("created", "status", "metadata", "tag", "input")
"""The event kinds the feed carries (the ``run_events_feed`` index's predicate)."""


# -- positions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PgSnapshot:
    """A PostgreSQL snapshot: transactions below ``xmin`` are done, those from ``xmax`` on had
    not started, those in ``xip`` were in progress."""

    xmin: int
    xmax: int
    xip: frozenset[int]
    text: str

    @classmethod
    def parse(cls, text: str) -> PgSnapshot:
        """Read ``xmin:xmax:xip1,xip2`` (``pg_snapshot``'s text form)."""
        try:
            xmin, xmax, xip = text.split(":")
            values = frozenset(int(x) for x in xip.split(",") if x)
            snapshot = cls(int(xmin), int(xmax), values, text)
        except ValueError:
            raise _bad_position(text) from None
        if not snapshot.xmin <= snapshot.xmax or any(
            not snapshot.xmin <= x < snapshot.xmax for x in values
        ):
            raise _bad_position(text)
        return snapshot

    def visible(self, tx: int) -> bool:
        """Whether transaction ``tx`` had finished when the snapshot was taken."""
        return tx < self.xmin or (tx < self.xmax and tx not in self.xip)

    def xip_array(self) -> str:
        """``xip`` as a PostgreSQL array literal (``{1,2}``)."""
        return "{" + ",".join(str(x) for x in sorted(self.xip)) + "}"


@dataclass(frozen=True, slots=True)
class Position:
    """A parsed position. SQLite: ``until`` is None and ``after_id`` the last id read.
    PostgreSQL: everything visible in ``since``, plus the rows of window ``since → until``
    with ids up to ``after_id`` (a boundary has no ``until``)."""

    after_id: int
    since: PgSnapshot | None = None
    until: PgSnapshot | None = None


@lru_cache(maxsize=4096)
def parse_position(text: str) -> Position:
    """A position as either backend writes it; :class:`ValidationError` if it is neither.
    Cached: a subscriber checks every live event against the same position."""
    if not isinstance(text, str) or not text or len(text) > 100_000:
        raise _bad_position(str(text)[:40])
    if text.isdigit():
        return Position(after_id=int(text))
    parts = text.split("|")
    if len(parts) == 1:
        return Position(after_id=0, since=PgSnapshot.parse(parts[0]))
    if len(parts) == 3 and parts[2].isdigit():
        return Position(int(parts[2]), PgSnapshot.parse(parts[0]), PgSnapshot.parse(parts[1]))
    raise _bad_position(text)


def covers(position: str, event: FeedEventRecord) -> bool:
    """Whether ``event`` had been read at ``position`` (no query)."""
    parsed = parse_position(position)
    if parsed.since is None:
        return event.id <= parsed.after_id
    if event.tx is None:
        return True  # written before the feed existed
    if parsed.since.visible(event.tx):
        return True
    return (
        parsed.until is not None and parsed.until.visible(event.tx) and event.id <= parsed.after_id
    )


def _bad_position(text: str) -> ValidationError:
    return ValidationError(
        f"{text!r} is not a position of this feed (an event id it sent, or a Last-Event-ID).",
        param="position",
    )


# -- the feed -----------------------------------------------------------------------------------


@dataclass(slots=True)
class FeedEventRecord:
    """One event of the feed. ``status`` is the run's status as of this event (the event's
    own for ``created``/``status``) and ``started`` whether it had started executing by then;
    ``tx`` is PostgreSQL's writing transaction (None on SQLite); ``position`` is where a
    reader that has read it stands."""

    id: int
    run_id: str
    ts: int
    kind: str
    message: str
    attributes: str | None
    tx: int | None
    status: str | None
    started: bool = True
    position: str = ""


@dataclass(slots=True)
class FeedReadParams:
    """Events after ``after`` (a position), oldest first, at most ``limit``.

    ``until`` (a position a snapshot returned) stops there instead of at the present.
    Filters: ``run_ids`` (any of), ``tags`` (runs having any of them) and ``created_from``
    (runs created at or after, epoch ms). ``kinds`` narrows :data:`FEED_KINDS`.
    """

    environment: str
    after: str
    until: str | None = None
    limit: int = 500
    run_ids: Sequence[str] | None = None
    tags: Sequence[str] | None = None
    created_from: int | None = None


@dataclass(slots=True)
class FeedPage:
    """Events read, the runs they belong to as of the same moment (by id), where the reader
    stands after them, and whether more events were left for the next read."""

    events: list[FeedEventRecord]
    runs: dict[str, RunRecord]
    position: str
    more: bool


@dataclass(slots=True)
class FeedSnapshotParams:
    """The runs a subscription starts from, read with the position they are current at.

    ``run_ids``, or ``tags`` (any of) with ``created_from``; runs with ids after
    ``after_run_id`` only; the newest ``limit`` of them, in id order.
    """

    environment: str
    run_ids: Sequence[str] | None = None
    tags: Sequence[str] | None = None
    created_from: int | None = None
    after_run_id: str | None = None
    limit: int = 1000


@dataclass(slots=True)
class FeedSnapshot:
    """Runs (in id order) as they were at ``position``."""

    runs: list[RunRecord]
    position: str


@dataclass(slots=True)
class FeedHistoryParams:
    """The ``created`` and ``metadata`` events of runs before an event of each
    (``before``: run id → event id), for replaying their metadata up to that event."""

    environment: str
    before: dict[str, int]


# -- output streams -----------------------------------------------------------------------------


@dataclass(slots=True)
class StreamAppendParams:
    """Append ``chunks`` (JSON texts) to a run's stream, in order. ``max_bytes`` is the
    stream's size limit; the whole append is refused if it would pass it."""

    environment: str
    run_id: str
    stream_id: str
    chunks: Sequence[str]
    now: int
    max_bytes: int


@dataclass(slots=True)
class StreamReadParams:
    """A stream's chunks from index ``start``, at most ``limit``."""

    environment: str
    run_id: str
    stream_id: str
    start: int
    limit: int = 1000


@dataclass(slots=True)
class StreamChunkRecord:
    """One stored chunk: its index in the stream, its JSON text and when it was appended."""

    index: int
    data: str
    ts: int


@dataclass(slots=True)
class StreamHeadsParams:
    """The streams of these runs, and the runs' statuses."""

    environment: str
    run_ids: Sequence[str]


@dataclass(slots=True)
class StreamHead:
    """A run's status and the next index of each of its streams (absent: no chunk yet)."""

    run_id: str
    status: str
    next_index: dict[str, int] = field(default_factory=dict)


# -- input streams ------------------------------------------------------------------------------


@dataclass(slots=True)
class InputSendParams:
    """Send ``data`` (JSON text) to a run's input stream: it completes the oldest token a
    ``.wait()`` is suspended on, else it is kept for the next listener. A finished run (a
    status in ``final_statuses``) refuses it."""

    environment: str
    run_id: str
    stream_id: str
    data: str
    now: int
    final_statuses: frozenset[str]


@dataclass(slots=True)
class InputSendResult:
    """Whether the data resumed a waiting ``.wait()`` (else it was kept)."""

    delivered_to_wait: bool


@dataclass(slots=True)
class InputTakeParams:
    """Take the oldest data kept for a run's input stream (it is consumed)."""

    environment: str
    run_id: str
    stream_id: str
    now: int


@dataclass(slots=True)
class InputWaitParams:
    """The token a ``.wait()`` blocks on: completed at once with kept data if there is some,
    else pending (with ``timeout_at``) until a send completes it. ``idempotency_key`` makes
    a retried creation (the same durable call) return the first token."""

    environment: str
    run_id: str
    stream_id: str
    waitpoint_id: str
    idempotency_key: str
    now: int
    timeout_at: int | None = None


def as_json_list(values: Sequence[Any] | None) -> str | None:
    """A list parameter as the JSON text the SQL expands (None stays None; an empty list
    matches nothing)."""
    return None if values is None else json.dumps(list(values))
