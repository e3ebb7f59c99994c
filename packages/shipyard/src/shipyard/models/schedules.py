"""Schedules as the engine returns them, and the payload a scheduled run receives.

A :class:`Schedule` mirrors Trigger.dev's schedule object; ``to_dict`` gives its JSON form
(camelCase, times in ISO 8601 UTC), as the HTTP API, the CLI's ``--json`` and the MCP tools
show it. :class:`ScheduledPayload` is what a ``@schedules.task`` function gets: attribute
access, typed (``payload.timestamp`` is an aware UTC ``datetime``).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "ENVIRONMENT_TYPES",
    "CronSchedule",
    "Schedule",
    "ScheduleGenerator",
    "ScheduleList",
    "SchedulePagination",
    "ScheduleType",
    "ScheduledPayload",
    "iso",
]

ScheduleType = Literal["DECLARATIVE", "IMPERATIVE"]
ENVIRONMENT_TYPES = ("PRODUCTION", "STAGING", "PREVIEW", "DEVELOPMENT")
"""The names a declarative schedule's ``environments`` lists (any case)."""


def iso(moment: datetime.datetime | None) -> str | None:
    """``2026-01-01T09:00:00.000Z`` (what JavaScript's ``toISOString`` prints), or None."""
    if moment is None:
        return None
    utc = moment.astimezone(datetime.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A declarative schedule as ``@schedules.task(cron=...)`` gives it: the pattern, its time
    zone, the environments it exists in (empty: every one) and its window (None: on time)."""

    pattern: str
    timezone: str = "UTC"
    environments: tuple[str, ...] = ()
    window: str | None = None


@dataclass(frozen=True, slots=True)
class ScheduleGenerator:
    """What makes the ticks: always a cron expression, with its English description."""

    expression: str
    description: str
    type: Literal["CRON"] = "CRON"


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule. ``next_run`` is the next nominal tick (what the run's ``timestamp`` will
    be); ``next_run_effective_at`` is when it fires (later by the window offset, if any);
    ``last_run`` is the nominal tick that last created a run. Times are aware UTC."""

    id: str
    type: ScheduleType
    task: str
    active: bool
    deduplication_key: str | None
    external_id: str | None
    generator: ScheduleGenerator
    timezone: str
    window: str | None
    next_run: datetime.datetime | None
    next_run_effective_at: datetime.datetime | None
    last_run: datetime.datetime | None
    environments: tuple[str, ...]
    environment: str
    created_at: datetime.datetime
    updated_at: datetime.datetime

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (Trigger.dev's field names, ISO times)."""
        return {
            "id": self.id,
            "type": self.type,
            "task": self.task,
            "active": self.active,
            "deduplicationKey": self.deduplication_key,
            "externalId": self.external_id,
            "generator": {
                "type": self.generator.type,
                "expression": self.generator.expression,
                "description": self.generator.description,
            },
            "timezone": self.timezone,
            "window": self.window,
            "nextRun": iso(self.next_run),
            "nextRunEffectiveAt": iso(self.next_run_effective_at),
            "lastRun": iso(self.last_run),
            "environments": list(self.environments),
            "environment": self.environment,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class SchedulePagination:
    """Where a page is: its number (from 1), how many pages, how many schedules in all."""

    current_page: int
    total_pages: int
    count: int


@dataclass(frozen=True, slots=True)
class ScheduleList:
    """One page of schedules (``schedules.list``)."""

    data: Sequence[Schedule] = field(default_factory=tuple)
    pagination: SchedulePagination = field(
        default_factory=lambda: SchedulePagination(current_page=1, total_pages=0, count=0)
    )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"data": [...], "pagination": {currentPage, totalPages, count}}``."""
        return {
            "data": [s.to_dict() for s in self.data],
            "pagination": {
                "currentPage": self.pagination.current_page,
                "totalPages": self.pagination.total_pages,
                "count": self.pagination.count,
            },
        }


class ScheduledPayload(BaseModel):
    """What a scheduled run receives.

    ``timestamp`` is the nominal tick (UTC), even when a window delayed the run or it is a
    catch-up after downtime; ``last_timestamp`` the previous tick that created a run (None
    for the first); ``upcoming`` the next 5 nominal ticks after ``timestamp``. In JSON the
    fields are camelCase (``scheduleId``, ``lastTimestamp``), as Trigger.dev sends them.
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, defer_build=True
    )

    type: ScheduleType
    timestamp: datetime.datetime
    last_timestamp: datetime.datetime | None = None
    timezone: str = "UTC"
    schedule_id: str
    external_id: str | None = None
    upcoming: list[datetime.datetime] = Field(default_factory=list)
