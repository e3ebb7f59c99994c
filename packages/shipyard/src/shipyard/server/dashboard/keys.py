"""The secret keys page: the keys of the environment shown (create one — the key is shown
once —, list, revoke). A session can make keys only for an environment it is signed in to."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from shipyard.server.dashboard.auth import Session
from shipyard.server.dashboard.render import render
from shipyard.server.dashboard.site import PREFIX, Dashboard

__all__ = ["register"]


def register(router: APIRouter, dash: Dashboard) -> None:
    """Add the keys page and its actions to ``router``."""
    own = dash.gate.engine.environment  # the server's: its key is the configured one

    async def keys_page(request: Request, session: Session) -> Response:
        keys = await session.engine.list_keys(session.environment)
        return render(request, "keys.html", session, keys=keys, created=None, own=own)

    async def create(request: Request, session: Session, form: dict[str, str]) -> Response:
        name = form.get("name", "").strip() or None
        created = await session.engine.create_key(session.environment, name=name)
        keys = await session.engine.list_keys(session.environment)
        # The key is in this response only: never in a URL, a log line or a later page.
        return render(request, "keys.html", session, keys=keys, created=created, own=own)

    async def revoke(request: Request, session: Session, form: dict[str, str]) -> Response:
        key_id = request.path_params["key_id"]
        mine = {k.id for k in await session.engine.list_keys(session.environment)}
        if key_id not in mine:  # another environment's key is not this session's to revoke
            return Response("Not found", status_code=404)
        await session.engine.revoke_key(key_id)
        dash.auth.forget_keys()
        return RedirectResponse(f"{PREFIX}/keys", status_code=303)

    router.add_api_route("/keys", dash.page(keys_page), methods=["GET"])
    router.add_api_route("/keys", dash.action(create), methods=["POST"])
    router.add_api_route("/keys/{key_id}/revoke", dash.action(revoke), methods=["POST"])
