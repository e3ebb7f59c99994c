"""The dashboard's router: the login, the environment switcher, the guard every page and
action passes, static files, and the pages of each area (``runs.py``, ``tasks.py``,
``operate.py``, ``overview.py``, ``schedules.py``, ``keys.py``)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from shipyard.errors import ShipyardError
from shipyard.schemas.errors import http_status_for
from shipyard.server.auth import Gatekeeper
from shipyard.server.dashboard.auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_TTL_S,
    DashboardAuth,
    Session,
)
from shipyard.server.dashboard.render import HERE, render

__all__ = ["PREFIX", "Dashboard", "dashboard_router"]

PREFIX = "/dashboard"
_STATIC = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}


class Dashboard:
    """What every page handler shares: the auth and the guards."""

    def __init__(self, gate: Gatekeeper, *, open_access: bool) -> None:
        self.gate = gate
        self.auth = DashboardAuth(gate, open_access=open_access)

    def page(
        self, handler: Callable[[Request, Session], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a GET page: signed in (else a redirect to the login), errors shown as a page."""

        async def guarded(request: Request) -> Response:
            session = await self.auth.session(request)
            if session is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"{PREFIX}/login?next={quote(target)}", status_code=303)
            request.state.environments = await self.auth.environments()
            try:
                response = await handler(request, session)
            except ShipyardError as exc:
                response = self.error_page(request, session, exc)
            return self.with_session(request, response)

        return guarded

    def action(
        self, handler: Callable[[Request, Session, dict[str, str]], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a POST action: signed in (401), a valid CSRF token (403), the form parsed."""

        async def guarded(request: Request) -> Response:
            session = await self.auth.session(request)
            if session is None:
                return render(
                    request,
                    "error.html",
                    None,
                    401,
                    title="Signed out",
                    message="Sign in again, then retry.",
                )
            form = dict((await request.form()).items())
            token = request.headers.get("x-csrf-token") or form.get("csrf")
            if not self.auth.csrf_valid(session, token if isinstance(token, str) else None):
                return render(
                    request,
                    "error.html",
                    session,
                    403,
                    title="Refused",
                    message="The form's CSRF token is missing or wrong. Reload the page and retry.",
                )
            values = {k: v for k, v in form.items() if isinstance(v, str)}
            request.state.environments = await self.auth.environments()
            try:
                return await handler(request, session, values)
            except ShipyardError as exc:
                return self.error_page(request, session, exc)

        return guarded

    def error_page(self, request: Request, session: Session | None, exc: ShipyardError) -> Response:
        """An engine error as a page with the right status (404 not found, 400 bad input)."""
        return render(
            request,
            "error.html",
            session,
            http_status_for(exc),
            title=type(exc).__name__,
            message=exc.message,
        )

    def with_session(self, request: Request, response: Response) -> Response:
        """``response`` with the session cookie open access made for this request, if any."""
        value = getattr(request.state, "new_session", None)
        if value is not None:
            self.auth.set_cookie(response, request, SESSION_COOKIE, value, SESSION_TTL_S)
        return response

    def signed(self, request: Request, response: Response, value: str) -> Response:
        """``response`` setting the session cookie to ``value``."""
        self.auth.set_cookie(response, request, SESSION_COOKIE, value, SESSION_TTL_S)
        return response


def dashboard_router(gate: Gatekeeper, *, open_access: bool = False) -> APIRouter:
    """The dashboard's routes over the server's :class:`Gatekeeper` (every environment that
    has a key); ``open_access`` serves the server's own environment without a login (the
    development environment on a loopback address only: ``shipyard dev`` decides)."""
    from shipyard.server.dashboard import keys, operate, overview, runs, schedules, tasks

    dash = Dashboard(gate, open_access=open_access)
    router = APIRouter(prefix=PREFIX, include_in_schema=False)

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        media = _STATIC.get(name)
        if media is None:
            return Response("Not found", status_code=404)
        return FileResponse(HERE / "static" / name, media_type=media)

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        session = await dash.auth.session(request)
        wanted = request.query_params.get("environment")
        if session is not None and (wanted is None or wanted in session.environments):
            response: Response = RedirectResponse(_next(request), status_code=303)
            return dash.with_session(request, response)
        return _login_page(request, None, environment=wanted)

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        nonce, key = form.get("nonce"), form.get("key")
        target = _next(request, form.get("next"))
        if not dash.auth.login_nonce_valid(request, nonce if isinstance(nonce, str) else None):
            return _login_page(request, "The form expired. Sign in again.", 403, target)
        grant = await dash.auth.grant_for(key) if isinstance(key, str) else None
        if grant is None:
            message = "That is not a secret key of any environment (or it was revoked)."
            return _login_page(request, message, 401, target)
        current = await dash.auth.session(request)
        response = RedirectResponse(target, status_code=303)
        dash.signed(request, response, dash.auth.signed_in(current, grant))
        dash.auth.clear_cookie(response, LOGIN_COOKIE)
        return response

    def _login_page(
        request: Request,
        error: str | None,
        status: int = 200,
        target: str | None = None,
        environment: str | None = None,
    ) -> Response:
        nonce = secrets.token_urlsafe(18)
        response = render(
            request,
            "login.html",
            None,
            status,
            error=error,
            nonce=nonce,
            next=target or _next(request),
            environment=environment,
        )
        dash.auth.set_cookie(response, request, LOGIN_COOKIE, nonce, 3600)
        return response

    async def logout(request: Request, session: Session, form: dict[str, str]) -> Response:
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        dash.auth.clear_cookie(response, SESSION_COOKIE)
        return response

    async def switch(request: Request, session: Session, form: dict[str, str]) -> Response:
        environment = form.get("environment", "")
        value = dash.auth.switched(session, environment)
        if value is None:  # not signed in to it yet: its key first
            login = f"{PREFIX}/login?environment={quote(environment)}&next={PREFIX}/runs"
            return RedirectResponse(login, status_code=303)
        response = RedirectResponse(_next(request, form.get("next")), status_code=303)
        return dash.signed(request, response, value)

    router.add_api_route("/logout", dash.action(logout), methods=["POST"])
    router.add_api_route("/environment", dash.action(switch), methods=["POST"])
    overview.register(router, dash)
    runs.register(router, dash)
    tasks.register(router, dash)
    operate.register(router, dash)
    schedules.register(router, dash)
    keys.register(router, dash)
    return router


def _next(request: Request, value: Any = None) -> str:
    """Where to go after the login: a path inside the dashboard, never another site."""
    target = value if isinstance(value, str) else request.query_params.get("next", "")
    if not target.startswith(PREFIX) or target.startswith("//") or "\\" in target:
        return f"{PREFIX}/runs"
    return target
