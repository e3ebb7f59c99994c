"""The engine server's FastAPI app: the HTTP API (``docs/http-api.md``), realtime, and
``/healthz``;
the dashboard (``/dashboard``, ``docs/dashboard.md``).

One app serves every environment that has a key: a request's secret key (or public access
token) picks its environment's engine (:class:`~shipyard.server.auth.Gatekeeper`), so runs,
queues and tokens of another environment are 404. Before routing, :class:`~shipyard.server.
guard.Guard` refuses unknown hosts, bodies over the limit (413, unparsed) and cross-origin
calls to routes a public token may not call. ``/openapi.json`` describes every route;
``/docs`` is served in the development environment only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from shipyard.engine.engine import Engine
from shipyard.schemas.wire import build_wire_models
from shipyard.server.auth import Gatekeeper
from shipyard.server.dashboard import dashboard_router
from shipyard.server.errors import install_error_handlers
from shipyard.server.guard import Guard, allowed_hosts, public_route_matcher
from shipyard.server.realtime import realtime_router
from shipyard.server.routes import auth, batches, queues, runs, schedules, tasks, waitpoints
from shipyard.version import __version__

__all__ = ["create_app"]

_DESCRIPTION = (
    "Trigger, watch and steer Shipyard runs over HTTP. Paths and JSON fields are "
    "Trigger.dev's (camelCase). Authenticate with `Authorization: Bearer <secret key>`; the "
    "routes marked public also take a public access token within its scopes."
)


def create_app(engine: Engine, *, dashboard_open: bool = False) -> FastAPI:
    """The engine server app bound to ``engine`` (the server's own environment; the others'
    engines share its store).

    ``/healthz`` and the wait token callback URL are the only routes without a key. The
    dashboard asks for the environment's secret key unless ``dashboard_open`` (only for the
    development environment on a loopback address: see :func:`dashboard_may_open`).
    """
    build_wire_models()  # before FastAPI meets them: see its docstring
    gate = Gatekeeper(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await gate.close()

    development = engine.environment == "development"
    app = FastAPI(
        title="Shipyard engine",
        version=__version__,
        description=_DESCRIPTION,
        docs_url="/docs" if development else None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.gatekeeper = gate
    install_error_handlers(app)
    for module in (tasks, runs, batches, queues, waitpoints, schedules, auth):
        app.include_router(module.router())
    app.include_router(realtime_router(gate), tags=["realtime"])
    app.include_router(dashboard_router(gate, open_access=dashboard_open))

    @app.get("/healthz", tags=["health"], summary="Health check")
    async def healthz() -> dict[str, Any]:
        """Whether the store answers: ``{"status": "ok", "version", "environment", "tasks"}``."""
        tasks_now = await engine.list_tasks()
        return {
            "status": "ok",
            "version": __version__,
            "environment": engine.environment,
            "tasks": len(tasks_now),
        }

    app.add_middleware(
        Guard,
        hosts=allowed_hosts(engine.settings.server_allowed_hosts, engine.settings.server_host),
        cors_origins=engine.settings.server_cors_origins,
        is_public=_lazy_matcher(app),
    )
    return app


def _lazy_matcher(app: FastAPI) -> Callable[[str, str], bool]:
    # Routes can still be added after create_app (tests do): work out the public ones on the
    # first request that asks.
    found: list[Callable[[str, str], bool]] = []

    def is_public(path: str, method: str) -> bool:
        if not found:
            found.append(public_route_matcher(app.routes))
        return found[0](path, method)

    return is_public


def dashboard_may_open(environment: str, host: str) -> bool:
    """Whether the dashboard may be served without a login: the development environment on a
    loopback address (nobody else can reach it), as ``shipyard dev`` runs it."""
    import ipaddress

    if environment != "development":
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
