"""Schedule ticks: which tick fires after a pause, and where in its window it fires.

Pure functions for the scheduler (no clock, no store): the caller passes ``now``.

* ``due_ticks`` applies the downtime rule: when one or more nominal ticks have passed since
  the last one handled, only the **latest** fires (with its nominal time), then the schedule
  moves on to the next future tick. Missed intermediate ticks never fire.
* ``parse_window`` and ``window_offset_ms`` spread fires over a window after each nominal
  tick (``"30m"``, ``"2h"``, ``"10%"`` of the interval), with an offset that is the same for
  a given schedule and tick on every worker, and always lands before the next tick. The
  nominal time (the payload's ``timestamp``) never moves; only the moment the run starts does.

Example::

    >>> from datetime import datetime, UTC
    >>> ticks = due_ticks("0 * * * *", "UTC", last_nominal=datetime(2026, 1, 1, 0, tzinfo=UTC),
    ...                   now=datetime(2026, 1, 1, 5, 30, tzinfo=UTC))
    >>> ticks.fire_now.hour, ticks.next_nominal.hour   # 01:00-04:00 are skipped
    (5, 6)
"""

from __future__ import annotations

import datetime
import hashlib
import re
from dataclasses import dataclass
from typing import NamedTuple

from shipyard.cron import CronExpression, next_fire, parse
from shipyard.errors import InvalidScheduleWindowError

__all__ = [
    "MAX_WINDOW_MS",
    "DueTicks",
    "Window",
    "due_ticks",
    "parse_window",
    "window_offset_ms",
]

MAX_WINDOW_MS = 24 * 3_600_000
"""A fixed window is at most 24 hours."""

_WINDOW = re.compile(r"(?P<number>[0-9]{1,5})(?P<unit>m|h|%)", re.ASCII)
_WINDOW_HINT = (
    "use whole minutes or hours up to 24 hours ('30m', '2h') or a percentage of the "
    "interval between ticks ('10%'); '0m' fires on time"
)
# Enough to find a tick in a dense schedule at once; doubled while no tick is in the window.
_FIRST_LOOKBACK = datetime.timedelta(hours=1)


class DueTicks(NamedTuple):
    """What the scheduler does now: fire ``fire_now`` (if any), then wait for ``next_nominal``."""

    fire_now: datetime.datetime | None
    """The nominal tick to fire now (the latest one at or before ``now``), or None."""
    next_nominal: datetime.datetime
    """The first nominal tick strictly after ``now`` (or after ``last_nominal`` when none fires)."""


def due_ticks(
    expression: str | CronExpression,
    timezone: str,
    last_nominal: datetime.datetime,
    now: datetime.datetime,
) -> DueTicks:
    """Decide which tick fires at ``now`` after the tick ``last_nominal`` was handled.

    The ticks considered are those strictly after ``last_nominal`` and at or before ``now``
    (for a new schedule, pass its creation time as ``last_nominal``):

    * none: nothing fires; ``next_nominal`` is the first tick after ``last_nominal``;
    * one or more: only the latest fires, with its nominal timestamp (one catch-up run after
      downtime); the earlier ones are skipped for good; ``next_nominal`` is the first tick
      after ``now``.

    All datetimes returned are aware UTC; naive arguments are read as UTC.

    Example::

        >>> from datetime import datetime, UTC
        >>> due_ticks("0 9 * * *", "UTC", datetime(2026, 1, 1, 9, tzinfo=UTC),
        ...           datetime(2026, 1, 1, 12, tzinfo=UTC)).fire_now is None
        True
    """
    cron = parse(expression)
    first = next_fire(cron, timezone, last_nominal)
    if first > _as_utc(now):
        return DueTicks(None, first)
    second = next_fire(cron, timezone, first)
    if second > _as_utc(now):
        return DueTicks(first, second)  # the usual case: exactly one tick is due
    latest, following = _latest_tick(cron, timezone, first, _as_utc(now))
    return DueTicks(latest, following)


