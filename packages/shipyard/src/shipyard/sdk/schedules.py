"""Schedules: run a task on a cron expression in a time zone.

Declarative: ``@schedules.task(id=..., cron=...)`` defines a task (every option of ``@task``)
whose schedule is created, updated or removed when a worker with it registers. Imperative:
``await schedules.create(task=..., cron=..., deduplication_key=...)`` at run time (the same
key updates the schedule instead of creating another), then ``update``, ``retrieve``, ``list``,
``activate``, ``deactivate``, ``delete`` and ``timezones`` (in-process, or over HTTP with
``SHIPYARD_API_URL``).

Example::

    from shipyard import ScheduledPayload, schedules

    @schedules.task(id="daily-report", cron={"pattern": "0 9 * * 1-5", "timezone": "Europe/London"})
    async def daily_report(payload: ScheduledPayload) -> dict:
        return {"for": payload.timestamp.isoformat()}

    await schedules.create(task="daily-report", cron="0 18 * * *", deduplication_key="user_1")
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from typing import Any, cast

from typing_extensions import Unpack

from shipyard.engine.definitions import default_definitions
from shipyard.engine.schedule_specs import cron_schedule
from shipyard.models.schedules import (
    CronSchedule,
    Schedule,
    ScheduledPayload,
    ScheduleList,
)
from shipyard.sdk.backend import current_backend
from shipyard.sdk.task import SchemaTaskDecorator, Task, TaskOptions, _build

__all__ = ["CronSchedule", "Schedule", "ScheduleList", "ScheduledPayload", "schedules"]

CronOption = str | CronSchedule | Mapping[str, Any]


class _Schedules:
    """Declarative scheduled tasks and the imperative schedules API."""

    def task(
        self, *, id: str, cron: CronOption | None = None, **options: Unpack[TaskOptions]
    ) -> SchemaTaskDecorator[ScheduledPayload]:
        """Define a scheduled task: it receives a :class:`ScheduledPayload`.

        ``cron`` is a 5-field pattern (UTC) or ``{"pattern", "timezone", "environments",
        "window"}``; without it the task has no declarative schedule (create imperative ones
        for it). A ``ttl`` is recommended, so a tick no worker could start in time expires.
        Invalid cron, time zone or window raise ``ValidationError`` here, at import.
        """
        spec = (
            cron_schedule(dict(cron) if isinstance(cron, Mapping) else cron, id) if cron else None
        )

        def decorate(function: Callable[..., Any]) -> Task[Any, Any]:
            definition = _build(function, task_id=id, schema=ScheduledPayload, options=options)
            definition.cron = spec
            default_definitions().add_task(definition)
            return definition

        return cast("SchemaTaskDecorator[ScheduledPayload]", decorate)

    async def create(
        self,
        *,
        task: str,
        cron: str,
        deduplication_key: str,
        timezone: str = "UTC",
        external_id: str | None = None,
        window: str | None = None,
    ) -> Schedule:
        """Create an imperative schedule, or update the one with this ``deduplication_key``."""
        return await current_backend().create_schedule(
            task=task,
            cron=cron,
            deduplication_key=deduplication_key,
            timezone=timezone,
            external_id=external_id,
            window=window,
        )

    async def update(
        self,
        schedule_id: str,
        *,
        task: str | None = None,
        cron: str | None = None,
        timezone: str | None = None,
        external_id: str | None = None,
        deduplication_key: str | None = None,
        window: str | None = None,
    ) -> Schedule:
        """Change an imperative schedule; what is not given stays as it is."""
        return await current_backend().update_schedule(
            schedule_id,
            task=task,
            cron=cron,
            timezone=timezone,
            external_id=external_id,
            deduplication_key=deduplication_key,
            window=window,
        )

    async def retrieve(self, schedule_id: str) -> Schedule:
        """One schedule by id (``ScheduleNotFoundError`` if there is none)."""
        return await current_backend().retrieve_schedule(schedule_id)

    async def list(
        self, *, page: int = 1, per_page: int = 20, task: str | None = None
    ) -> ScheduleList:
        """One page of the environment's schedules: ``.data`` and ``.pagination``
        (``current_page``, ``total_pages``, ``count``)."""
        return await current_backend().list_schedules(page=page, per_page=per_page, task=task)

    async def activate(self, schedule_id: str) -> Schedule:
        """Fire again, from the next tick after now."""
        return await current_backend().activate_schedule(schedule_id)

    async def deactivate(self, schedule_id: str) -> Schedule:
        """Stop firing until activated."""
        return await current_backend().deactivate_schedule(schedule_id)

    async def delete(self, schedule_id: str) -> Schedule:
        """Delete an imperative schedule (a declarative one goes with its ``cron``)."""
        return await current_backend().delete_schedule(schedule_id)

    async def timezones(self, *, exclude_utc: bool = False) -> builtins.list[str]:
        """Every IANA time zone a schedule accepts."""
        return await current_backend().list_timezones(exclude_utc=exclude_utc)


schedules = _Schedules()
"""Scheduled tasks and schedules (see the module docstring)."""
