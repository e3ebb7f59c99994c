"""Duration strings, absolute times and their display.

One grammar everywhere (delay, ttl, debounce, token timeouts, idempotency key TTL): one or more
``<digits><unit>`` groups with units ``w``, ``d``, ``h`` (or ``hr``), ``m`` and ``s``, e.g.
``"30s"``, ``"5m"``, ``"2h30m"``, ``"1w2d"``. An invalid value is always an error, never a
silent fallback.

Example::

    >>> parse_duration_ms("2h30m")
    9000000
    >>> format_duration_ms(123_000)
    '2m 3s'
"""

from __future__ import annotations

import datetime
import math
import re

from shipyard.errors import InvalidDurationError

__all__ = [
    "MAX_DURATION_MS",
    "MAX_DURATION_STRING_LENGTH",
    "format_duration_ms",
    "parse_duration_ms",
    "resolve_time",
]

MAX_DURATION_STRING_LENGTH = 100
"""Longer duration strings are rejected before matching (as Trigger.dev does)."""

MAX_DURATION_MS = 100 * 365 * 86_400_000
"""The longest duration (and the furthest time from now) accepted anywhere: 100 years.

Every time is stored as epoch milliseconds in a 64-bit column; a bound far inside that range
turns ``"99999999999999999999w"`` into a clear error instead of an overflow in the database."""

# re.ASCII so that \d does not accept other scripts' digits; fullmatch so "5m\n" is refused.
_DURATION = re.compile(r"(?:\d+(?:w|d|hr|h|m|s))+", re.ASCII)
_PART = re.compile(r"(\d+)(w|d|hr|h|m|s)", re.ASCII)

_UNIT_MS = {
    "w": 7 * 24 * 3_600_000,
    "d": 24 * 3_600_000,
    "hr": 3_600_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1_000,
}

_GRAMMAR_HINT = 'use digits followed by w, d, h (or hr), m or s, e.g. "30s", "5m", "2h30m"'

DurationLike = str | int | float | datetime.timedelta
TimeLike = str | int | float | datetime.timedelta | datetime.datetime


def _parse_duration_string(value: str) -> int | None:
    """Milliseconds for a valid duration string, ``None`` when it does not match the grammar."""
    if len(value) > MAX_DURATION_STRING_LENGTH or not _DURATION.fullmatch(value):
        return None
    return sum(int(digits) * _UNIT_MS[unit] for digits, unit in _PART.findall(value))


def _invalid_string(value: str) -> InvalidDurationError:
    if len(value) > MAX_DURATION_STRING_LENGTH:
        shown = value[:40] + "…"
        return InvalidDurationError(
            f"Invalid duration '{shown}': longer than {MAX_DURATION_STRING_LENGTH} characters; "
            f"{_GRAMMAR_HINT}",
            value=value,
        )
    return InvalidDurationError(f"Invalid duration '{value}': {_GRAMMAR_HINT}", value=value)


def _bounded(ms: int, value: object) -> int:
    if ms > MAX_DURATION_MS:
        raise InvalidDurationError(
            f"Invalid duration {value!r}: longer than the maximum of 100 years.",
            value=str(value)[:40],
            limit_ms=MAX_DURATION_MS,
        )
    return ms


def parse_duration_ms(value: DurationLike) -> int:
    """Convert a duration to whole milliseconds.

    ``value`` is a duration string (``"90s"``, ``"2h30m"``, ``"1w2d"``), a number of seconds
    (``int``/``float``, not negative) or a ``timedelta`` (not negative). The result is rounded
    to the nearest millisecond.

    Raises:
        InvalidDurationError: the string does not match ``^(\\d+(w|d|hr|h|m|s))+$``, is longer
            than 100 characters, or the number/timedelta is negative or not finite.

    Example::

        >>> parse_duration_ms("1m30s"), parse_duration_ms(1.5)
        (90000, 1500)
    """
    if isinstance(value, str):
        ms = _parse_duration_string(value)
        if ms is None:
            raise _invalid_string(value)
        return _bounded(ms, value)
    if isinstance(value, datetime.timedelta):
        if value < datetime.timedelta(0):
            raise InvalidDurationError(
                f"Invalid duration {value!r}: a duration cannot be negative", value=str(value)
            )
        # Integer arithmetic avoids float error on long timedeltas.
        micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
        return _bounded((micros + 500) // 1000, value)
    # bool is an int subclass, but True seconds is almost certainly a mistake.
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise InvalidDurationError(
                f"Invalid duration {value!r}: a number of seconds must be finite and not negative",
                value=value,
            )
        if value > MAX_DURATION_MS / 1000:
            return _bounded(MAX_DURATION_MS + 1, value)
        return math.floor(value * 1000 + 0.5)
    raise InvalidDurationError(
        f"Invalid duration {value!r}: expected a duration string, a number of seconds or a "
        f"timedelta; for strings {_GRAMMAR_HINT}",
        value=repr(value),
    )


def _datetime_to_ms(value: datetime.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    delta = value - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return (micros + 500) // 1000


def resolve_time(value: TimeLike, now_ms: int) -> int:
    """Resolve a ``delay``-like option to an absolute epoch time in milliseconds.

    A ``datetime`` (naive means UTC) or an ISO-8601 string (``"2025-01-02T03:04:05Z"``) is an
    absolute time; anything else is a duration counted from ``now_ms``. A time at or before
    ``now_ms`` resolves to ``now_ms`` ("no delay").

    Raises:
        InvalidDurationError: a string that is neither a duration nor an ISO-8601 date.

    Example::

        >>> resolve_time("5m", now_ms=1_000)
        301000
        >>> resolve_time("1970-01-01T00:00:00Z", now_ms=1_000)
        1000
    """
    if isinstance(value, datetime.datetime):
        return _within_range(max(now_ms, _datetime_to_ms(value)), now_ms, value)
    if isinstance(value, str):
        ms = _parse_duration_string(value)
        if ms is not None:
            return now_ms + _bounded(ms, value)
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            absolute = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise InvalidDurationError(
                f"Invalid time '{value}': expected an ISO-8601 date-time "
                f'(e.g. "2025-01-02T03:04:05Z") or a duration; {_GRAMMAR_HINT}',
                value=value,
            ) from None
        return _within_range(max(now_ms, _datetime_to_ms(absolute)), now_ms, value)
    return now_ms + parse_duration_ms(value)


def _within_range(at_ms: int, now_ms: int, value: object) -> int:
    if at_ms - now_ms > MAX_DURATION_MS:
        raise InvalidDurationError(
            f"Invalid time {value!r}: more than 100 years from now.", value=str(value)[:40]
        )
    return at_ms


def format_duration_ms(ms: int) -> str:
    """Human-readable duration for display.

    Under a second: ``"250ms"``; under a minute: seconds with one decimal when needed
    (``"1.5s"``, ``"42s"``); longer: whole units, largest first (``"2m 3s"``, ``"1h 5m"``,
    ``"2d 3h"``).

    Example::

        >>> format_duration_ms(250), format_duration_ms(1500), format_duration_ms(123_000)
        ('250ms', '1.5s', '2m 3s')
    """
    if ms < 0:
        return "-" + format_duration_ms(-ms)
    if ms < 1000:
        return f"{ms}ms"
    tenths = (ms + 50) // 100
    if tenths < 600:
        whole, frac = divmod(tenths, 10)
        return f"{whole}s" if frac == 0 else f"{whole}.{frac}s"
    seconds = (ms + 500) // 1000
    parts: list[str] = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts)
