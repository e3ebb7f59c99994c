"""How a claim chooses runs under concurrency limits; shared by every backend.

A backend takes its lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: the environment's slot row
``FOR UPDATE``), reads the slot counters, asks this module how many runs each group may start,
fetches that many ready runs per group, and lets :func:`pick` choose the oldest
priority-adjusted ones. The counters are kept by database triggers in the same transaction as
every status change, so what is read under the lock is exact.

Limits (``docs/queues.md``): each (queue, concurrency key) group runs at most the queue's limit —
its override, else the limit set in code, else the environment limit — and never more than the
environment limit; the whole environment runs at most ``limit × burst_factor``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


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


def environment_capacity(running: int, environment_limit: int, burst_factor: float) -> int:
    """How many more runs the environment may start now (burst included)."""
    return max(0, int(environment_limit * burst_factor) - running)


def pick(candidates: Iterable[tuple[int, str]], count: int) -> list[str]:
    """The ``count`` candidate ids with the smallest sort keys (``(sort_key, id)`` pairs)."""
    if count <= 0:
        return []
    return [run_id for _, run_id in sorted(candidates)[:count]]
