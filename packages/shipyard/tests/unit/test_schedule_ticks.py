"""The downtime rule and window spreading (``shipyard.schedule_ticks``), on explicit times."""

from __future__ import annotations

import datetime
import itertools

import pytest

from shipyard.cron import upcoming
from shipyard.errors import InvalidScheduleWindowError, ValidationError
from shipyard.schedule_ticks import (
    DueTicks,
    Window,
    due_ticks,
    parse_window,
    window_offset_ms,
)

UTC = datetime.UTC
MINUTE = datetime.timedelta(minutes=1)


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


# (expression, zone, last nominal tick handled, now, tick to fire now or None, next nominal)
DUE = [
    # No downtime: before the next tick nothing fires.
    ("0 * * * *", "UTC", "2026-01-01T00:00Z", "2026-01-01T00:59Z", None, "2026-01-01T01:00Z"),
    # Exactly at the tick, and a little late: that tick fires, with its nominal time.
    (
        "0 * * * *",
        "UTC",
        "2026-01-01T00:00Z",
        "2026-01-01T01:00Z",
        "2026-01-01T01:00Z",
        "2026-01-01T02:00Z",
    ),
    (
        "0 * * * *",
        "UTC",
        "2026-01-01T00:00Z",
        "2026-01-01T01:00:00.250Z",
        "2026-01-01T01:00Z",
        "2026-01-01T02:00Z",
    ),
    # One tick missed (01:00): only the latest (02:00) fires.
    (
        "0 * * * *",
        "UTC",
        "2026-01-01T00:00Z",
        "2026-01-01T02:10Z",
        "2026-01-01T02:00Z",
        "2026-01-01T03:00Z",
    ),
    # Many missed: a per-minute schedule down for a year fires once, for 2026-01-01 00:00.
    (
        "* * * * *",
        "UTC",
        "2025-01-01T00:00Z",
        "2026-01-01T00:00:30Z",
        "2026-01-01T00:00Z",
        "2026-01-01T00:01Z",
    ),
    # A sparse schedule: Feb 29 ticks in 2024 missed; the next is in 2028.
    (
        "0 0 29 2 *",
        "UTC",
        "2020-02-29T00:00Z",
        "2026-01-01T00:00Z",
        "2024-02-29T00:00Z",
        "2028-02-29T00:00Z",
    ),
    # DST in between (New York springs forward on 2026-03-08): the catch-up is the latest tick.
    (
        "30 2 * * *",
        "America/New_York",
        "2026-03-06T07:30Z",
        "2026-03-09T12:00Z",
        "2026-03-09T06:30Z",
        "2026-03-10T06:30Z",
    ),
    # ... and when the latest missed tick is the skipped 02:30, it fires as 03:00 EDT.
    (
        "30 2 * * *",
        "America/New_York",
        "2026-03-06T07:30Z",
        "2026-03-08T07:05Z",
        "2026-03-08T07:00Z",
        "2026-03-09T06:30Z",
    ),
    # Down across the fall-back night: the hourly ticks of both 01:00s are skipped.
    (
        "0 * * * *",
        "America/New_York",
        "2026-11-01T04:00Z",
        "2026-11-01T07:30Z",
        "2026-11-01T07:00Z",
        "2026-11-01T08:00Z",
    ),
    # Europe/London, fall back: the repeated 01:30 does not count as a second tick.
    (
        "30 1 * * *",
        "Europe/London",
        "2026-10-25T00:30Z",
        "2026-10-25T01:45Z",
        None,
        "2026-10-26T01:30Z",
    ),
]


@pytest.mark.parametrize(("expression", "zone", "last", "now", "fire", "following"), DUE)
def test_due_ticks(
    expression: str, zone: str, last: str, now: str, fire: str | None, following: str
) -> None:
    result = due_ticks(expression, zone, at(last), at(now))
    assert result == DueTicks(at(fire) if fire else None, at(following))
    fire_now, next_nominal = result  # also a plain pair
    assert next_nominal > at(now) or fire_now is None
    assert next_nominal.tzinfo is UTC


def test_due_ticks_reads_naive_times_as_utc() -> None:
    result = due_ticks(
        "0 * * * *", "UTC", datetime.datetime(2026, 1, 1), datetime.datetime(2026, 1, 1, 3, 5)
    )
    assert result == DueTicks(at("2026-01-01T03:00Z"), at("2026-01-01T04:00Z"))


@pytest.mark.parametrize(
    ("expression", "zone", "start", "poll_every"),
    [
        ("*/15 * * * *", "America/New_York", "2026-03-07T20:00Z", MINUTE),
        ("*/15 * * * *", "Europe/London", "2026-10-24T20:00Z", 7 * MINUTE),
        ("30 1 * * *", "Europe/London", "2026-10-23T20:00Z", 13 * MINUTE),
        ("30 2 * * *", "America/New_York", "2026-03-06T20:00Z", 29 * MINUTE),
        ("0 * * * *", "America/New_York", "2026-10-31T20:00Z", MINUTE),
    ],
)
def test_a_scheduler_polling_faster_than_the_ticks_fires_each_tick_exactly_once(
    expression: str, zone: str, start: str, poll_every: datetime.timedelta
) -> None:
    """Drive due_ticks like the scheduler will (a fake clock) across a DST change."""
    last, now, end = at(start), at(start), at(start) + datetime.timedelta(days=3)
    fired: list[datetime.datetime] = []
    while now < end:
        now += poll_every
        fire_now, next_nominal = due_ticks(expression, zone, last, now)
        if fire_now is not None:
            assert fire_now <= now < next_nominal
            fired.append(fire_now)
            last = fire_now
    expected = [t for t in upcoming(expression, zone, at(start), n=400) if t <= now]
    assert fired == expected