def _latest_tick(
    cron: CronExpression, timezone: str, lower: datetime.datetime, now: datetime.datetime
) -> tuple[datetime.datetime, datetime.datetime]:
    """The latest tick in ``(lower, now]`` (there is one) and the first tick after ``now``.

    Walks forward from ``now - lookback``, doubling the lookback until a tick is in it, so a
    per-minute schedule down for a year costs about 60 steps, not half a million.
    """
    lookback = _FIRST_LOOKBACK
    while True:
        start = max(lower, now - lookback)
        latest: datetime.datetime | None = None
        tick = next_fire(cron, timezone, start)
        while tick <= now:
            latest, tick = tick, next_fire(cron, timezone, tick)
        if latest is not None:
            return latest, tick
        lookback *= 2  # start == lower cannot be reached here: a tick exists in (lower, now]


def _as_utc(moment: datetime.datetime) -> datetime.datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)


@dataclass(frozen=True, slots=True)
class Window:
    """How far after each nominal tick a schedule's run may start. Build it with ``parse_window``.

    Exactly one of ``fixed_ms`` (a fixed length, at most 24 h) and ``percent`` (a share of
    the interval to the next tick, 0-100) is set. Either way the window is capped at the
    interval to the next tick.
    """

    text: str
    fixed_ms: int | None = None
    percent: int | None = None

    def span_ms(self, nominal: datetime.datetime, next_nominal: datetime.datetime) -> int:
        """The window's length in ms for the tick at ``nominal`` (capped at the interval)."""
        interval_ms = _ms_between(nominal, next_nominal)
        if self.percent is not None:
            return interval_ms * self.percent // 100
        return min(self.fixed_ms or 0, interval_ms)


def parse_window(value: str) -> Window:
    """Parse a schedule window: ``"30m"``, ``"2h"`` (whole minutes or hours, up to 24 h) or
    ``"N%"`` (N from 0 to 100, a share of the interval to the next tick). ``"0m"``, ``"0h"``
    and ``"0%"`` mean on time.

    Raises:
        InvalidScheduleWindowError: anything else (``"90s"``, ``"1h30m"``, ``"25h"``, ``"150%"``).

    Example::

        >>> parse_window("30m").fixed_ms, parse_window("10%").percent
        (1800000, 10)
    """
    text = value.strip() if isinstance(value, str) else ""
    match = _WINDOW.fullmatch(text)
    if match is None:
        shown = value if isinstance(value, str) else repr(value)
        raise InvalidScheduleWindowError(
            f"Invalid schedule window '{shown}': {_WINDOW_HINT}", window=shown
        )
    number, unit = int(match["number"]), match["unit"]
    if unit == "%":
        if number > 100:
            raise InvalidScheduleWindowError(
                f"Invalid schedule window '{text}': a percentage must be 0-100%", window=text
            )
        return Window(text=text, percent=number)
    fixed_ms = number * (60_000 if unit == "m" else 3_600_000)
    if fixed_ms > MAX_WINDOW_MS:
        raise InvalidScheduleWindowError(
            f"Invalid schedule window '{text}': at most 24 hours ('1440m' or '24h')", window=text
        )
    return Window(text=text, fixed_ms=fixed_ms)


def window_offset_ms(
    schedule_id: str,
    nominal: datetime.datetime,
    next_nominal: datetime.datetime,
    window: Window | str,
) -> int:
    """How many ms after ``nominal`` this schedule's run starts, in ``[0, span)``.

    Deterministic: a hash of the schedule id and the nominal time, so every worker computes
    the same offset for the same tick, and each tick of a schedule gets its own. The offset
    is always smaller than the interval to ``next_nominal``, so a spread run never reaches
    the next tick. A window of 0 (or a tick with no room) gives 0: fire on time.

    Example::

        >>> from datetime import datetime, UTC
        >>> t0, t1 = datetime(2026, 1, 1, 9, tzinfo=UTC), datetime(2026, 1, 2, 9, tzinfo=UTC)
        >>> 0 <= window_offset_ms("sched_1", t0, t1, "30m") < 30 * 60_000
        True
    """
    spread = window if isinstance(window, Window) else parse_window(window)
    span = spread.span_ms(nominal, next_nominal)
    if span <= 0:
        return 0
    nominal_ms = _epoch_ms(nominal)
    # sha256, not hash(): Python's hash of a str changes with every process.
    digest = hashlib.sha256(f"{schedule_id}\x00{nominal_ms}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % span


def _epoch_ms(moment: datetime.datetime) -> int:
    delta = _as_utc(moment) - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _ms_between(start: datetime.datetime, end: datetime.datetime) -> int:
    return max(0, _epoch_ms(end) - _epoch_ms(start))
