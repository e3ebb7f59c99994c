"""Daylight-saving time in ``shipyard.cron``: vectors, the docs table and an independent oracle.

The rule (docs/schedules.md): fixed-time expressions fire a skipped local time at the first
valid instant after it and a repeated local time once, at its first occurrence; interval
expressions (``*`` or ``*/n`` in the minute or hour field) follow real time.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shipyard.cron import next_fire, upcoming

UTC = datetime.UTC
DOCS = Path(__file__).resolve().parents[4] / "docs" / "schedules.md"


def at(text: str) -> datetime.datetime:
    """``"2026-03-08T07:00Z"`` → an aware UTC datetime."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso(moment: datetime.datetime) -> str:
    assert moment.tzinfo is not None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


# (expression, zone, after, [(UTC, local wall time with the zone's abbreviation)])
# America/New_York: 2026-03-08 02:00 EST → 03:00 EDT, 2026-11-01 02:00 EDT → 01:00 EST;
# 2027-03-14 and 2027-11-07. Europe/London: 2026-03-29 01:00 GMT → 02:00 BST,
# 2026-10-25 02:00 BST → 01:00 GMT; 2027-03-28 and 2027-10-31.
DST_VECTORS: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    # Fixed-time: a skipped local time fires at the first valid instant after it.
    (
        "30 2 * * *",
        "America/New_York",
        "2026-03-07T12:00Z",
        [("2026-03-08T07:00Z", "03-08 03:00 EDT"), ("2026-03-09T06:30Z", "03-09 02:30 EDT")],
    ),
    (
        "0 2 * * *",
        "America/New_York",
        "2026-03-07T12:00Z",
        [("2026-03-08T07:00Z", "03-08 03:00 EDT"), ("2026-03-09T06:00Z", "03-09 02:00 EDT")],
    ),
    # Several skipped ticks (02:00, 02:30) and a real one (03:00) at one instant fire once.
    (
        "0,30 2,3 * * *",
        "America/New_York",
        "2026-03-08T06:00Z",
        [("2026-03-08T07:00Z", "03-08 03:00 EDT"), ("2026-03-08T07:30Z", "03-08 03:30 EDT")],
    ),
    # Fixed-time: a repeated local time fires once, at its first occurrence.
    (
        "30 1 * * *",
        "America/New_York",
        "2026-10-31T12:00Z",
        [("2026-11-01T05:30Z", "11-01 01:30 EDT"), ("2026-11-02T06:30Z", "11-02 01:30 EST")],
    ),
    (
        "30 1 * * *",
        "America/New_York",
        "2026-11-01T06:10Z",  # 01:10 EST, inside the second pass of the repeated hour
        [("2026-11-02T06:30Z", "11-02 01:30 EST")],
    ),
    # Local midnight all year.
    (
        "0 0 * * *",
        "America/New_York",
        "2026-03-07T00:00Z",
        [
            ("2026-03-07T05:00Z", "03-07 00:00 EST"),
            ("2026-03-08T05:00Z", "03-08 00:00 EST"),
            ("2026-03-09T04:00Z", "03-09 00:00 EDT"),
        ],
    ),
    (
        "0 0 * * *",
        "America/New_York",
        "2026-10-31T00:00Z",
        [
            ("2026-10-31T04:00Z", "10-31 00:00 EDT"),
            ("2026-11-01T04:00Z", "11-01 00:00 EDT"),
            ("2026-11-02T05:00Z", "11-02 00:00 EST"),
        ],
    ),
    # Interval expressions follow real time: every 15 real minutes, none lost or doubled.
    (
        "*/15 * * * *",
        "America/New_York",
        "2026-03-08T06:30Z",
        [
            ("2026-03-08T06:45Z", "03-08 01:45 EST"),
            ("2026-03-08T07:00Z", "03-08 03:00 EDT"),
            ("2026-03-08T07:15Z", "03-08 03:15 EDT"),
        ],
    ),
    (
        "*/15 * * * *",
        "America/New_York",
        "2026-11-01T05:30Z",
        [
            ("2026-11-01T05:45Z", "11-01 01:45 EDT"),
            ("2026-11-01T06:00Z", "11-01 01:00 EST"),
            ("2026-11-01T06:15Z", "11-01 01:15 EST"),
        ],
    ),
    (
        "0 * * * *",
        "America/New_York",
        "2026-11-01T04:30Z",
        [
            ("2026-11-01T05:00Z", "11-01 01:00 EDT"),
            ("2026-11-01T06:00Z", "11-01 01:00 EST"),
            ("2026-11-01T07:00Z", "11-01 02:00 EST"),
        ],
    ),
    (
        "0 * * * *",
        "America/New_York",
        "2026-03-08T05:30Z",
        [("2026-03-08T06:00Z", "03-08 01:00 EST"), ("2026-03-08T07:00Z", "03-08 03:00 EDT")],
    ),
    (
        "30 2 * * *",
        "America/New_York",
        "2027-03-13T12:00Z",
        [("2027-03-14T07:00Z", "03-14 03:00 EDT"), ("2027-03-15T06:30Z", "03-15 02:30 EDT")],
    ),
    (
        "30 1 * * *",
        "America/New_York",
        "2027-11-06T12:00Z",
        [("2027-11-07T05:30Z", "11-07 01:30 EDT"), ("2027-11-08T06:30Z", "11-08 01:30 EST")],
    ),
    (
        "30 1 * * *",
        "Europe/London",
        "2026-03-28T12:00Z",
        [("2026-03-29T01:00Z", "03-29 02:00 BST"), ("2026-03-30T00:30Z", "03-30 01:30 BST")],
    ),
    (
        "30 1 * * *",
        "Europe/London",
        "2026-10-24T12:00Z",
        [("2026-10-25T00:30Z", "10-25 01:30 BST"), ("2026-10-26T01:30Z", "10-26 01:30 GMT")],
    ),
    (
        "0 0 * * *",
        "Europe/London",
        "2026-03-28T00:00Z",
        [("2026-03-29T00:00Z", "03-29 00:00 GMT"), ("2026-03-29T23:00Z", "03-30 00:00 BST")],
    ),
    (
        "*/15 * * * *",
        "Europe/London",
        "2026-03-29T00:30Z",
        [
            ("2026-03-29T00:45Z", "03-29 00:45 GMT"),
            ("2026-03-29T01:00Z", "03-29 02:00 BST"),
            ("2026-03-29T01:15Z", "03-29 02:15 BST"),
        ],
    ),
    (
        "*/15 * * * *",
        "Europe/London",
        "2026-10-25T00:30Z",
        [
            ("2026-10-25T00:45Z", "10-25 01:45 BST"),
            ("2026-10-25T01:00Z", "10-25 01:00 GMT"),
            ("2026-10-25T01:15Z", "10-25 01:15 GMT"),
        ],
    ),
    (
        "30 1 * * *",
        "Europe/London",
        "2027-03-27T12:00Z",
        [("2027-03-28T01:00Z", "03-28 02:00 BST"), ("2027-03-29T00:30Z", "03-29 01:30 BST")],
    ),
    (
        "30 1 * * *",
        "Europe/London",
        "2027-10-30T12:00Z",
        [("2027-10-31T00:30Z", "10-31 01:30 BST"), ("2027-11-01T01:30Z", "11-01 01:30 GMT")],
    ),
    (
        "0 9 * * 5L",
        "Europe/London",
        "2026-06-01T00:00Z",
        [("2026-06-26T08:00Z", "06-26 09:00 BST"), ("2026-07-31T08:00Z", "07-31 09:00 BST")],
    ),
    # Lord Howe Island moves its clocks by 30 minutes (02:00 → 02:30).
    (
        "15 2 * * *",
        "Australia/Lord_Howe",
        "2026-10-03T12:00Z",
        [("2026-10-03T15:30Z", "10-04 02:30 +11"), ("2026-10-04T15:15Z", "10-05 02:15 +11")],
    ),
]


