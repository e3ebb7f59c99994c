"""Schedules over HTTP for the remote client: ``shipyard.schedules`` against an engine
server (``/api/v1/schedules`` and ``/api/v1/timezones``), with the engine's arguments, results
(:class:`~shipyard.models.schedules.Schedule`) and exceptions (an unknown id is
:class:`~shipyard.errors.ScheduleNotFoundError`, bad cron, zone or window a
:class:`~shipyard.errors.ValidationError` with the engine's message).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from shipyard.client import convert
from shipyard.client.transport import QueryParams, Transport, error_from_response
from shipyard.errors import ScheduleNotFoundError
from shipyard.models.schedules import Schedule, ScheduleList
from shipyard.schemas.schedules import ListSchedulesResponse, ScheduleObject, TimezonesResponse

__all__ = ["ScheduleClient"]


def _path(schedule_id: str, action: str = "") -> str:
    return f"/api/v1/schedules/{quote(schedule_id, safe='')}{action}"


def _given(**values: Any) -> dict[str, Any]:
    """The request body: the camelCase names of the values given (None: left out)."""
    names = {"deduplication_key": "deduplicationKey", "external_id": "externalId"}
    return {names.get(k, k): v for k, v in values.items() if v is not None}


class ScheduleClient:
    """The schedule operations of :class:`~shipyard.client.RemoteClient`."""

    _http: Transport

    async def _schedule_call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: QueryParams | None = None,
        schedule_id: str | None = None,
        resend: bool = True,
    ) -> Any:
        response = await self._http.request(
            method,
            path,
            json=body,
            params=params,
            not_found=ScheduleNotFoundError if schedule_id is not None else None,
            context={"schedule_id": schedule_id} if schedule_id is not None else None,
            resend=resend,
        )
        try:
            return response.json()
        except ValueError:
            raise error_from_response(response) from None

    async def create_schedule(
        self,
        *,
        task: str,
        cron: str,
        deduplication_key: str,
        timezone: str = "UTC",
        external_id: str | None = None,
        window: str | None = None,
    ) -> Schedule:
        """Create an imperative schedule, or update the one with this ``deduplication_key``
        (so sending it again after a lost answer changes nothing)."""
        body = _given(
            task=task,
            cron=cron,
            deduplication_key=deduplication_key,
            timezone=timezone,
            external_id=external_id,
            window=window,
        )
        data = await self._schedule_call("POST", "/api/v1/schedules", body=body)
        return convert.schedule(ScheduleObject.model_validate(data))

    async def update_schedule(
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
        body = _given(
            task=task,
            cron=cron,
            timezone=timezone,
            external_id=external_id,
            deduplication_key=deduplication_key,
            window=window,
        )
        data = await self._schedule_call(
            "PUT", _path(schedule_id), body=body, schedule_id=schedule_id
        )
        return convert.schedule(ScheduleObject.model_validate(data))

    async def retrieve_schedule(self, schedule_id: str) -> Schedule:
        """One schedule by id (``ScheduleNotFoundError`` if there is none)."""
        data = await self._schedule_call("GET", _path(schedule_id), schedule_id=schedule_id)
        return convert.schedule(ScheduleObject.model_validate(data))

    async def list_schedules(
        self, *, page: int = 1, per_page: int = 20, task: str | None = None
    ) -> ScheduleList:
        """One page (from 1) of the environment's schedules, oldest first."""
        params: QueryParams = [("page", str(page)), ("perPage", str(per_page))]
        if task is not None:
            params.append(("task", task))
        data = await self._schedule_call("GET", "/api/v1/schedules", params=params)
        return convert.schedule_list(ListSchedulesResponse.model_validate(data))

    async def activate_schedule(self, schedule_id: str) -> Schedule:
        """Fire again, from the next tick after now."""
        data = await self._schedule_call(
            "POST", _path(schedule_id, "/activate"), schedule_id=schedule_id
        )
        return convert.schedule(ScheduleObject.model_validate(data))

    async def deactivate_schedule(self, schedule_id: str) -> Schedule:
        """Stop firing until activated."""
        data = await self._schedule_call(
            "POST", _path(schedule_id, "/deactivate"), schedule_id=schedule_id
        )
        return convert.schedule(ScheduleObject.model_validate(data))

    async def delete_schedule(self, schedule_id: str) -> Schedule:
        """Delete an imperative schedule; the schedule as it was."""
        # Not sent again once it may have reached the server: a second DELETE after a lost
        # answer would report a schedule that was just deleted as not found.
        data = await self._schedule_call(
            "DELETE", _path(schedule_id), schedule_id=schedule_id, resend=False
        )
        return convert.schedule(ScheduleObject.model_validate(data))

    async def list_timezones(self, *, exclude_utc: bool = False) -> list[str]:
        """Every IANA time zone the engine server accepts for a schedule."""
        params: QueryParams = [("excludeUtc", "true")] if exclude_utc else []
        data = await self._schedule_call("GET", "/api/v1/timezones", params=params)
        return TimezonesResponse.model_validate(data).timezones
