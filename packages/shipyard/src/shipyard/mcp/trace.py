"""A run's events as an agent reads them: log entries, and the spans as an indented trace.

Spans are run events of kind ``span`` (``logger.trace``): the event's ``ts`` is the span's
start, its ``message`` the span's name and its attributes hold ``span_id``, ``parent_id``,
``duration_ms``, ``status`` and the span's own ``attributes``. The trace groups events by
attempt (by time), nests spans under their parents, and puts each log line under the innermost
span that was open when it was written (to the millisecond, and recorded before the span
ended)::

    run_01… generate-report COMPLETED, 2 attempts
    attempt 1  FAILED  +0 ms  (12 ms)  ValueError: flaky
      +1 ms  [info] fetching  {"url": "https://…"}
      span fetch  +2 ms  5.2 ms  ok  {"url": "https://…"}
        span parse  +4 ms  1.1 ms  ok
      +12 ms  status FAILED
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass, field
from typing import Any

from shipyard.jsonutil import loads
from shipyard.mcp.tool import iso
from shipyard.models.runs import Run
from shipyard.records import RunEventRecord

MAX_ATTRIBUTE_TEXT = 300


def _ms(moment: datetime.datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _attributes(event: RunEventRecord) -> Any:
    return loads(event.attributes) if event.attributes else None


def log_entries(events: list[RunEventRecord]) -> list[dict[str, Any]]:
    """The run's log lines (kind ``log``), oldest first, as JSON objects."""
    return [
        {
            "time": iso(e.ts),
            "level": e.level or "log",
            "message": e.message,
            "attributes": _attributes(e) or {},
        }
        for e in events
        if e.kind == "log"
    ]


def span_entries(events: list[RunEventRecord]) -> list[dict[str, Any]]:
    """The run's spans, by start time, as JSON objects."""
    spans = []
    for e in sorted((e for e in events if e.kind == "span"), key=lambda e: (e.ts, e.id)):
        body = _attributes(e) or {}
        spans.append(
            {
                "name": e.message,
                "span_id": body.get("span_id"),
                "parent_id": body.get("parent_id"),
                "start": iso(e.ts),
                "duration_ms": body.get("duration_ms"),
                "status": body.get("status"),
                "attributes": body.get("attributes") or {},
                **({"error": body["error"]} if body.get("error") else {}),
            }
        )
    return spans


@dataclass
class _Node:
    """A span in the trace, or a point event (no ``span_id``) attached to one."""

    event: RunEventRecord
    start: int
    end: int
    span_id: str | None = None
    parent_id: str | None = None
    body: dict[str, Any] = field(default_factory=dict)
    children: list[_Node] = field(default_factory=list)


def _compact(value: Any) -> str:
    if value in (None, {}, []):
        return ""
    text = json.dumps(value, default=str, ensure_ascii=False, separators=(", ", ": "))
    if len(text) > MAX_ATTRIBUTE_TEXT:
        text = text[: MAX_ATTRIBUTE_TEXT - 1] + "…"
    return "  " + text


def _offset(ms: int, origin: int) -> str:
    delta = ms - origin
    return f"+{delta} ms" if abs(delta) < 10_000 else f"+{delta / 1000:.1f} s"


def _line(node: _Node, origin: int) -> str:
    event = node.event
    if node.span_id is not None:
        duration = node.body.get("duration_ms")
        took = f"{duration:g} ms" if isinstance(duration, int | float) else "? ms"
        error = f"  {node.body['error']}" if node.body.get("error") else ""
        return (
            f"span {event.message}  {_offset(node.start, origin)}  {took}  "
            f"{node.body.get('status', '?')}{error}{_compact(node.body.get('attributes'))}"
        )
    if event.kind == "log":
        return (
            f"{_offset(node.start, origin)}  [{event.level or 'log'}] {event.message}"
            f"{_compact(_attributes(event))}"
        )
    return (
        f"{_offset(node.start, origin)}  {event.kind} {event.message}{_compact(_attributes(event))}"
    )


def _nest(events: list[RunEventRecord]) -> list[_Node]:
    """Spans under their parents; point events under the innermost span open at their time."""
    spans: dict[str, _Node] = {}
    points: list[_Node] = []
    for event in events:
        if event.kind == "span":
            body = _attributes(event) or {}
            duration = body.get("duration_ms")
            length = math.ceil(duration) if isinstance(duration, int | float) else 0
            span_id = str(body.get("span_id") or f"event-{event.id}")
            spans[span_id] = _Node(
                event,
                event.ts,
                event.ts + length,
                span_id=span_id,
                parent_id=body.get("parent_id"),
                body=body,
            )
        else:
            points.append(_Node(event, event.ts, event.ts))
    roots: list[_Node] = []
    for node in spans.values():
        parent = spans.get(node.parent_id) if node.parent_id else None
        (parent.children if parent is not None else roots).append(node)

    def depth(node: _Node) -> int:
        level, parent_id = 0, node.parent_id
        while parent_id in spans and level < 100:
            level += 1
            parent_id = spans[parent_id].parent_id
        return level

    for point in points:
        # Open at the point's time (to the millisecond) and recorded after it: a span event is
        # written when the span ends, so an event written later happened after it closed.
        open_spans = [
            s
            for s in spans.values()
            if s.start <= point.start <= s.end and point.event.id < s.event.id
        ]
        holder = max(open_spans, key=depth, default=None)
        (holder.children if holder is not None else roots).append(point)
    return roots


def _render(nodes: list[_Node], origin: int, indent: int, out: list[str]) -> None:
    for node in sorted(nodes, key=lambda n: (n.start, n.event.id)):
        out.append("  " * indent + _line(node, origin))
        _render(node.children, origin, indent + 1, out)


def format_trace(run: Run, events: list[RunEventRecord]) -> str:
    """The run's attempts, spans, logs and other events as an indented trace."""
    origin = _ms(run.created_at) or 0
    attempts = sorted(run.attempts, key=lambda a: a.number)
    count = len(attempts)
    out = [
        f"{run.id} {run.task_identifier} {run.status}, "
        f"{count} attempt{'s' if count != 1 else ''}, created {iso(origin)}"
    ]
    groups: list[list[RunEventRecord]] = [[] for _ in range(count + 1)]
    starts = [_ms(a.started_at) or 0 for a in attempts]
    for event in sorted(events, key=lambda e: (e.ts, e.id)):
        # An event belongs to the last attempt that had started by its time (0: before any).
        index = 0
        for position, start in enumerate(starts, start=1):
            if start <= event.ts:
                index = position
        groups[index].append(event)
    if groups[0]:
        out.append("before the first attempt")
        _render(_nest(groups[0]), origin, 1, out)
    for attempt, group, start in zip(attempts, groups[1:], starts, strict=True):
        finished = _ms(attempt.finished_at)
        took = f"  ({finished - start} ms)" if finished is not None else "  (running)"
        error = f"  {attempt.error.name}: {attempt.error.message}" if attempt.error else ""
        out.append(
            f"attempt {attempt.number}  {attempt.status}  {_offset(start, origin)}{took}{error}"
        )
        _render(_nest(group), origin, 1, out)
    if not events:
        out.append("  (no logs, spans or events recorded)")
    return "\n".join(out)
