"""The runs pages: the list (filters, cursor pagination, live), a run (payload, output, error,
attempts, trace, metadata, relations; live), and its actions: cancel, replay with an edited
payload, reset the idempotency key."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from shipyard.durations import parse_duration_ms
from shipyard.engine.engine import Engine
from shipyard.errors import ValidationError
from shipyard.jsonutil import MAX_JSON_DEPTH, loads
from shipyard.models.runs import Run
from shipyard.server.dashboard.auth import Session
from shipyard.server.dashboard.render import render
from shipyard.server.dashboard.site import PREFIX, Dashboard
from shipyard.server.dashboard.trace import waterfall
from shipyard.server.realtime import sse_response, update_events
from shipyard.statuses import RunStatus

__all__ = ["PAGE_SIZE", "PERIODS", "parse_json_field", "register"]

PAGE_SIZE = 50
PERIODS = ("15m", "1h", "6h", "1d", "7d", "30d")
CHILDREN_SHOWN = 100
TRACE_EVENTS = 10_000
STREAM_CHUNKS_SHOWN = 200
_NOTICES = {
    "canceled": "Cancel requested.",
    "reset": "The idempotency key was reset: a trigger with it now makes a new run.",
    "reset-none": "No run held this idempotency key any more.",
}
HEARTBEAT_S = 15.0


def parse_json_field(text: str | None, what: str) -> Any:
    """The JSON a user typed in a form field (empty: ``{}``); :class:`ValidationError` with
    the position of the mistake otherwise."""
    if text is None or not text.strip():
        return {}
    return loads(text, max_depth=MAX_JSON_DEPTH, what=what)


def _filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    return {
        "status": [s for s in q.getlist("status") if s],
        "task": [t for t in q.getlist("task") if t],
        "tag": (q.get("tag") or "").strip() or None,
        "batch": (q.get("batch") or "").strip() or None,
        "schedule": (q.get("schedule") or "").strip() or None,
        "period": (q.get("period") or "").strip() or None,
        "cursor": q.get("cursor") or None,
    }


def register(router: APIRouter, dash: Dashboard) -> None:
    """Add the runs pages and actions to ``router``."""

    async def runs_list(request: Request, session: Session) -> Response:
        engine = session.engine
        f = _filters(request)
        # Read first: the page's live updates start here, so a run made while the page
        # loads is either listed or delivered (both: the row is updated, not repeated).
        position = await engine.feed_position()
        created_from = None
        if f["period"]:
            created_from = engine.now() - parse_duration_ms(f["period"])
        page = await engine.list_runs(
            statuses=f["status"],
            task_ids=f["task"],
            tag=f["tag"],
            batch_id=f["batch"],
            schedule_id=f["schedule"],
            created_from=created_from,
            cursor=f["cursor"],
            limit=PAGE_SIZE,
        )
        query = {k: v for k, v in f.items() if v and k != "cursor"}
        next_url = None
        if page.next_cursor:
            next_url = f"?{urlencode({**query, 'cursor': page.next_cursor}, doseq=True)}"
        tasks = [t.id for t in await engine.list_tasks()]
        return render(
            request,
            "runs.html",
            session,
            runs=page.items,
            filters=f,
            statuses=list(RunStatus),
            tasks=tasks,
            periods=PERIODS,
            next_url=next_url,
            first_url=f"?{urlencode(query, doseq=True)}",
            # Live updates carry no schedule: a schedule's list is not followed live.
            live=f["cursor"] is None and f["schedule"] is None,
            live_url=f"{PREFIX}/live/runs?{urlencode({'after': position})}",
            now_ms=engine.now(),
        )

    async def run_detail_context(engine: Engine, run_id: str) -> dict[str, Any]:
        run = await engine.retrieve_run(run_id)
        events = await engine.run_event_records(run_id, limit=TRACE_EVENTS)
        children = await engine.list_runs(parent_id=run.id, limit=CHILDREN_SHOWN)
        streams = await engine.run_streams(run.id)
        return {
            "run": run,
            "trace": waterfall(run, events, engine.now()),
            "children": children.items,
            "more_children": children.next_cursor is not None,
            "progress": _progress(run),
            # Each stream's first chunk shown: the last STREAM_CHUNKS_SHOWN of it.
            "streams": {s: max(0, n - STREAM_CHUNKS_SHOWN) for s, n in streams.items()},
        }

    async def run_page(request: Request, session: Session) -> Response:
        engine = session.engine
        run_id = request.path_params["run_id"]
        context = await run_detail_context(engine, run_id)
        notice = _NOTICES.get(request.query_params.get("notice", ""))
        return render(
            request,
            "run.html",
            session,
            **context,
            notice=notice,
            replay_error=None,
            replay_payload=None,
            live_token=engine.public_token([f"read:runs:{run_id}"]),
        )

    async def run_panels(request: Request, session: Session) -> Response:
        """The parts of a run page that change as it runs (fetched by the page's script)."""
        engine = session.engine
        context = await run_detail_context(engine, request.path_params["run_id"])
        return render(request, "run_panels.html", session, **context)

    async def cancel(request: Request, session: Session, form: dict[str, str]) -> Response:
        engine = session.engine
        run = await engine.cancel_run(request.path_params["run_id"])
        return RedirectResponse(f"{PREFIX}/runs/{run.id}?notice=canceled", status_code=303)

    async def replay(request: Request, session: Session, form: dict[str, str]) -> Response:
        engine = session.engine
        run_id = request.path_params["run_id"]
        try:
            payload = parse_json_field(form.get("payload"), "The payload")
            handle = await engine.replay_run(run_id, payload=payload)
        except ValidationError as exc:
            context = await run_detail_context(engine, run_id)
            return render(
                request,
                "run.html",
                session,
                400,
                **context,
                notice=None,
                replay_error=exc.message,
                replay_payload=form.get("payload", ""),
                live_token=engine.public_token([f"read:runs:{run_id}"]),
            )
        return RedirectResponse(f"{PREFIX}/runs/{handle.id}", status_code=303)

    async def reset_key(request: Request, session: Session, form: dict[str, str]) -> Response:
        engine = session.engine
        run = await engine.retrieve_run(request.path_params["run_id"])
        notice = "reset-none"
        if run.idempotency_key:
            cleared = await engine.reset_idempotency_key(run.task_identifier, run.idempotency_key)
            notice = "reset" if cleared else "reset-none"
        return RedirectResponse(f"{PREFIX}/runs/{run.id}?notice={notice}", status_code=303)

    async def live_runs(request: Request) -> Response:
        """Every new run and change, for the runs list (the page filters what it shows)."""
        session = await dash.auth.session(request)
        if session is None:
            return Response("Sign in first.", status_code=401)
        engine = session.engine
        # A reconnecting browser says where it was; a first connection, where its page was.
        after = request.headers.get("last-event-id") or request.query_params.get("after") or None
        try:
            changes = engine.subscribe_runs(
                after=engine.check_position(after), heartbeat_s=HEARTBEAT_S
            )
        except ValidationError as exc:
            return Response(exc.message, status_code=400)
        return sse_response(update_events(changes, end=False))

    router.add_api_route("/runs", dash.page(runs_list), methods=["GET"])
    router.add_api_route("/live/runs", live_runs, methods=["GET"])
    router.add_api_route("/runs/{run_id}", dash.page(run_page), methods=["GET"])
    router.add_api_route("/runs/{run_id}/panels", dash.page(run_panels), methods=["GET"])
    router.add_api_route("/runs/{run_id}/cancel", dash.action(cancel), methods=["POST"])
    router.add_api_route("/runs/{run_id}/replay", dash.action(replay), methods=["POST"])
    router.add_api_route(
        "/runs/{run_id}/reset-idempotency-key", dash.action(reset_key), methods=["POST"]
    )


def _progress(run: Run) -> float | None:
    """The run's ``progress`` metadata as a fraction (0–1; a value over 1 read as percent)."""
    value = run.metadata.get("progress") if isinstance(run.metadata, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    fraction = value / 100 if value > 1 else value
    return max(0.0, min(1.0, float(fraction)))
