"""Cron expressions, IANA time zones and the instants a schedule fires at.

A schedule is a 5-field cron expression (``minute hour day-of-month month day-of-week``)
evaluated in an IANA time zone. This module validates both and computes fire times in UTC;
it holds no state and reads no clock, so every result depends only on its arguments.

Daylight-saving time follows one rule (``docs/schedules.md`` has the table of vectors):

* **Fixed-time** expressions (neither the minute nor the hour field starts with ``*``, e.g.
  ``30 2 * * *``, ``0 9,17 * * 1-5``) fire at a local wall-clock time. A tick whose local
  time does not exist (the skipped hour when clocks go forward) fires at the first valid
  instant after it (02:30 → 03:00 in America/New_York); a tick whose local time happens twice
  (clocks go back) fires once, at the first occurrence.
* **Interval** expressions (the minute or hour field starts with ``*``, e.g. ``*/15 * * * *``,
  ``0 * * * *``, ``0 */2 * * *``) follow real time: they fire at every instant whose local
  time matches. A skipped hour has no ticks and a repeated hour has ticks on both passes, so
  ``*/15 * * * *`` fires 4 times in every real hour, none lost or doubled.

Parsing and wall-clock matching use ``cronsim``; the DST mapping above is done here, on
naive wall-clock matches, so it does not depend on the library's own time-zone handling.

Example::

    >>> from datetime import datetime, UTC
    >>> next_fire("30 2 * * *", "America/New_York", datetime(2026, 3, 8, 6, 0, tzinfo=UTC))
    datetime.datetime(2026, 3, 8, 7, 0, tzinfo=datetime.timezone.utc)
    >>> describe("0 9 * * 1-5")
    'At 09:00 on Monday through Friday'
"""

from __future__ import annotations

import datetime
import difflib
import functools
import math
import re
import zoneinfo
from dataclasses import dataclass

from cronsim import CronSim, CronSimError

from shipyard.errors import InvalidCronExpressionError, UnknownTimezoneError

__all__ = [
    "MAX_EXPRESSION_LENGTH",
    "CronExpression",
    "describe",
    "next_fire",
    "parse",
    "timezones",
    "upcoming",
    "validate_timezone",
]

MAX_EXPRESSION_LENGTH = 256
"""Longer expressions are rejected before parsing."""

_UTC = datetime.UTC
_FIELD_HINT = "use 5 fields: minute hour day-of-month month day-of-week (e.g. '0 9 * * 1-5')"
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# Zone files that are aliases of the host's own setting or tzdb internals, not places.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})
# DST segments in tzdb (1970 onwards) last at least ~7 days, so probing every day finds every
# offset change between two instants, even a change that is undone before the second one.
_PROBE_STEP = datetime.timedelta(days=1)
_TINY = datetime.timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0  # the number the first name stands for

    def value(self, text: str) -> int:
        """The number ``text`` stands for; raises ``_FieldError`` naming what is wrong."""
        if text in self.names:
            return self.names.index(text) + self.name_base
        if not text.isascii() or not text.isdigit():
            if self.names:
                raise _FieldError(
                    f"{self.name} '{text}' is not a number or a name "
                    f"(use {self.low}-{self.high} or {self.names[0]}-{self.names[-1]})"
                )
            raise _FieldError(f"{self.name} '{text}' is not a number (use {self.low}-{self.high})")
        number = int(text)
        if not self.low <= number <= self.high:
            raise _FieldError(f"{self.name} {number} is out of range (use {self.low}-{self.high})")
        return number


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, _MONTHS, 1),
    _Field("day-of-week", 0, 7, _DAYS, 0),
)
_ITEM = re.compile(r"(?P<base>\*|[0-9A-Z]+(?:-[0-9A-Z]+)?)(?:/(?P<step>[0-9]+))?", re.ASCII)


class _FieldError(Exception):
    """A problem with one field, turned into an ``InvalidCronExpressionError`` by ``parse``."""


