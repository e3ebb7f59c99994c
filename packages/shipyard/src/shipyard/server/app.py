"""The engine server's FastAPI app. Today: ``GET /healthz`` and the wait token callback URL;
the HTTP API grows here."""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shipyard import __version__
from shipyard.engine.engine import Engine
from shipyard.errors import WaitpointNotFoundError


def create_app(engine: Engine) -> FastAPI:
    """The engine server app bound to ``engine``.

    ``/healthz`` is the only unauthenticated route: it reports whether the store answers.
    """
    app = FastAPI(title="Shipyard engine", version=__version__)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        await engine.start()
        from shipyard.store.protocol import TaskListParams

        tasks = await engine.store.task_list(TaskListParams(engine.environment))
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
        expected = engine.token_signature(waitpoint_id)
        if not hmac.compare_digest(expected, signature):
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
