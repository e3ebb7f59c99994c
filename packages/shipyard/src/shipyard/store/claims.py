"""How a claim chooses runs under concurrency limits; shared by every backend.

A backend takes its lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: the environment's slot row
``FOR UPDATE``), reads the slot counters, asks this module how many runs each group may start,
fetches that many ready runs per group, and lets :func:`pick` choose the oldest
priority-adjusted ones. The counters are kept by database triggers in the same transaction as
every status change, so what is read under the lock is exact.

Limits (``docs/queues.md``): each (queue, concurrency key) group runs at most the queue's limit —
its override, else the limit set in code, else the environment limit — and never more than the
environment limit; the whole environment runs at most ``limit × burst_factor``.

Shares: while other workers want more runs than they get, a worker claims at most its
:class:`ClaimShare` of each group's limit (``ceil(limit × fraction)`` minus the runs of that group
it holds), so the limit is split between them instead of going to whichever finishes first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class GroupState:
    """A (queue, concurrency key) group with queued runs, as read under the claim lock."""

    queue: str
    concurrency_key: str
    concurrency_limit: int | None
    limit_override: int | None
    paused: bool
    running: int


def group_limit(
    concurrency_limit: int | None, limit_override: int | None, environment_limit: int
) -> int:
    """The effective limit of a queue: override, else code, else the environment's; capped."""
    limit = limit_override if limit_override is not None else concurrency_limit
    return environment_limit if limit is None else min(limit, environment_limit)


def group_capacity(group: GroupState, environment_limit: int) -> int:
    """How many more runs the group may start now (0 when paused or full)."""
    if group.paused:
        return 0
    limit = group_limit(group.concurrency_limit, group.limit_override, environment_limit)
    return max(0, limit - group.running)


@dataclass(frozen=True, slots=True)
class ClaimShare:
    """The part of each group's limit a claiming worker may hold: ``fraction`` (one over the
    number of workers wanting runs, itself included) and the runs it holds per ``(queue,
    concurrency key)`` group (a concurrency key of ``""`` for none)."""

    fraction: float
    held: Mapping[tuple[str, str], int] = field(default_factory=dict)

    def capacity(self, group: GroupState, environment_limit: int) -> int:
        """How many more runs of the group the worker may hold within its share."""
        limit = group_limit(group.concurrency_limit, group.limit_override, environment_limit)
        mine = self.held.get((group.queue, group.concurrency_key), 0)
        return max(0, math.ceil(limit * self.fraction) - mine)

    def held_rows(self) -> list[tuple[str, str, int]]:
        """``held`` as ``(queue, concurrency key, runs)`` rows (PostgreSQL binds them as JSON)."""
        return [(queue, key, n) for (queue, key), n in self.held.items()]


def environment_capacity(running: int, environment_limit: int, burst_factor: float) -> int:
    """How many more runs the environment may start now (burst included)."""
    return max(0, int(environment_limit * burst_factor) - running)


def pick(candidates: Iterable[tuple[int, str]], count: int) -> list[str]:
    """The ``count`` candidate ids with the smallest sort keys (``(sort_key, id)`` pairs)."""
    if count <= 0:
        return []
    return [run_id for _, run_id in sorted(candidates)[:count]]
