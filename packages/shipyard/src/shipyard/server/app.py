"""The engine server's FastAPI app. Today: ``GET /healthz``; the HTTP API grows here."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from shipyard import __version__
from shipyard.engine.engine import Engine


def create_app(engine: Engine) -> FastAPI:
    """The engine server app bound to ``engine``.

    ``/healthz`` is the only unauthenticated route: it reports whether the store answers.
    """
    app = FastAPI(title="Shipyard engine", version=__version__)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        await engine.start()
        tasks = await engine.store.task_list(engine.environment)
        return {
            "status": "ok",
            "version": __version__,
            "environment": engine.environment,
            "tasks": len(tasks),
        }

    return app
