"""The schedules page: each schedule with its cron, time zone and next runs; activate,
deactivate, delete, create, and "Run now" (the task once, with the payload the schedule would
send at this moment — not one of the schedule's ticks)."""

from __future__ import annotations

import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from shipyard.cron import upcoming
from shipyard.engine.engine import Engine
from shipyard.errors import ValidationError
from shipyard.models.handles import RunHandle
from shipyard.models.schedules import Schedule, iso
from shipyard.server.dashboard.auth import Session
from shipyard.server.dashboard.render import render
from shipyard.server.dashboard.site import PREFIX, Dashboard

__all__ = ["PER_PAGE", "register", "run_now", "tick_payload"]

PER_PAGE = 50
UPCOMING_SHOWN = 3


def tick_payload(engine: Engine, schedule: Schedule) -> dict[str, Any]:
    """The payload a tick of ``schedule`` at this moment would carry (JSON form)."""
    now = datetime.datetime.fromtimestamp(engine.now() / 1000, tz=datetime.UTC)
    return {
        "type": schedule.type,
        "timestamp": iso(now),
        "lastTimestamp": iso(schedule.last_run),
        "timezone": schedule.timezone,
        "scheduleId": schedule.id,
        "externalId": schedule.external_id,
        "upcoming": [
            iso(t) for t in upcoming(schedule.generator.expression, schedule.timezone, now, 10)
        ],
    }


async def run_now(engine: Engine, schedule: Schedule) -> RunHandle:
    """Trigger ``schedule``'s task once, now, with :func:`tick_payload` (tagged
    ``schedule:<id>``; it does not count as a tick: ``lastTimestamp`` stays)."""
    payload = tick_payload(engine, schedule)
    return await engine.trigger(schedule.task, payload, {"tags": [f"schedule:{schedule.id}"]})


def register(router: APIRouter, dash: Dashboard) -> None:
    """Add the schedules page and its actions to ``router``."""

    async def schedules_page(
        request: Request,
        session: Session,
        error: str | None = None,
        form: dict[str, str] | None = None,
    ) -> Response:
        engine = session.engine
        page_text = request.query_params.get("page", "1")
        page = int(page_text) if page_text.isdigit() and int(page_text) >= 1 else 1
        task = request.query_params.get("task") or None
        found = await engine.list_schedules(page=page, per_page=PER_PAGE, task=task)
        now = datetime.datetime.fromtimestamp(engine.now() / 1000, tz=datetime.UTC)
        rows = [
            (
                s,
                upcoming(s.generator.expression, s.timezone, now, UPCOMING_SHOWN)
                if s.active
                else [],
            )
            for s in found.data
        ]
        tasks = [t.id for t in await engine.list_tasks()]
        return render(
            request,
            "schedules.html",
            session,
            400 if error else 200,
            rows=rows,
            pagination=found.pagination,
            task=task,
            tasks=tasks,
            error=error,
            form=form or {},
        )

    async def page(request: Request, session: Session) -> Response:
        return await schedules_page(request, session)

    async def create(request: Request, session: Session, form: dict[str, str]) -> Response:
        engine = session.engine
        try:
            await engine.create_schedule(
                task=form.get("task", ""),
                cron=form.get("cron", "").strip(),
                deduplication_key=form.get("deduplication_key", "").strip(),
                timezone=form.get("timezone", "").strip() or "UTC",
                external_id=form.get("external_id", "").strip() or None,
            )
        except ValidationError as exc:
            return await schedules_page(request, session, exc.message, form)
        return RedirectResponse(f"{PREFIX}/schedules", status_code=303)

    async def act(request: Request, session: Session, form: dict[str, str]) -> Response:
        engine = session.engine
        schedule_id, verb = request.path_params["schedule_id"], request.path_params["verb"]
        if verb == "activate":
            await engine.activate_schedule(schedule_id)
        elif verb == "deactivate":
            await engine.deactivate_schedule(schedule_id)
        elif verb == "delete":
            await engine.delete_schedule(schedule_id)
        elif verb == "run":
            handle = await run_now(engine, await engine.retrieve_schedule(schedule_id))
            return RedirectResponse(f"{PREFIX}/runs/{handle.id}", status_code=303)
        else:
            return Response("Not found", status_code=404)
        return RedirectResponse(f"{PREFIX}/schedules", status_code=303)

    router.add_api_route("/schedules", dash.page(page), methods=["GET"])
    router.add_api_route("/schedules", dash.action(create), methods=["POST"])
    router.add_api_route("/schedules/{schedule_id}/{verb}", dash.action(act), methods=["POST"])
