"""Cron expressions, time zones and fire times (``shipyard.cron``): vector tables, no clock."""

from __future__ import annotations

import datetime
import doctest
from zoneinfo import ZoneInfo

import pytest

import shipyard.cron
import shipyard.schedule_ticks
from shipyard.cron import (
    CronExpression,
    describe,
    next_fire,
    parse,
    timezones,
    upcoming,
    validate_timezone,
)
from shipyard.errors import (
    InvalidCronExpressionError,
    UnknownTimezoneError,
    ValidationError,
)

UTC = datetime.UTC


def at(text: str) -> datetime.datetime:
    """``"2026-03-08T07:00Z"`` → an aware UTC datetime."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso(moment: datetime.datetime) -> str:
    assert moment.tzinfo is not None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


# (expression, zone, after, the next fires in UTC)
SYNTAX_VECTORS = [
    ("0 9 * * 1-5", "UTC", "2026-01-02T10:00Z", ["2026-01-05T09:00Z", "2026-01-06T09:00Z"]),
    ("0 0 1,15 * *", "UTC", "2026-01-01T00:00Z", ["2026-01-15T00:00Z", "2026-02-01T00:00Z"]),
    (
        "0 8-18/5 * * *",
        "UTC",
        "2026-01-01T00:00Z",
        ["2026-01-01T08:00Z", "2026-01-01T13:00Z", "2026-01-01T18:00Z", "2026-01-02T08:00Z"],
    ),
    ("*/15 * * * *", "UTC", "2026-01-01T00:07Z", ["2026-01-01T00:15Z", "2026-01-01T00:30Z"]),
    ("5/20 * * * *", "UTC", "2026-01-01T00:07Z", ["2026-01-01T00:25Z", "2026-01-01T00:45Z"]),
    ("0 0 1 JAN *", "UTC", "2026-02-01T00:00Z", ["2027-01-01T00:00Z"]),
    ("0 9 * * MON-FRI", "UTC", "2026-01-03T00:00Z", ["2026-01-05T09:00Z"]),
    ("0 9 * jan-mar sat", "UTC", "2026-01-01T00:00Z", ["2026-01-03T09:00Z"]),
    ("0 9 * * MON,WED,FRI", "UTC", "2026-01-05T10:00Z", ["2026-01-07T09:00Z", "2026-01-09T09:00Z"]),
    ("0 0 L * *", "UTC", "2026-01-31T12:00Z", ["2026-02-28T00:00Z", "2026-03-31T00:00Z"]),
    ("0 0 L 2 *", "UTC", "2027-03-01T00:00Z", ["2028-02-29T00:00Z"]),
    ("0 0 LW * *", "UTC", "2026-01-01T00:00Z", ["2026-01-30T00:00Z", "2026-02-27T00:00Z"]),
    ("0 0 * * 0", "UTC", "2026-01-01T00:00Z", ["2026-01-04T00:00Z", "2026-01-11T00:00Z"]),
    ("0 0 * * 7", "UTC", "2026-01-01T00:00Z", ["2026-01-04T00:00Z", "2026-01-11T00:00Z"]),
    ("0 0 * * SUN", "UTC", "2026-01-01T00:00Z", ["2026-01-04T00:00Z"]),
    (
        "0 0 * * 5-7",
        "UTC",
        "2026-01-01T00:00Z",
        ["2026-01-02T00:00Z", "2026-01-03T00:00Z", "2026-01-04T00:00Z", "2026-01-09T00:00Z"],
    ),
    ("0 0 * * 5L", "UTC", "2026-01-01T00:00Z", ["2026-01-30T00:00Z", "2026-02-27T00:00Z"]),
    ("0 0 * * 7L", "UTC", "2026-01-01T00:00Z", ["2026-01-25T00:00Z", "2026-02-22T00:00Z"]),
    ("0 0 * * 0L", "UTC", "2026-01-01T00:00Z", ["2026-01-25T00:00Z"]),
    ("0 0 * * 1L", "UTC", "2026-01-01T00:00Z", ["2026-01-26T00:00Z", "2026-02-23T00:00Z"]),
    ("0 0 * * 5L,1L", "UTC", "2026-01-01T00:00Z", ["2026-01-26T00:00Z", "2026-01-30T00:00Z"]),
    ("0 0 * * MON#2", "UTC", "2026-01-01T00:00Z", ["2026-01-12T00:00Z", "2026-02-09T00:00Z"]),
    (
        "0 0 29 2 *",
        "UTC",
        "2026-01-01T00:00Z",
        ["2028-02-29T00:00Z", "2032-02-29T00:00Z", "2036-02-29T00:00Z"],
    ),
    # Both day fields restricted: a day matching either fires (Friday or the 13th).
    (
        "0 0 13 * 5",
        "UTC",
        "2026-02-01T00:00Z",
        ["2026-02-06T00:00Z", "2026-02-13T00:00Z", "2026-02-20T00:00Z"],
    ),
    ("0 9 ? * MON", "UTC", "2026-01-01T00:00Z", ["2026-01-05T09:00Z"]),
    ("  0\t9  * *  1-5 ", "UTC", "2026-01-02T10:00Z", ["2026-01-05T09:00Z"]),
]


@pytest.mark.parametrize(("expression", "zone", "after", "expected"), SYNTAX_VECTORS)
def test_syntax_vectors(expression: str, zone: str, after: str, expected: list[str]) -> None:
    fires = upcoming(expression, zone, at(after), n=len(expected))
    assert [iso(fire) for fire in fires] == expected


def test_next_fire_is_strictly_after() -> None:
    nine = at("2026-01-05T09:00Z")
    assert next_fire("0 9 * * *", "UTC", nine) == at("2026-01-06T09:00Z")
    assert next_fire("0 9 * * *", "UTC", nine - datetime.timedelta(microseconds=1)) == nine
    assert next_fire("0 9 * * *", "UTC", nine + datetime.timedelta(microseconds=1)) == at(
        "2026-01-06T09:00Z"
    )


def test_next_fire_reads_naive_as_utc_and_accepts_any_aware_zone() -> None:
    expected = at("2026-01-05T09:00Z")
    assert next_fire("0 9 * * *", "UTC", datetime.datetime(2026, 1, 5, 8)) == expected
    paris = datetime.datetime(2026, 1, 5, 9, 30, tzinfo=ZoneInfo("Europe/Paris"))  # 08:30Z
    fire = next_fire("0 9 * * *", "UTC", paris)
    assert fire == expected
    assert fire.tzinfo is UTC


def test_upcoming_counts() -> None:
    after = at("2026-01-01T00:00Z")
    assert len(upcoming("* * * * *", "UTC", after)) == 5
    assert upcoming("* * * * *", "UTC", after, n=0) == []
    with pytest.raises(ValueError, match="negative"):
        upcoming("* * * * *", "UTC", after, n=-1)


# (expression, words the message must contain, the field named or None)
INVALID = [
    ("", "it is empty", None),
    ("   ", "it is empty", None),
    ("0 0 9 * * *", "CRON expressions with seconds are not allowed", None),
    ("0 0 9 * * * 2026", "seconds and years are not allowed", None),
    ("0 9 * *", "4 fields", None),
    ("@daily", "macros such as '@daily' are not supported", None),
    ("60 * * * *", "minute 60 is out of range (use 0-59)", "minute"),
    ("0 24 * * *", "hour 24 is out of range (use 0-23)", "hour"),
    ("0 0 32 * *", "day-of-month 32 is out of range (use 1-31)", "day-of-month"),
    ("0 0 0 * *", "day-of-month 0 is out of range", "day-of-month"),
    ("0 0 1 13 *", "month 13 is out of range (use 1-12)", "month"),
    ("0 0 * * 8", "day-of-week 8 is out of range (use 0-7)", "day-of-week"),
    (
        "0 0 * * FOO",
        "day-of-week 'FOO' is not a number or a name (use 0-7 or SUN-SAT)",
        "day-of-week",
    ),
    ("0 0 1 FOO *", "month 'FOO' is not a number or a name (use 1-12 or JAN-DEC)", "month"),
    ("every day at nine", "5 fields", None),
    ("a b c d e", "minute 'A' is not a number", "minute"),
    ("0 0 30 2 *", "day-of-month 30 never occurs in month 2", "day-of-month"),
    ("0 0 31 4,6 *", "day-of-month 31 never occurs in month 4,6", "day-of-month"),
    ("0 0 * * 8L", "day-of-week 8 is out of range", "day-of-week"),
    ("0 0 * * L", "write the last weekday as 0L-7L", "day-of-week"),
    ("0 0 * * FRIL", "write the last weekday as 0L-7L", "day-of-week"),
    ("0 0 * * MON#6", "the week number after # must be 1-5", "day-of-week"),
    ("*/0 * * * *", "a step must be at least 1", "minute"),
    ("0 0 * * 5-1", "day-of-week range '5-1' goes backwards", "day-of-week"),
    ("0 0 * * MON-SUN", "write MON-SUN as 1-7", "day-of-week"),
    ("0 0 L/2 * *", "write L (last day) or LW (last weekday) alone", "day-of-month"),
    ("0 0 15W * *", "day-of-month '15W' is not a number", "day-of-month"),
    ("1,,2 * * * *", "'' is not valid in the minute field", "minute"),
    ("٣ * * * *", "'٣' is not valid in the minute field", "minute"),
    ("0\u00a09 * * *", "4 fields", None),  # a no-break space is not a separator
    ("0 9\n* * *", "4 fields", None),
    ("0 " * 200, "longer than 256 characters", None),
]


@pytest.mark.parametrize(("expression", "words", "field"), INVALID)
def test_invalid_expressions_say_what_is_wrong(
    expression: str, words: str, field: str | None
) -> None:
    with pytest.raises(InvalidCronExpressionError) as caught:
        parse(expression)
    error = caught.value
    assert isinstance(error, ValidationError)
    assert words in error.message
    assert error.message.startswith("Invalid cron expression")
    assert error.code == "INVALID_CRON_EXPRESSION"
    assert error.to_dict()["expression"] == expression
    assert error.context.get("field") == field


def test_invalid_expressions_are_rejected_by_every_entry_point() -> None:
    after = at("2026-01-01T00:00Z")
    for call in (
        lambda: next_fire("0 0 9 * * *", "UTC", after),
        lambda: upcoming("61 * * * *", "UTC", after),
        lambda: describe("nope"),
    ):
        with pytest.raises(InvalidCronExpressionError):
            call()


def test_a_non_string_expression_is_a_validation_error() -> None:
    with pytest.raises(InvalidCronExpressionError, match="expected a string"):
        parse(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("expression", "fixed_time"),
    [
        ("30 2 * * *", True),
        ("0 9,17 * * 1-5", True),
        ("0-59 1 * * *", True),
        ("0 0 * * *", True),
        ("*/15 * * * *", False),
        ("* * * * *", False),
        ("0 * * * *", False),
        ("0 */2 * * *", False),
        ("*/10 0 * * *", False),
    ],
)
def test_fixed_time_or_interval(expression: str, fixed_time: bool) -> None:
    assert parse(expression).fixed_time is fixed_time


def test_parse_keeps_the_text_and_is_idempotent() -> None:
    cron = parse("  0 9\t* * mon-fri ")
    assert cron == CronExpression(
        text="0 9 * * mon-fri", canonical="0 9 * * MON-FRI", fixed_time=True
    )
    assert str(cron) == "0 9 * * mon-fri"
    assert parse(cron) is cron
    assert parse("0 9 ? * MON").canonical == "0 9 * * MON"
    assert parse("0 9 * * *\n").text == "0 9 * * *"
    assert parse("0 0 l,15 * *").canonical == "0 0 L,15 * *"


@pytest.mark.parametrize(
    ("expression", "description"),
    [
        ("0 9 * * 1-5", "At 09:00 on Monday through Friday"),
        ("0 9 * * mon-fri", "At 09:00 on Monday through Friday"),
        ("*/15 * * * *", "Every 15th minute of every hour"),
        ("* * * * *", "Every minute"),
        ("0 * * * *", "At the start of every hour"),
        ("0 0 * * *", "At 00:00 every day"),
        ("0 0 L * *", "At 00:00 on the last day of every month"),
        ("0 0 * * 5L", "At 00:00 on the last Friday of the month"),
        ("0 0 * * 7", "At 00:00 on Sunday"),
        ("0 0 29 2 *", "At 00:00 on February 29"),
        ("0 */2 * * *", "At minute 0 past every second hour"),
        ("0 0 1,15 * *", "At 00:00 on the first and the 15th day of month"),
        ("0 0 * * MON#2", "At 00:00 on the second Monday of the month"),
        ("0 9 ? * MON", "At 09:00 on Monday"),
    ],
)
def test_describe(expression: str, description: str) -> None:
    assert describe(expression) == description
    assert parse(expression).describe() == description


@pytest.mark.parametrize(
    "name", ["UTC", "Etc/UTC", "Europe/London", "America/New_York", "Asia/Kolkata", "Pacific/Apia"]
)
def test_known_time_zones(name: str) -> None:
    assert validate_timezone(name) == name
    assert name in timezones()


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("Mars/Olympus_Mons", "Unknown time zone 'Mars/Olympus_Mons'"),
        ("America/NewYork", "did you mean 'America/New_York'"),
        ("europe/london", "did you mean 'Europe/London'"),
        ("", "Unknown time zone ''"),
        ("localtime", "Unknown time zone 'localtime'"),
        ("../../etc/passwd", "Unknown time zone"),
        ("Europe/London\n", "Unknown time zone"),
    ],
)
def test_unknown_time_zones(name: str, words: str) -> None:
    with pytest.raises(UnknownTimezoneError) as caught:
        validate_timezone(name)
    assert isinstance(caught.value, ValidationError)
    assert words in caught.value.message
    assert caught.value.code == "UNKNOWN_TIMEZONE"
    with pytest.raises(UnknownTimezoneError):
        next_fire("0 0 * * *", name, at("2026-01-01T00:00Z"))


def test_timezones_lists_iana_names_sorted() -> None:
    names = timezones()
    assert names == sorted(names)
    assert {"UTC", "Europe/London", "America/New_York", "Australia/Lord_Howe"} <= set(names)
    assert "localtime" not in names
    assert len(names) > 300


def test_docstring_examples_run() -> None:
    for module in (shipyard.cron, shipyard.schedule_ticks):
        result = doctest.testmod(module)
        assert result.failed == 0
        assert result.attempted > 0
