"""The operating pages: queues (pause, resume, override the limit), wait tokens (complete one
with a JSON body) and batches (each with its runs)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from shipyard.errors import ValidationError
from shipyard.server.dashboard.auth import Session
from shipyard.server.dashboard.render import render
from shipyard.server.dashboard.runs import parse_json_field
from shipyard.server.dashboard.site import PREFIX, Dashboard

__all__ = ["TOKEN_STATUSES", "register"]

TOKEN_STATUSES = ("WAITING", "COMPLETED", "TIMED_OUT")
PAGE_SIZE = 50


def register(router: APIRouter, dash: Dashboard) -> None:
    """Add the queues, tokens and batches pages and their actions to ``router``."""

    async def queues_page(request: Request, session: Session) -> Response:
        engine = session.engine
        return render(request, "queues.html", session, queues=await engine.list_queues())

    async def queue_action(request: Request, session: Session, form: dict[str, str]) -> Response:
        engine = session.engine
        name, verb = request.path_params["name"], request.path_params["verb"]
        if verb == "pause":
            await engine.pause_queue(name)
        elif verb == "resume":
            await engine.resume_queue(name)
        elif verb == "override":
            limit = form.get("limit", "").strip()
            if not limit:
                await engine.reset_queue_limit(name)
            elif not limit.isdigit():
                raise ValidationError(f"The limit must be a whole number; got {limit!r}.")
            else:
                await engine.override_queue_limit(name, int(limit))
        else:
            return Response("Not found", status_code=404)
        return RedirectResponse(f"{PREFIX}/queues", status_code=303)

    async def tokens_page(request: Request, session: Session) -> Response:
        engine = session.engine
        q = request.query_params
        status = q.get("status") or None
        tag = (q.get("tag") or "").strip() or None
        page = await engine.list_tokens(
            statuses=[status] if status else (),
            tags=[tag] if tag else (),
            cursor=q.get("cursor") or None,
            limit=PAGE_SIZE,
        )
        query = {k: v for k, v in (("status", status), ("tag", tag)) if v}
        next_url = (
            f"?{urlencode({**query, 'cursor': page.next_cursor})}" if page.next_cursor else None
        )
        return render(
            request,
            "tokens.html",
            session,
            tokens=page.items,
            statuses=TOKEN_STATUSES,
            status=status,
            tag=tag,
            next_url=next_url,
            error=None,
            error_token=None,
            typed="",
        )

    async def complete_token(request: Request, session: Session, form: dict[str, str]) -> Response:
        engine = session.engine
        token_id = request.path_params["token_id"]
        try:
            data = parse_json_field(form.get("data"), "The token data")
            await engine.complete_token(token_id, data)
        except ValidationError as exc:
            page = await engine.list_tokens(limit=PAGE_SIZE)
            return render(
                request,
                "tokens.html",
                session,
                400,
                tokens=page.items,
                statuses=TOKEN_STATUSES,
                status=None,
                tag=None,
                next_url=None,
                error=exc.message,
                error_token=token_id,
                typed=form.get("data", ""),
            )
        return RedirectResponse(f"{PREFIX}/tokens", status_code=303)

    async def batches_page(request: Request, session: Session) -> Response:
        engine = session.engine
        cursor = request.query_params.get("cursor") or None
        batches, next_cursor = await engine.list_batches(limit=PAGE_SIZE, cursor=cursor)
        next_url = f"?{urlencode({'cursor': next_cursor})}" if next_cursor else None
        return render(request, "batches.html", session, batches=batches, next_url=next_url)

    async def batch_page(request: Request, session: Session) -> Response:
        engine = session.engine
        batch = await engine.retrieve_batch(request.path_params["batch_id"])
        page = await engine.list_runs(batch_id=batch.id, limit=1000)
        by_id = {run.id: run for run in page.items}
        runs = [by_id[r] for r in batch.runs if r in by_id]
        return render(request, "batch.html", session, batch=batch, runs=runs)

    router.add_api_route("/queues", dash.page(queues_page), methods=["GET"])
    router.add_api_route("/queues/{name:path}/{verb}", dash.action(queue_action), methods=["POST"])
    router.add_api_route("/tokens", dash.page(tokens_page), methods=["GET"])
    router.add_api_route(
        "/tokens/{token_id}/complete", dash.action(complete_token), methods=["POST"]
    )
    router.add_api_route("/batches", dash.page(batches_page), methods=["GET"])
    router.add_api_route("/batches/{batch_id}", dash.page(batch_page), methods=["GET"])
