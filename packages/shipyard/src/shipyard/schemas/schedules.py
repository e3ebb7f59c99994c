"""Schedules over HTTP, in the shapes of Trigger.dev's schedules API (``ScheduleObject``,
``CreateScheduleOptions``, ``UpdateScheduleOptions`` in ``@trigger.dev/core``
``v3/schemas/api``).

==========================================  ===============================================
``POST   /api/v1/schedules``                  :class:`CreateScheduleRequest` → a schedule
``GET    /api/v1/schedules?page=&perPage=``   ``{"data": [...], "pagination": {...}}``
``GET    /api/v1/schedules/{id}``             a schedule
``PUT    /api/v1/schedules/{id}``             :class:`UpdateScheduleRequest` → a schedule
``DELETE /api/v1/schedules/{id}``             the schedule as it was
``POST   /api/v1/schedules/{id}/activate``    a schedule
``POST   /api/v1/schedules/{id}/deactivate``  a schedule
``GET    /api/v1/timezones?excludeUtc=``      :class:`TimezonesResponse`
==========================================  ===============================================

The schedule object is the engine's (``Schedule.to_dict()``) with ``environments`` as
Trigger.dev lists them: ``[{"id", "type"}]``, and the engine's list of names as
``declaredEnvironments``. The list takes ``?task=`` (Shipyard's: one task's schedules).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shipyard.schemas.wire import WireDateTime, WireModel

__all__ = [
    "CreateScheduleRequest",
    "ListSchedulesResponse",
    "ScheduleEnvironment",
    "ScheduleGeneratorObject",
    "ScheduleObject",
    "SchedulePaginationObject",
    "TimezonesResponse",
    "UpdateScheduleRequest",
]


class CreateScheduleRequest(WireModel):
    """Create an imperative schedule; the same ``deduplicationKey`` updates it instead."""

    task: str
    cron: str
    deduplication_key: str
    external_id: str | None = None
    timezone: str | None = None
    window: str | None = None


class UpdateScheduleRequest(WireModel):
    """Change an imperative schedule (Trigger.dev sends ``task`` and ``cron`` every time;
    Shipyard keeps what a body leaves out)."""

    task: str | None = None
    cron: str | None = None
    deduplication_key: str | None = None
    external_id: str | None = None
    timezone: str | None = None
    window: str | None = None


class TimezonesResponse(WireModel):
    """Every IANA time zone a schedule accepts."""

    timezones: list[str] = Field(default_factory=list)


class ScheduleGeneratorObject(WireModel):
    """What makes the ticks: a cron expression and its English description."""

    type: Literal["CRON"] = "CRON"
    expression: str
    description: str


class ScheduleEnvironment(WireModel):
    """An environment a schedule belongs to."""

    id: str
    type: str


class ScheduleObject(WireModel):
    """A schedule, as every schedule route answers it (``null`` where a value is unset)."""

    wire_nullable = frozenset(
        {
            "deduplication_key",
            "external_id",
            "window",
            "next_run",
            "next_run_effective_at",
            "last_run",
        }
    )

    id: str
    type: Literal["DECLARATIVE", "IMPERATIVE"]
    task: str
    active: bool
    deduplication_key: str | None = None
    external_id: str | None = None
    generator: ScheduleGeneratorObject
    timezone: str
    window: str | None = None
    next_run: WireDateTime | None = None
    next_run_effective_at: WireDateTime | None = None
    last_run: WireDateTime | None = None
    environments: list[ScheduleEnvironment] = Field(default_factory=list)
    declared_environments: list[str] = Field(default_factory=list)
    """Shipyard's: the environments a declarative schedule's ``cron`` names (empty: every
    one; always empty for an imperative schedule)."""
    environment: str
    created_at: WireDateTime
    updated_at: WireDateTime


class SchedulePaginationObject(WireModel):
    """Where a page of schedules is."""

    current_page: int
    total_pages: int
    count: int


class ListSchedulesResponse(WireModel):
    """One page of schedules."""

    data: list[ScheduleObject] = Field(default_factory=list)
    pagination: SchedulePaginationObject