@pytest.mark.parametrize(("expression", "zone", "after", "expected"), DST_VECTORS)
def test_dst_vectors(
    expression: str, zone: str, after: str, expected: list[tuple[str, str]]
) -> None:
    fires = upcoming(expression, zone, at(after), n=len(expected))
    got = [
        (iso(fire), fire.astimezone(ZoneInfo(zone)).strftime("%m-%d %H:%M %Z")) for fire in fires
    ]
    assert got == expected


def test_the_dst_table_in_the_docs_matches_the_code() -> None:
    """Every row of the vector table in docs/schedules.md is what ``upcoming`` returns."""
    row = re.compile(
        r"^\| [^|]+ \| `(?P<expr>[^`]+)` \| (?P<zone>[A-Za-z_/]+) "
        r"\| (?P<after>\d{4}-\d\d-\d\dT\d\d:\d\dZ) \| (?P<fires>.+) \|$"
    )
    rows = [m for line in DOCS.read_text(encoding="utf-8").splitlines() if (m := row.match(line))]
    assert len(rows) == len(DST_VECTORS)
    for match in rows:
        expected = match["fires"].split(", ")
        fires = upcoming(match["expr"], match["zone"], at(match["after"]), n=len(expected))
        zone = ZoneInfo(match["zone"])
        got = [f"{iso(f)} ({f.astimezone(zone).strftime('%m-%d %H:%M %Z')})" for f in fires]
        assert got == expected, match.group(0)


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("America/New_York", "2026-03-08"),
        ("America/New_York", "2026-11-01"),
        ("Europe/London", "2026-03-29"),
        ("Europe/London", "2026-10-25"),
        ("America/New_York", "2027-03-14"),
        ("Europe/London", "2027-10-31"),
    ],
)
def test_sub_hour_schedules_fire_four_times_every_real_hour_across_dst(zone: str, day: str) -> None:
    start = at(f"{day}T00:00Z")
    fires = upcoming("*/15 * * * *", zone, start, n=4 * 12)
    gaps = {b - a for a, b in zip([start, *fires], fires, strict=False)}
    assert gaps == {datetime.timedelta(minutes=15)}
    assert len(set(fires)) == 48


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/London"])
@pytest.mark.parametrize("expression", ["30 2 * * *", "30 1 * * *", "0 0 * * *", "59 23 * * *"])
def test_fixed_time_schedules_fire_once_per_local_day_all_year(zone: str, expression: str) -> None:
    tz = ZoneInfo(zone)
    fires = upcoming(expression, zone, at("2025-12-31T12:00Z"), n=366)
    days = [fire.astimezone(tz).date() for fire in fires]
    assert days == [days[0] + datetime.timedelta(days=i) for i in range(366)]