def _check_item(field: _Field, item: str) -> None:
    """Validate one comma-separated item of a field, with a message naming what is wrong."""
    if field.name == "day-of-month" and "L" in item:
        if item in ("L", "LW"):
            return
        raise _FieldError(f"day-of-month '{item}': write L (last day) or LW (last weekday) alone")
    if field.name == "day-of-week" and item.endswith("L"):
        day = item[:-1]
        if not day.isascii() or not day.isdigit():
            raise _FieldError(f"day-of-week '{item}': write the last weekday as 0L-7L (e.g. 5L)")
        field.value(day)
        return
    if field.name == "day-of-week" and "#" in item:
        day, _, nth = item.partition("#")
        field.value(day)
        if nth not in ("1", "2", "3", "4", "5"):
            raise _FieldError(f"day-of-week '{item}': the week number after # must be 1-5")
        return
    match = _ITEM.fullmatch(item)
    if match is None:
        raise _FieldError(f"'{item}' is not valid in the {field.name} field")
    base, step = match["base"], match["step"]
    if step is not None and int(step) == 0:
        raise _FieldError(f"{field.name} '{item}': a step must be at least 1")
    if base == "*":
        return
    start_text, _, end_text = base.partition("-")
    start = field.value(start_text)
    if end_text:
        end = field.value(end_text)
        if end < start:
            sunday = field.name == "day-of-week"
            hint = " (Sunday is 0 or 7: write MON-SUN as 1-7)" if sunday else ""
            raise _FieldError(f"{field.name} range '{base}' goes backwards{hint}")


@dataclass(frozen=True, slots=True)
class CronExpression:
    """A validated 5-field cron expression. Build it with ``parse``.

    Attributes:
        text: the expression as written, with runs of whitespace collapsed to one space.
        canonical: the form given to the evaluator (upper case, ``?`` read as ``*``).
        fixed_time: True when neither the minute nor the hour field starts with ``*``: the
            expression names wall-clock times and the DST rule for skipped and repeated local
            times applies. False for interval expressions, which follow real time.
    """

    text: str
    canonical: str
    fixed_time: bool

    def __str__(self) -> str:
        return self.text

    def describe(self) -> str:
        """A human description in English, e.g. ``"At 09:00 on Monday through Friday"``."""
        return _describe_canonical(self.canonical)


def _invalid(expression: str, detail: str, **context: str) -> InvalidCronExpressionError:
    shown = expression if len(expression) <= 80 else expression[:80] + "…"
    return InvalidCronExpressionError(
        f"Invalid cron expression '{shown}': {detail}", expression=expression, **context
    )


def parse(expression: str | CronExpression) -> CronExpression:
    """Validate a 5-field cron expression.

    Supported: ``*``, numbers, lists (``1,15``), ranges (``1-5``), steps (``*/15``, ``8-18/2``),
    month names ``JAN``-``DEC`` and day names ``SUN``-``SAT`` (any case), day-of-month ``L``
    (last day) and ``LW`` (last weekday), day-of-week ``0``-``7`` (0 and 7 are Sunday), ``5L``
    (last Friday of the month, ``0L``-``7L``) and ``MON#2`` (second Monday); ``?`` in the
    day fields means ``*``. When both day fields are restricted a day matching either fires.

    Raises:
        InvalidCronExpressionError: empty, not 5 fields (6 fields: seconds are not allowed),
            a value out of range, an unknown name, or an expression that never fires. The
            message names the problem and can be shown to users as is (an HTTP 400 body).

    Example::

        >>> parse("0 9 * * MON-FRI").fixed_time
        True
    """
    if isinstance(expression, CronExpression):
        return expression
    if not isinstance(expression, str):
        raise InvalidCronExpressionError(
            f"Invalid cron expression {expression!r}: expected a string; {_FIELD_HINT}",
            expression=repr(expression),
        )
    # Schedulers evaluate the same few expressions over and over: parse each once (an
    # invalid one raises every time: errors are not cached).
    return _parse_text(expression)


@functools.lru_cache(maxsize=4096)
def _parse_text(expression: str) -> CronExpression:
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise _invalid(expression, f"longer than {MAX_EXPRESSION_LENGTH} characters")
    # Fields are separated by ASCII spaces and tabs only (a no-break space is a typo, not a
    # separator); a line break at either end, as read from a file, is ignored.
    parts = [part for part in re.split(r"[ \t]+", expression.strip(" \t\r\n")) if part]
    if not parts:
        raise _invalid(expression, f"it is empty; {_FIELD_HINT}")
    if parts[0].startswith("@"):
        raise _invalid(
            expression, f"macros such as '{parts[0]}' are not supported; write the 5 fields"
        )
    if len(parts) == 6:
        raise _invalid(
            expression, f"CRON expressions with seconds are not allowed (6 fields); {_FIELD_HINT}"
        )
    if len(parts) == 7:
        raise _invalid(
            expression,
            f"seconds and years are not allowed (7 fields); {_FIELD_HINT}",
        )
    if len(parts) != 5:
        raise _invalid(expression, f"{len(parts)} fields; {_FIELD_HINT}")
    upper = [part.upper() for part in parts]
    for index in (2, 4):
        if upper[index] == "?":
            upper[index] = "*"
    for field, text in zip(_FIELDS, upper, strict=True):
        try:
            for item in text.split(","):
                _check_item(field, item)
        except _FieldError as error:
            raise _invalid(expression, str(error), field=field.name) from None
    canonical = " ".join(upper)
    _check_with_library(expression, canonical)
    fixed_time = not (upper[0].startswith("*") or upper[1].startswith("*"))
    return CronExpression(text=" ".join(parts), canonical=canonical, fixed_time=fixed_time)


