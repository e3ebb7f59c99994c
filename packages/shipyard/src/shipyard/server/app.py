"""The engine server's FastAPI app: ``GET /healthz``, the wait token callback URL, realtime
(``/realtime/v1``) and the dashboard (``/dashboard``); the HTTP API grows here."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shipyard.engine.engine import Engine
from shipyard.errors import ValidationError, WaitpointNotFoundError
from shipyard.jsonutil import MAX_JSON_DEPTH, loads
from shipyard.server.dashboard import dashboard_router
from shipyard.server.realtime import SecretKeyAccess, realtime_router
from shipyard.version import __version__


def create_app(engine: Engine, *, dashboard_open: bool = False) -> FastAPI:
    """The engine server app bound to ``engine``.

    ``/healthz`` is the only unauthenticated route: it reports whether the store answers. The
    dashboard asks for the environment's secret key unless ``dashboard_open`` (only for the
    development environment on a loopback address: see :func:`dashboard_may_open`).
    """
    app = FastAPI(title="Shipyard engine", version=__version__)
    app.include_router(realtime_router(SecretKeyAccess(engine)))
    app.include_router(dashboard_router(engine, open_access=dashboard_open))

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        tasks = await engine.list_tasks()
        return {
            "status": "ok",
            "version": __version__,
            "environment": engine.environment,
            "tasks": len(tasks),
        }

    @app.post("/api/v1/waitpoints/tokens/{waitpoint_id}/callback/{signature}")
    async def token_callback(waitpoint_id: str, signature: str, request: Request) -> Any:
        """Complete a wait token with the POSTed JSON (``{}`` when the body is empty).

        The URL is the credential: ``signature`` is the HMAC-SHA256 of the id under the
        environment's secret key. A wrong signature is 401 and changes nothing; a body that is
        not JSON Shipyard can store (invalid, NaN, nested too deeply, a lone surrogate) is 400.
        """
        if not engine.token_signature_valid(waitpoint_id, signature):
            return JSONResponse(
                {"error": "Invalid callback signature for this wait token."}, status_code=401
            )
        body = await request.body()
        try:
            data: Any = (
                loads(body, max_depth=MAX_JSON_DEPTH, what="The request body")
                if body.strip()
                else {}
            )
            await engine.complete_token(waitpoint_id, data)
        except WaitpointNotFoundError as exc:
            return JSONResponse({"error": exc.message}, status_code=404)
        except ValidationError as exc:
            # Not JSON, or JSON Shipyard cannot store (NaN, too deep, a lone surrogate).
            return JSONResponse({"error": exc.message}, status_code=400)
        return {"success": True}

    return app


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
