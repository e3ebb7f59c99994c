"""A run's trace as a waterfall: each attempt a bar, the spans of ``logger.trace`` nested
under their parents, and each log line a mark under the innermost span open when it was
written — every bar placed and sized to scale on the run's timeline.

Spans are run events of kind ``span``: ``ts`` is the span's start and the attributes hold
``span_id``, ``parent_id``, ``duration_ms``, ``status`` and its own ``attributes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from shipyard.jsonutil import loads
from shipyard.models.runs import Run
from shipyard.records import RunEventRecord

__all__ = ["TraceRow", "waterfall"]

_SHOWN_KINDS = ("log", "span", "status")


@dataclass
class TraceRow:
    """One line of the waterfall: a bar (attempt, span) or a mark (log, status change)."""

    kind: str  # "attempt", "span", "log" or "status"
    label: str
    start_ms: int
    end_ms: int
    depth: int = 0
    level: str | None = None
    status: str | None = None
    detail: Any = None
    left: float = 0.0  # percent of the timeline
    width: float = 0.0
    offset_ms: int = 0
    children: list[TraceRow] = field(default_factory=list)

    @property
    def duration_ms(self) -> int:
        """How long the bar lasts (0 for a mark)."""
        return self.end_ms - self.start_ms


def _ms(moment: Any) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def waterfall(run: Run, events: list[RunEventRecord], now_ms: int) -> list[TraceRow]:
    """The trace of ``run`` as rows in display order (depth-first, by start time)."""
    attempts: list[TraceRow] = []
    for attempt in run.attempts:
        start = _ms(attempt.started_at)
        if start is None:
            continue
        end = _ms(attempt.finished_at) or max(now_ms, start)
        error = f"{attempt.error.name}: {attempt.error.message}" if attempt.error else None
        attempts.append(
            TraceRow(
                "attempt",
                f"Attempt {attempt.number}",
                start,
                end,
                status=attempt.status,
                detail=error,
            )
        )
    spans: dict[str, TraceRow] = {}
    parents: dict[str, str | None] = {}
    points: list[TraceRow] = []
    for event in events:
        if event.kind not in _SHOWN_KINDS:
            continue
        body = loads(event.attributes) if event.attributes else None
        if event.kind == "span":
            body = body if isinstance(body, dict) else {}
            length = body.get("duration_ms")
            end = event.ts + (math.ceil(length) if isinstance(length, int | float) else 0)
            span_id = str(body.get("span_id") or f"event-{event.id}")
            error = body.get("error")
            spans[span_id] = TraceRow(
                "span",
                event.message,
                event.ts,
                end,
                status=str(body.get("status") or "ok"),
                detail={
                    "attributes": body.get("attributes") or {},
                    **({"error": error} if error else {}),
                },
            )
            parent = body.get("parent_id")
            parents[span_id] = str(parent) if parent else None
        else:
            label = event.message if event.kind == "log" else f"status {event.message}"
            points.append(
                TraceRow(event.kind, label, event.ts, event.ts, level=event.level, detail=body)
            )
    roots: list[TraceRow] = list(attempts)
    for span_id, row in spans.items():
        parent_id = parents[span_id]
        parent = spans.get(parent_id) if parent_id else None
        if parent is not None:
            parent.children.append(row)
        else:
            _container(attempts, row.start_ms, row.end_ms, roots).append(row)
    for point in points:
        holder = _innermost([*spans.values(), *attempts], point.start_ms)
        (holder.children if holder is not None else roots).append(point)
    rows: list[TraceRow] = []
    every = [r for r in (*attempts, *spans.values(), *points)]
    if not every:
        return rows
    origin = min(r.start_ms for r in every)
    total = max(max(r.end_ms for r in every) - origin, 1)
    _flatten(sorted(roots, key=_order), 0, origin, total, rows)
    return rows


def _order(row: TraceRow) -> tuple[int, int]:
    return (row.start_ms, 0 if row.kind in ("attempt", "span") else 1)


def _container(
    attempts: list[TraceRow], start: int, end: int, roots: list[TraceRow]
) -> list[TraceRow]:
    """The children of the attempt a top-level span ran in (else the roots)."""
    for attempt in attempts:
        if attempt.start_ms <= start <= attempt.end_ms:
            return attempt.children
    return roots


def _innermost(bars: list[TraceRow], at: int) -> TraceRow | None:
    """The shortest bar open at ``at`` (the innermost span, else the attempt)."""
    open_bars = [b for b in bars if b.start_ms <= at <= b.end_ms]
    return min(open_bars, key=lambda b: (b.kind == "attempt", b.duration_ms), default=None)


def _flatten(
    nodes: list[TraceRow], depth: int, origin: int, total: int, out: list[TraceRow]
) -> None:
    for node in nodes:
        node.depth = depth
        node.offset_ms = node.start_ms - origin
        node.left = round(100 * node.offset_ms / total, 3)
        node.width = round(max(100 * node.duration_ms / total, 0.4), 3)
        node.left = (
            min(node.left, 100 - node.width) if node.kind in ("attempt", "span") else node.left
        )
        out.append(node)
        _flatten(sorted(node.children, key=_order), depth + 1, origin, total, out)