# An oracle written independently of the module: for each minute of a window, does the
# wall clock match? Fixed-time expressions walk local wall-clock minutes and map them with
# the DST rule; interval expressions walk real (UTC) minutes.
def _matches(field: str, value: int) -> bool:
    """A minute or hour field: numbers, lists, ranges and steps (``*/n``, ``a/n``, ``a-b/n``)."""
    for item in field.split(","):
        base, _, step = item.partition("/")
        if base == "*":
            start, end = 0, 59
        elif "-" in base:
            start, end = (int(part) for part in base.split("-"))
        else:
            start = int(base)
            end = 59 if step else start
        if start <= value <= end and (value - start) % int(step or 1) == 0:
            return True
    return False


def _oracle(
    expression: str, zone: str, start: datetime.datetime, end: datetime.datetime
) -> list[datetime.datetime]:
    tz = ZoneInfo(zone)
    minute, hour = expression.split()[:2]

    def wall_matches(wall: datetime.datetime) -> bool:
        return _matches(minute, wall.minute) and _matches(hour, wall.hour)

    def exists(wall: datetime.datetime) -> bool:
        instant = wall.replace(tzinfo=tz).astimezone(UTC)
        return instant.astimezone(tz).replace(tzinfo=None) == wall

    one = datetime.timedelta(minutes=1)
    fires = set()
    if not (minute.startswith("*") or hour.startswith("*")):
        wall = start.astimezone(tz).replace(tzinfo=None) - datetime.timedelta(hours=3)
        while wall <= end.astimezone(tz).replace(tzinfo=None) + datetime.timedelta(hours=3):
            if wall_matches(wall):
                valid = wall
                while not exists(valid):
                    valid += one
                fires.add(valid.replace(tzinfo=tz, fold=0).astimezone(UTC))
            wall += one
    else:
        instant = start.replace(second=0, microsecond=0)
        while instant <= end:
            if wall_matches(instant.astimezone(tz).replace(tzinfo=None)):
                fires.add(instant)
            instant += one
    return sorted(fire for fire in fires if start < fire <= end)


ORACLE_ZONES = [
    "America/New_York",
    "Europe/London",
    "Europe/Dublin",  # its "standard" time is the summer one
    "America/Santiago",  # clocks change at midnight
    "Australia/Lord_Howe",  # 30-minute change
    "Pacific/Chatham",  # changes at 02:45 local
    "Antarctica/Troll",  # 2-hour change
]
ORACLE_EXPRESSIONS = [
    "30 2 * * *",
    "0 0 * * *",
    "15,45 0-3 * * *",
    "*/15 * * * *",
    "0 * * * *",
    "0 */2 * * *",
    "*/10 0 * * *",
    "*/7 2 * * *",
]


def _transitions(zone: str, year: int) -> list[datetime.datetime]:
    tz = ZoneInfo(zone)
    found, instant = [], datetime.datetime(year, 1, 1, tzinfo=UTC)
    offset = instant.astimezone(tz).utcoffset()
    while instant.year == year:
        instant += datetime.timedelta(hours=1)
        if instant.astimezone(tz).utcoffset() != offset:
            found.append(instant)
            offset = instant.astimezone(tz).utcoffset()
    return found


@pytest.mark.parametrize("zone", ORACLE_ZONES)
def test_fire_times_match_an_independent_oracle_around_every_2026_transition(zone: str) -> None:
    transitions = _transitions(zone, 2026)
    assert transitions
    for change in transitions:
        start = change - datetime.timedelta(hours=20, minutes=7)
        end = change + datetime.timedelta(hours=20)
        for expression in ORACLE_EXPRESSIONS:
            expected = _oracle(expression, zone, start, end)
            got, moment = [], start
            while (moment := next_fire(expression, zone, moment)) <= end:
                got.append(moment)
            assert got == expected, (zone, change, expression)