def _check_with_library(expression: str, canonical: str) -> None:
    """Let the evaluator confirm the expression and that it fires at least once."""
    try:
        iterator = CronSim(canonical, datetime.datetime(2000, 1, 1))
    except CronSimError as error:
        # Every field passed our own checks, so what is left is a day that never occurs in
        # the months given ("0 0 30 2 *"); any other complaint is reported as the library words it.
        if "day-of-month" in str(error):
            day, month = canonical.split()[2], canonical.split()[3]
            raise _invalid(
                expression,
                f"day-of-month {day} never occurs in month {month}",
                field="day-of-month",
            ) from None
        raise _invalid(expression, str(error)) from None
    try:
        next(iterator)
    except StopIteration:
        raise _invalid(expression, "it never fires") from None


def describe(expression: str | CronExpression) -> str:
    """A human description of a cron expression in English.

    Raises:
        InvalidCronExpressionError: as ``parse``.

    Example::

        >>> describe("*/15 * * * *"), describe("0 0 * * 5L")
        ('Every 15th minute of every hour', 'At 00:00 on the last Friday of the month')
    """
    return parse(expression).describe()


@functools.lru_cache(maxsize=1024)
def _describe_canonical(canonical: str) -> str:
    return CronSim(canonical, datetime.datetime(2000, 1, 1)).explain()


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() - _NOT_ZONES) | {"UTC"}


def timezones() -> list[str]:
    """Every IANA time zone name accepted by ``validate_timezone``, sorted.

    The names come from the system's time-zone database and the ``tzdata`` package (a
    dependency, so platforms without a system database, such as Windows, have every zone).
    """
    return sorted(_zone_names())


def validate_timezone(name: str) -> str:
    """Check that ``name`` is an IANA time zone (``"UTC"``, ``"Europe/London"``) and return it.

    Names are case-sensitive, as in the IANA database, on every platform.

    Raises:
        UnknownTimezoneError: not a known zone; the message suggests close names.

    Example::

        >>> validate_timezone("America/New_York")
        'America/New_York'
    """
    if isinstance(name, str) and name in _zone_names():
        return name
    shown = name if isinstance(name, str) else repr(name)
    hint = ""
    if isinstance(name, str) and name:
        close = difflib.get_close_matches(name, sorted(_zone_names()), n=3, cutoff=0.75)
        if close:
            hint = f"; did you mean {' or '.join(repr(zone) for zone in close)}?"
    raise UnknownTimezoneError(
        f"Unknown time zone '{shown}': use an IANA name such as 'UTC', 'Europe/London' or "
        f"'America/New_York'{hint}",
        timezone=shown,
    )


def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(validate_timezone(name))


