"""The engine server's FastAPI app. Today: ``GET /healthz`` and the wait token callback URL;
the HTTP API grows here."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shipyard.engine.engine import Engine
from shipyard.errors import WaitpointNotFoundError
from shipyard.version import __version__


def create_app(engine: Engine) -> FastAPI:
    """The engine server app bound to ``engine``.

    ``/healthz`` is the only unauthenticated route: it reports whether the store answers.
    """
    app = FastAPI(title="Shipyard engine", version=__version__)

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
        environment's secret key. A wrong signature is 401 and changes nothing.
        """
        if not engine.token_signature_valid(waitpoint_id, signature):
            return JSONResponse(
                {"error": "Invalid callback signature for this wait token."}, status_code=401
            )
        body = await request.body()
        if not body.strip():
            data: Any = {}
        else:
            try:
                data = json.loads(body)
            except ValueError:
                return JSONResponse({"error": "The body must be JSON."}, status_code=400)
        try:
            await engine.complete_token(waitpoint_id, data)
        except WaitpointNotFoundError as exc:
            return JSONResponse({"error": exc.message}, status_code=404)
        return {"success": True}

    return app