def test_after_downtime_only_the_latest_missed_tick_fires_then_the_schedule_goes_on() -> None:
    last = at("2026-01-01T00:00Z")
    fire_now, next_nominal = due_ticks("*/5 * * * *", "UTC", last, at("2026-01-01T10:02Z"))
    assert fire_now == at("2026-01-01T10:00Z")
    assert next_nominal == at("2026-01-01T10:05Z")
    # The next poll after the catch-up sees nothing due until the next tick.
    assert due_ticks("*/5 * * * *", "UTC", fire_now, at("2026-01-01T10:04Z")).fire_now is None
    assert due_ticks("*/5 * * * *", "UTC", fire_now, at("2026-01-01T10:05Z")).fire_now == (
        next_nominal
    )


@pytest.mark.parametrize(
    ("text", "fixed_ms", "percent"),
    [
        ("30m", 30 * 60_000, None),
        ("2h", 2 * 3_600_000, None),
        ("24h", 24 * 3_600_000, None),
        ("1440m", 24 * 3_600_000, None),
        ("0m", 0, None),
        ("0h", 0, None),
        ("10%", None, 10),
        ("100%", None, 100),
        ("0%", None, 0),
        (" 5m ", 5 * 60_000, None),
    ],
)
def test_parse_window(text: str, fixed_ms: int | None, percent: int | None) -> None:
    window = parse_window(text)
    assert (window.fixed_ms, window.percent) == (fixed_ms, percent)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("90s", "use whole minutes or hours"),
        ("1h30m", "use whole minutes or hours"),
        ("1.5h", "use whole minutes or hours"),
        ("-5m", "use whole minutes or hours"),
        ("", "use whole minutes or hours"),
        ("30", "use whole minutes or hours"),
        ("30M", "use whole minutes or hours"),
        ("25h", "at most 24 hours"),
        ("1441m", "at most 24 hours"),
        ("101%", "a percentage must be 0-100%"),
    ],
)
def test_invalid_windows(text: str, words: str) -> None:
    with pytest.raises(InvalidScheduleWindowError) as caught:
        parse_window(text)
    assert isinstance(caught.value, ValidationError)
    assert caught.value.code == "INVALID_SCHEDULE_WINDOW"
    assert caught.value.message.startswith(f"Invalid schedule window '{text.strip()}'")
    assert words in caught.value.message


def test_a_window_that_is_not_a_string_is_a_validation_error() -> None:
    with pytest.raises(InvalidScheduleWindowError):
        parse_window(30)  # type: ignore[arg-type]


def test_window_span_is_capped_at_the_interval() -> None:
    t0, t1 = at("2026-01-01T09:00Z"), at("2026-01-01T09:15Z")
    assert parse_window("2h").span_ms(t0, t1) == 15 * 60_000
    assert parse_window("10m").span_ms(t0, t1) == 10 * 60_000
    assert parse_window("20%").span_ms(t0, t1) == 3 * 60_000
    assert parse_window("100%").span_ms(t0, t1) == 15 * 60_000
    assert parse_window("30m").span_ms(t0, t0) == 0


def test_window_offset_is_deterministic_per_schedule_and_per_tick() -> None:
    t0, t1 = at("2026-01-01T09:00Z"), at("2026-01-02T09:00Z")
    first = window_offset_ms("sched_1234", t0, t1, "30m")
    assert first == window_offset_ms("sched_1234", t0, t1, parse_window("30m"))
    # Pinned: every worker and every version must agree on the offset of a given tick.
    assert first == 449_960
    other_schedule = window_offset_ms("sched_5678", t0, t1, "30m")
    other_tick = window_offset_ms("sched_1234", t1, at("2026-01-03T09:00Z"), "30m")
    assert len({first, other_schedule, other_tick}) == 3


def test_window_offset_spreads_schedules_and_never_reaches_the_next_tick() -> None:
    ticks = upcoming("*/15 * * * *", "UTC", at("2026-01-01T00:00Z"), n=41)
    offsets = []
    for nominal, following in itertools.pairwise(ticks):
        for index in range(25):
            for window in ("24h", "100%", "10m"):
                offset = window_offset_ms(f"sched_{index}", nominal, following, window)
                assert 0 <= offset < (following - nominal) / datetime.timedelta(milliseconds=1)
                assert nominal + datetime.timedelta(milliseconds=offset) < following
                offsets.append(offset)
    # Spread, not clumped: offsets land in every tenth of the 10-minute or 15-minute window.
    assert len({offset * 10 // (15 * 60_000) for offset in offsets}) == 10


@pytest.mark.parametrize("window", ["0m", "0h", "0%", Window(text="0m", fixed_ms=0)])
def test_a_zero_window_fires_on_time(window: str | Window) -> None:
    t0, t1 = at("2026-01-01T09:00Z"), at("2026-01-01T10:00Z")
    assert window_offset_ms("sched_1", t0, t1, window) == 0
