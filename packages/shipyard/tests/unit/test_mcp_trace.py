"""The indented trace get_run_details(debug=true) shows: attempts, nested spans, logs in place."""

from __future__ import annotations

import datetime
import json
from typing import Any

from shipyard.mcp.trace import format_trace, log_entries, span_entries
from shipyard.models.handles import TaskRunError
from shipyard.models.runs import Attempt, Run
from shipyard.records import RunEventRecord
from shipyard.statuses import RunStatus

T0 = 1_700_000_000_000


def at(offset_ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp((T0 + offset_ms) / 1000, tz=datetime.UTC)


def make_run(attempts: tuple[Attempt, ...], status: RunStatus = RunStatus.COMPLETED) -> Run:
    return Run(
        id="run_1",
        status=status,
        task_identifier="demo",
        idempotency_key=None,
        version=None,
        tags=(),
        metadata={},
        is_test=False,
        created_at=at(0),
        updated_at=at(0),
        started_at=at(10),
        finished_at=at(500),
        delayed_until=None,
        ttl=None,
        expired_at=None,
        cost_in_cents=0.0,
        base_cost_in_cents=0.0,
        duration_ms=490,
        depth=0,
        trigger_function="trigger",
        batch_id=None,
        parent_id=None,
        root_id=None,
        payload=None,
        output=None,
        error=None,
        attempt_count=len(attempts),
        max_attempts=3,
        attempts=attempts,
    )


class Events:
    """Events in the order a run records them (ids increase)."""

    def __init__(self) -> None:
        self.items: list[RunEventRecord] = []

    def add(self, kind: str, offset: int, message: str, level: str | None = None, **body: Any):
        self.items.append(
            RunEventRecord(
                id=len(self.items) + 1,
                run_id="run_1",
                ts=T0 + offset,
                kind=kind,
                level=level,
                message=message,
                attributes=json.dumps(body) if body else None,
            )
        )

    def span(self, offset: int, name: str, span_id: str, parent: str | None, ms: float) -> None:
        # Recorded when the span ends, with its start as ts.
        self.add(
            "span",
            offset,
            name,
            span_id=span_id,
            parent_id=parent,
            duration_ms=ms,
            status="ok",
            attributes={},
        )


def test_attempts_spans_and_logs_nest_by_parent_and_time() -> None:
    events = Events()
    events.add("status", 5, "QUEUED")
    events.add("log", 12, "first try", level="info")
    events.add("status", 40, "FAILED")
    events.add("log", 210, "before", level="info")
    events.add("log", 230, "inside child", level="warn", n=1)
    events.span(220, "child", "s2", "s1", 20)
    events.add("log", 260, "inside parent only", level="info")
    events.span(200, "parent", "s1", None, 100)
    events.span(320, "orphan", "s9", "gone", 5)
    events.add("status", 400, "COMPLETED")
    run = make_run(
        (
            Attempt(1, "FAILED", at(10), at(40), TaskRunError("ValueError", "flaky", "")),
            Attempt(2, "COMPLETED", at(200), at(400), None),
        )
    )
    assert format_trace(run, events.items).splitlines()[1:] == [
        "before the first attempt",
        "  +5 ms  status QUEUED",
        "attempt 1  FAILED  +10 ms  (30 ms)  ValueError: flaky",
        "  +12 ms  [info] first try",
        "  +40 ms  status FAILED",
        "attempt 2  COMPLETED  +200 ms  (200 ms)",
        "  span parent  +200 ms  100 ms  ok",
        "    +210 ms  [info] before",
        "    span child  +220 ms  20 ms  ok",
        '      +230 ms  [warn] inside child  {"n": 1}',
        "    +260 ms  [info] inside parent only",
        "  span orphan  +320 ms  5 ms  ok",
        "  +400 ms  status COMPLETED",
    ]


def test_an_event_recorded_after_a_span_ended_is_not_inside_it() -> None:
    events = Events()
    events.span(100, "quick", "s1", None, 0.2)  # ends within the same millisecond
    events.add("log", 100, "after", level="info")
    run = make_run((Attempt(1, "COMPLETED", at(50), at(150), None),))
    lines = format_trace(run, events.items).splitlines()
    assert lines[-2:] == ["  span quick  +100 ms  0.2 ms  ok", "  +100 ms  [info] after"]


def test_a_run_without_events_says_so() -> None:
    run = make_run((), RunStatus.QUEUED)
    assert format_trace(run, []).splitlines() == [
        "run_1 demo QUEUED, 0 attempts, created 2023-11-14T22:13:20.000Z",
        "  (no logs, spans or events recorded)",
    ]


def test_log_and_span_entries() -> None:
    events = Events()
    events.add("log", 1, "hello", level="debug", who="me")
    events.add("metadata", 2, "1 operation")
    events.span(0, "work", "s1", None, 3.5)
    assert log_entries(events.items) == [
        {
            "time": "2023-11-14T22:13:20.001Z",
            "level": "debug",
            "message": "hello",
            "attributes": {"who": "me"},
        }
    ]
    assert span_entries(events.items) == [
        {
            "name": "work",
            "span_id": "s1",
            "parent_id": None,
            "start": "2023-11-14T22:13:20.000Z",
            "duration_ms": 3.5,
            "status": "ok",
            "attributes": {},
        }
    ]