def _as_utc(moment: datetime.datetime) -> datetime.datetime:
    """``moment`` in UTC; a naive datetime is read as UTC (as everywhere in Shipyard)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=_UTC)
    return moment.astimezone(_UTC)


def _offset(zone: zoneinfo.ZoneInfo, instant: datetime.datetime) -> datetime.timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always has an offset for an aware datetime
    return offset


def _wall_matches_after(canonical: str, wall: datetime.datetime) -> CronSim:
    """Naive wall-clock matches strictly after the naive ``wall`` (no time-zone handling)."""
    return CronSim(canonical, wall)


def _next_wall(iterator: CronSim, expression: str) -> datetime.datetime:
    try:
        return next(iterator)
    except StopIteration:
        raise _invalid(expression, "it never fires again within 50 years") from None


def _first_change(
    zone: zoneinfo.ZoneInfo,
    start: datetime.datetime,
    end: datetime.datetime,
    offset: datetime.timedelta,
) -> datetime.datetime | None:
    """The first instant in ``(start, end]`` whose UTC offset is not ``offset``, or None.

    ``start`` has ``offset``. Probes once a day, then bisects to the second (tzdb changes
    offsets on whole seconds).
    """
    before = start
    probe = min(start + _PROBE_STEP, end)
    while _offset(zone, probe) == offset:
        if probe >= end:
            return None
        before, probe = probe, min(probe + _PROBE_STEP, end)
    low = math.floor(before.timestamp())  # has ``offset``
    high = math.ceil(probe.timestamp())  # has another offset
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(zone, datetime.datetime.fromtimestamp(middle, _UTC)) == offset:
            low = middle
        else:
            high = middle
    return datetime.datetime.fromtimestamp(high, _UTC)


def _resolve_wall_time(wall: datetime.datetime, zone: zoneinfo.ZoneInfo) -> datetime.datetime:
    """The instant a fixed-time tick at naive local ``wall`` fires at (the DST rule)."""
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first.astimezone(_UTC)  # the usual case: the wall time exists exactly once
    if first.astimezone(_UTC).astimezone(zone).replace(tzinfo=None) == wall:
        return first.astimezone(_UTC)  # repeated (clocks went back): the first occurrence
    # Skipped (clocks went forward): fold=1 reads the wall time with the later offset, an
    # instant before the change; fold=0 with the earlier offset, one after it. The change
    # itself is the first valid instant after the skipped wall time.
    before = second.astimezone(_UTC)
    change = _first_change(zone, before, first.astimezone(_UTC), _offset(zone, before))
    assert change is not None  # the two readings have different offsets
    return change


def _next_fixed_time(
    cron: CronExpression, zone: zoneinfo.ZoneInfo, after: datetime.datetime
) -> datetime.datetime:
    # The DST mapping never moves a tick before an earlier wall time's tick, so walking
    # wall-clock matches from after's local time and skipping instants <= after is enough
    # (an instant can be <= after when after lies in the second pass of a repeated hour).
    iterator = _wall_matches_after(cron.canonical, after.astimezone(zone).replace(tzinfo=None))
    while True:
        instant = _resolve_wall_time(_next_wall(iterator, cron.text), zone)
        if instant > after:
            return instant


def _next_interval(
    cron: CronExpression, zone: zoneinfo.ZoneInfo, after: datetime.datetime
) -> datetime.datetime:
    # Real time, one constant-offset segment at a time: inside a segment local time is UTC
    # plus a fixed offset, so the first wall-clock match minus the offset is the answer,
    # unless the offset changes before it; then continue from that change with the new offset.
    start, scan_from, offset = after, after, _offset(zone, after)
    while True:
        wall_start = (start + offset).replace(tzinfo=None)
        wall = _next_wall(_wall_matches_after(cron.canonical, wall_start), cron.text)
        candidate = (wall - offset).replace(tzinfo=_UTC)
        change = _first_change(zone, scan_from, candidate, offset)
        if change is None:
            return candidate
        # Strictly after "just before the change", so a tick at the change itself counts.
        start, scan_from, offset = change - _TINY, change, _offset(zone, change)


def next_fire(
    expression: str | CronExpression, timezone: str, after: datetime.datetime
) -> datetime.datetime:
    """The first fire time strictly after ``after``, as an aware UTC datetime.

    ``expression`` is evaluated in ``timezone`` (an IANA name) with the DST rule in the
    module docstring. A naive ``after`` is read as UTC.

    Raises:
        InvalidCronExpressionError: an invalid expression.
        UnknownTimezoneError: an unknown time zone.

    Example::

        >>> from datetime import datetime, UTC
        >>> next_fire("0 0 * * *", "America/New_York", datetime(2026, 7, 1, tzinfo=UTC))
        datetime.datetime(2026, 7, 1, 4, 0, tzinfo=datetime.timezone.utc)
    """
    cron = parse(expression)
    zone = _zone(timezone)
    moment = _as_utc(after)
    if cron.fixed_time:
        return _next_fixed_time(cron, zone, moment)
    return _next_interval(cron, zone, moment)


def upcoming(
    expression: str | CronExpression, timezone: str, after: datetime.datetime, n: int = 5
) -> list[datetime.datetime]:
    """The next ``n`` fire times strictly after ``after`` (aware UTC datetimes, ascending).

    Example::

        >>> from datetime import datetime, UTC
        >>> [t.hour for t in upcoming("0 */6 * * *", "UTC", datetime(2026, 1, 1, tzinfo=UTC), 3)]
        [6, 12, 18]
    """
    if n < 0:
        raise ValueError(f"n must not be negative, got {n}")
    cron = parse(expression)
    times: list[datetime.datetime] = []
    moment = after
    for _ in range(n):
        moment = next_fire(cron, timezone, moment)
        times.append(moment)
    return times
