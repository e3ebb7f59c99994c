"""Schedules over HTTP (secret key only): Trigger.dev's paths and shapes
(``shipyard.schemas.schedules``).

=============================================  ============================================
``POST   /api/v1/schedules``                    create (the same deduplication key updates)
``GET    /api/v1/schedules?page=&perPage=``     one page, oldest first (``&task=``: one task's)
``GET    /api/v1/schedules/{schedule_id}``      one schedule
``PUT    /api/v1/schedules/{schedule_id}``      change an imperative schedule
``DELETE /api/v1/schedules/{schedule_id}``      delete an imperative schedule
``POST   /api/v1/schedules/{id}/activate``      fire again from the next tick
``POST   /api/v1/schedules/{id}/deactivate``    stop firing
``GET    /api/v1/timezones?excludeUtc=true``    every accepted IANA zone
=============================================  ============================================

Invalid cron (6 fields: seconds), time zone or window are 400 with the engine's message; an
unknown id is 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from shipyard.engine.schedule_specs import environment_type
from shipyard.errors import ValidationError
from shipyard.models.schedules import Schedule
from shipyard.schemas.filters import parse_offset_page
from shipyard.schemas.schedules import (
    CreateScheduleRequest,
    ListSchedulesResponse,
    ScheduleObject,
    TimezonesResponse,
    UpdateScheduleRequest,
)
from shipyard.server.auth import Caller, secret_caller
from shipyard.server.routes.common import ERRORS
from shipyard.server.routing import JsonRoute, wire

__all__ = ["router", "schedule_json"]

SecretCaller = Annotated[Caller, Depends(secret_caller)]


def schedule_json(schedule: Schedule) -> dict[str, Any]:
    """The schedule object as Trigger.dev's client reads it."""
    data = schedule.to_dict()
    data["declaredEnvironments"] = data["environments"]
    data["environments"] = [
        {"id": schedule.environment, "type": environment_type(schedule.environment)}
    ]
    return data


def router() -> APIRouter:
    """The schedule routes."""
    api = APIRouter(route_class=JsonRoute, tags=["schedules"])

    @api.post(
        "/api/v1/schedules",
        response_model=ScheduleObject,
        responses=ERRORS,
        summary="Create a schedule",
    )
    async def create_schedule(body: CreateScheduleRequest, caller: SecretCaller) -> JSONResponse:
        """Create an imperative schedule, or update the one holding ``deduplicationKey``."""
        schedule = await caller.engine.create_schedule(
            task=body.task,
            cron=body.cron,
            deduplication_key=body.deduplication_key,
            timezone=body.timezone or "UTC",
            external_id=body.external_id,
            window=body.window,
        )
        return wire(ScheduleObject.model_validate(schedule_json(schedule)))

    @api.get(
        "/api/v1/schedules",
        response_model=ListSchedulesResponse,
        responses=ERRORS,
        summary="List schedules",
    )
    async def list_schedules(request: Request, caller: SecretCaller) -> JSONResponse:
        """One page of the environment's schedules: ``{data, pagination}``."""
        params = request.query_params.multi_items()
        tasks = [value for name, value in params if name == "task"]
        if len(tasks) > 1:
            raise ValidationError(
                "Invalid query parameter task: given more than once.", param="task"
            )
        page = parse_offset_page(params, others=("task",))
        found = await caller.engine.list_schedules(
            page=page.page, per_page=page.per_page, task=tasks[0] if tasks else None
        )
        body = found.to_dict()
        body["data"] = [schedule_json(s) for s in found.data]
        return wire(ListSchedulesResponse.model_validate(body))

    @api.get(
        "/api/v1/schedules/{schedule_id}",
        response_model=ScheduleObject,
        responses=ERRORS,
        summary="Retrieve a schedule",
    )
    async def retrieve_schedule(schedule_id: str, caller: SecretCaller) -> JSONResponse:
        """One schedule by id."""
        return wire(
            ScheduleObject.model_validate(
                schedule_json(await caller.engine.retrieve_schedule(schedule_id))
            )
        )

    @api.put(
        "/api/v1/schedules/{schedule_id}",
        response_model=ScheduleObject,
        responses=ERRORS,
        summary="Update a schedule",
    )
    async def update_schedule(
        schedule_id: str, body: UpdateScheduleRequest, caller: SecretCaller
    ) -> JSONResponse:
        """Change an imperative schedule (what the body leaves out stays)."""
        schedule = await caller.engine.update_schedule(
            schedule_id,
            task=body.task,
            cron=body.cron,
            timezone=body.timezone,
            external_id=body.external_id,
            deduplication_key=body.deduplication_key,
            window=body.window,
        )
        return wire(ScheduleObject.model_validate(schedule_json(schedule)))

    @api.delete(
        "/api/v1/schedules/{schedule_id}",
        response_model=ScheduleObject,
        responses=ERRORS,
        summary="Delete a schedule",
    )
    async def delete_schedule(schedule_id: str, caller: SecretCaller) -> JSONResponse:
        """Delete an imperative schedule; answers it as it was."""
        return wire(
            ScheduleObject.model_validate(
                schedule_json(await caller.engine.delete_schedule(schedule_id))
            )
        )

    @api.post(
        "/api/v1/schedules/{schedule_id}/activate",
        response_model=ScheduleObject,
        responses=ERRORS,
        summary="Activate",
    )
    async def activate_schedule(schedule_id: str, caller: SecretCaller) -> JSONResponse:
        """Fire again, from the next tick after now."""
        return wire(
            ScheduleObject.model_validate(
                schedule_json(await caller.engine.activate_schedule(schedule_id))
            )
        )

    @api.post(
        "/api/v1/schedules/{schedule_id}/deactivate",
        response_model=ScheduleObject,
        responses=ERRORS,
        summary="Deactivate",
    )
    async def deactivate_schedule(schedule_id: str, caller: SecretCaller) -> JSONResponse:
        """Stop firing until activated."""
        return wire(
            ScheduleObject.model_validate(
                schedule_json(await caller.engine.deactivate_schedule(schedule_id))
            )
        )

    @api.get(
        "/api/v1/timezones",
        response_model=TimezonesResponse,
        responses=ERRORS,
        summary="List time zones",
    )
    async def list_timezones(
        caller: SecretCaller,
        exclude_utc: Annotated[bool, Query(alias="excludeUtc")] = False,
    ) -> JSONResponse:
        """Every IANA time zone a schedule accepts (``excludeUtc=true`` leaves out UTC)."""
        return wire(TimezonesResponse(timezones=caller.engine.timezones(exclude_utc=exclude_utc)))

    return api
