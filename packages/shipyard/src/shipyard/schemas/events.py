"""A run's events over HTTP: ``GET /api/v1/runs/{id}/events``.

Trigger.dev answers this route with ``{"events": [...]}`` of its raw trace rows and no paging;
its client parses the answer with ``z.any()``. Shipyard's shape is its own, a superset of that
outer form: ``events`` (oldest first) are the run's log lines, spans, status changes, tag and
metadata changes, and ``pagination.next`` is the cursor of the next page (``page[after]``), left
out on the last page. A follower (``shipyard runs logs --follow``) keeps the last cursor and
asks again.

Example::

    {"events": [{"id": 41, "runId": "run_…", "kind": "status", "timestamp": "…",
                 "message": "EXECUTING"},
                {"id": 42, "runId": "run_…", "kind": "log", "level": "info",
                 "timestamp": "…", "message": "fetched", "attributes": {"url": "…"}}],
     "pagination": {"next": "42"}}
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from shipyard.jsonutil import loads
from shipyard.records import RunEventRecord
from shipyard.schemas.runs import CursorPagination
from shipyard.schemas.wire import WireDateTime, WireModel

__all__ = ["EventKind", "ListRunEventsResponse", "RunEvent"]

EventKind = Literal["log", "span", "status", "tag", "metadata"]


class RunEvent(WireModel):
    """One entry of a run's change feed.

    ``kind`` is ``log`` (``level`` says how loud), ``span`` (a timed block), ``status`` (the
    new status in ``message``), ``tag`` or ``metadata``. ``id`` increases with time, so it
    doubles as the paging cursor.
    """

    id: int
    run_id: str
    kind: str = Field(description="log, span, status, tag or metadata.")
    timestamp: WireDateTime
    message: str
    level: str | None = None
    attributes: dict[str, Any] | None = None

    @classmethod
    def from_record(cls, record: RunEventRecord) -> RunEvent:
        """From a stored event row (attributes are JSON text there)."""
        attributes = loads(record.attributes) if record.attributes else None
        return cls(
            id=record.id,
            run_id=record.run_id,
            kind=record.kind,
            timestamp=record.ts,  # type: ignore[arg-type]  # epoch ms, parsed by WireDateTime
            message=record.message,
            level=record.level,
            attributes=attributes if isinstance(attributes, dict) else None,
        )


class ListRunEventsResponse(WireModel):
    """Response of ``GET /api/v1/runs/{id}/events``: one page of events, oldest first."""

    events: list[RunEvent]
    pagination: CursorPagination = Field(default_factory=CursorPagination)

    @classmethod
    def from_records(
        cls, records: list[RunEventRecord], *, page_size: int
    ) -> ListRunEventsResponse:
        """A page from up to ``page_size + 1`` rows: the extra row only says a next page exists.

        Example::

            rows = store_rows(after=cursor, limit=size + 1)
            ListRunEventsResponse.from_records(rows, page_size=size)
        """
        page = records[:page_size]
        more = len(records) > page_size
        return cls(
            events=[RunEvent.from_record(r) for r in page],
            pagination=CursorPagination(next=str(page[-1].id) if more and page else None),
        )
