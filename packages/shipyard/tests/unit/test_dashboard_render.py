"""The dashboard's pure parts: JSON shown escaped and folded, payload examples from a schema,
the trace waterfall's layout, trigger options from the Test form, who may skip the login."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from shipyard.errors import ValidationError
from shipyard.models.runs import Attempt, Run
from shipyard.records import RunEventRecord
from shipyard.server.app import dashboard_may_open
from shipyard.server.dashboard.render import FOLD_ITEMS, duration, pretty_json
from shipyard.server.dashboard.tasks import example_payload, trigger_options
from shipyard.server.dashboard.trace import waterfall
from shipyard.statuses import RunStatus


def test_json_is_escaped_and_large_values_start_folded() -> None:
    html = pretty_json({"x": "<script>alert(1)</script>", "n": 1, "ok": True, "none": None})
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<span class="j-num">1</span>' in html and "true" in html and "null" in html
    small = pretty_json(list(range(FOLD_ITEMS)))
    assert '<details class="fold" open>' in small
    big = pretty_json(list(range(FOLD_ITEMS + 1)))
    assert '<details class="fold">' in big and f"{FOLD_ITEMS + 1} items" in big
    long_text = pretty_json("z" * 1000)  # no "z" in the markup around it
    assert "1,002 characters" in long_text and long_text.count("z") == 1000


def test_durations_read_well() -> None:
    assert [duration(v) for v in (None, 5, 1500, 125_000, 4_000_000)] == [
        "–",
        "5 ms",
        "1.5 s",
        "2 m 05 s",
        "1 h 06 m",
    ]


def test_example_payload_follows_a_pydantic_schema() -> None:
    schema = {
        "$defs": {
            "Row": {
                "properties": {"label": {"type": "string"}, "value": {"type": "number"}},
                "required": ["label", "value"],
                "type": "object",
            }
        },
        "properties": {
            "title": {"type": "string"},
            "rows": {"items": {"$ref": "#/$defs/Row"}, "minItems": 1, "type": "array"},
            "mode": {"enum": ["fast", "slow"]},
            "limit": {"default": 10, "type": "integer"},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        },
        "required": ["title", "rows", "mode"],
        "type": "object",
    }
    assert example_payload(schema) == {
        "title": "",
        "rows": [{"label": "", "value": 0}],
        "mode": "fast",
    }
    assert example_payload({}) is None


def test_trigger_options_from_the_form() -> None:
    form = {
        "delay": " 5m ",
        "tags": "a, b,,",
        "idempotency_key": "k",
        "machine": "micro",
        "max_attempts": "3",
        "ttl": "",
        "queue": "",
    }
    assert trigger_options(form) == {
        "delay": "5m",
        "tags": ["a", "b"],
        "idempotency_key": "k",
        "machine": "micro",
        "max_attempts": 3,
    }
    with pytest.raises(ValidationError, match="whole number"):
        trigger_options({"max_attempts": "two"})


def _at(ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)


def _event(i: int, ts: int, kind: str, message: str, attributes: str | None = None) -> Any:
    return RunEventRecord(
        i, "run_1", ts, kind, "info" if kind == "log" else None, message, attributes
    )


def test_waterfall_nests_spans_and_logs_to_scale() -> None:
    run = _run(attempts=(Attempt(1, "COMPLETED", _at(1_000), _at(2_000), None),))
    events = [
        _event(
            1,
            1_100,
            "span",
            "outer",
            '{"span_id": "s1", "parent_id": null, "duration_ms": 500, "status": "ok"}',
        ),
        _event(
            2,
            1_200,
            "span",
            "inner",
            '{"span_id": "s2", "parent_id": "s1", "duration_ms": 100, "status": "error",'
            ' "error": "ValueError: x"}',
        ),
        _event(3, 1_250, "log", "inside inner"),
        _event(4, 1_900, "log", "after the spans"),
        _event(5, 2_000, "metadata", "ignored"),
    ]
    rows = waterfall(run, events, now_ms=3_000)
    assert [(r.kind, r.label, r.depth) for r in rows] == [
        ("attempt", "Attempt 1", 0),
        ("span", "outer", 1),
        ("span", "inner", 2),
        ("log", "inside inner", 3),
        ("log", "after the spans", 1),
    ]
    attempt, outer, inner = rows[0], rows[1], rows[2]
    assert (attempt.left, attempt.width) == (0.0, 100.0)
    assert (outer.left, outer.width) == (10.0, 50.0)
    assert (inner.left, inner.width, inner.status) == (20.0, 10.0, "error")
    assert rows[3].offset_ms == 250


def _run(attempts: tuple[Attempt, ...]) -> Run:
    now = _at(1_000)
    return Run(
        id="run_1",
        status=RunStatus.COMPLETED,
        task_identifier="t",
        idempotency_key=None,
        version=None,
        tags=(),
        metadata={},
        is_test=False,
        created_at=now,
        updated_at=now,
        started_at=now,
        finished_at=_at(2_000),
        delayed_until=None,
        ttl=None,
        expired_at=None,
        cost_in_cents=0,
        base_cost_in_cents=0,
        duration_ms=1_000,
        depth=0,
        trigger_function="trigger",
        batch_id=None,
        parent_id=None,
        root_id=None,
        payload={},
        output=None,
        error=None,
        attempt_count=1,
        max_attempts=3,
        attempts=attempts,
    )


@pytest.mark.parametrize(
    ("environment", "host", "expected"),
    [
        ("development", "127.0.0.1", True),
        ("development", "localhost", True),
        ("development", "::1", True),
        ("development", "0.0.0.0", False),
        ("development", "10.1.2.3", False),
        ("production", "127.0.0.1", False),
    ],
)
def test_only_development_on_loopback_opens_the_dashboard(
    environment: str, host: str, expected: bool
) -> None:
    assert dashboard_may_open(environment, host) is expected
