"""Tests for shipyard.durations: the duration grammar, absolute times and display."""

from __future__ import annotations

import datetime

import pytest

from shipyard.durations import format_duration_ms, parse_duration_ms, resolve_time
from shipyard.errors import InvalidDurationError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1s", 1_000),
        ("90s", 90_000),
        ("5m", 300_000),
        ("1h", 3_600_000),
        ("1hr", 3_600_000),
        ("2h30m", 9_000_000),
        ("2hr30m", 9_000_000),
        ("1d", 86_400_000),
        ("1w", 604_800_000),
        ("1w2d", 777_600_000),
        ("1h1m1s", 3_661_000),
        ("0s", 0),
        ("1m1m", 120_000),
    ],
)
def test_parse_duration_strings(text: str, expected: int) -> None:
    assert parse_duration_ms(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "5", "5 minutes", "5ms", "1y", "m5", "-5m", "1.5h", " 5m", "5m ", "5m\n", "5M", "٣s"],
)
def test_invalid_strings_raise_with_grammar(text: str) -> None:
    with pytest.raises(InvalidDurationError) as info:
        parse_duration_ms(text)
    message = str(info.value)
    assert message.startswith(f"Invalid duration '{text}'")
    assert 'use digits followed by w, d, h (or hr), m or s, e.g. "30s", "5m", "2h30m"' in message
    assert info.value.code == "INVALID_DURATION"


def test_exact_message_for_bad_value() -> None:
    with pytest.raises(InvalidDurationError) as info:
        parse_duration_ms("5 minutes")
    assert str(info.value) == (
        "Invalid duration '5 minutes': use digits followed by w, d, h (or hr), m or s, "
        'e.g. "30s", "5m", "2h30m"'
    )


def test_string_over_100_chars_is_rejected() -> None:
    ok = "1s" * 50
    assert len(ok) == 100
    assert parse_duration_ms(ok) == 50_000
    with pytest.raises(InvalidDurationError, match="longer than 100 characters"):
        parse_duration_ms(ok + "1")


def test_numbers_are_seconds_rounded_to_ms() -> None:
    assert parse_duration_ms(0) == 0
    assert parse_duration_ms(5) == 5_000
    assert parse_duration_ms(1.5) == 1_500
    assert parse_duration_ms(0.0004) == 0
    assert parse_duration_ms(0.0005) == 1
    assert parse_duration_ms(2.0006) == 2_001


@pytest.mark.parametrize("bad", [-1, -0.5, float("inf"), float("nan"), True])
def test_bad_numbers_raise(bad: float) -> None:
    with pytest.raises(InvalidDurationError):
        parse_duration_ms(bad)


def test_timedelta() -> None:
    assert parse_duration_ms(datetime.timedelta(minutes=2, milliseconds=5)) == 120_005
    assert parse_duration_ms(datetime.timedelta(microseconds=1500)) == 2
    assert parse_duration_ms(datetime.timedelta(days=400)) == 400 * 86_400_000
    with pytest.raises(InvalidDurationError, match="cannot be negative"):
        parse_duration_ms(datetime.timedelta(seconds=-1))


def test_wrong_type_raises() -> None:
    with pytest.raises(InvalidDurationError, match="expected a duration string"):
        parse_duration_ms([1])  # type: ignore[arg-type]


NOW = 1_700_000_000_000


def test_resolve_time_duration_from_now() -> None:
    assert resolve_time("5m", NOW) == NOW + 300_000
    assert resolve_time(10, NOW) == NOW + 10_000
    assert resolve_time(datetime.timedelta(seconds=1), NOW) == NOW + 1_000
    assert resolve_time("0s", NOW) == NOW


def test_resolve_time_aware_and_naive_datetimes() -> None:
    future = datetime.datetime.fromtimestamp((NOW + 60_000) / 1000, tz=datetime.UTC)
    assert resolve_time(future, NOW) == NOW + 60_000
    naive = future.replace(tzinfo=None)
    assert resolve_time(naive, NOW) == NOW + 60_000
    plus_two = future.astimezone(datetime.timezone(datetime.timedelta(hours=2)))
    assert resolve_time(plus_two, NOW) == NOW + 60_000


def test_resolve_time_iso_strings() -> None:
    # NOW is 2023-11-14T22:13:20Z.
    assert resolve_time("2023-11-14T22:14:20Z", NOW) == NOW + 60_000
    assert resolve_time("2023-11-14T22:14:20.250z", NOW) == NOW + 60_250
    assert resolve_time("2023-11-15T00:14:20+02:00", NOW) == NOW + 60_000
    assert resolve_time("2023-11-14T22:14:20", NOW) == NOW + 60_000
    assert resolve_time("2023-11-16", NOW) == 1_700_092_800_000


def test_resolve_time_past_or_now_is_now() -> None:
    assert resolve_time("2000-01-01T00:00:00Z", NOW) == NOW
    assert resolve_time("2023-11-14T22:13:20Z", NOW) == NOW
    assert resolve_time(datetime.datetime(1999, 1, 1), NOW) == NOW


def test_resolve_time_rejects_garbage() -> None:
    with pytest.raises(InvalidDurationError) as info:
        resolve_time("tomorrow", NOW)
    assert str(info.value).startswith("Invalid time 'tomorrow': expected an ISO-8601 date-time")
    with pytest.raises(InvalidDurationError):
        resolve_time(-5, NOW)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0ms"),
        (250, "250ms"),
        (999, "999ms"),
        (1_000, "1s"),
        (1_500, "1.5s"),
        (1_549, "1.5s"),
        (1_550, "1.6s"),
        (42_000, "42s"),
        (59_949, "59.9s"),
        (59_950, "1m"),
        (60_000, "1m"),
        (123_000, "2m 3s"),
        (3_600_000, "1h"),
        (3_900_000, "1h 5m"),
        (3_661_000, "1h 1m 1s"),
        (183_600_000, "2d 3h"),
        (-1_500, "-1.5s"),
    ],
)
def test_format_duration(ms: int, text: str) -> None:
    assert format_duration_ms(ms) == text
