"""The template's API: a FastAPI app, served by ``shipyard dev`` on :8787 and deployed as a
Cloudflare Python Worker (``src/entry.py``).

Routes:

* ``GET /`` — health text (public).
* ``GET /db-test`` — is Supabase configured and reachable? (public; reports no secrets)
* ``POST /reports``, ``GET /reports/{id}`` — the example feature: a Shipyard task generates a
  report and reports progress through run metadata (bearer token, see :mod:`app.auth`).
* ``GET /notes``, ``POST /notes`` — the caller's notes through Supabase, row-level security
  applied with the caller's token (bearer token).

Errors are ``{"error": "<what is wrong>"}`` with the right status; bodies are strict JSON
(``NaN``/``Infinity`` → 422): :mod:`app.routing`.

On shutdown the lifespan closes Shipyard's default engine (``shipyard.aclose()``): its database
connections and pool tasks end with the app, not after the event loop is gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from app.config import AppConfig, get_config
from app.notes import router as notes_router
from app.reports import router as reports_router
from app.routing import StrictJSONRoute, install_error_handlers

log = logging.getLogger("app")
HEALTH_TEXT = "AI start!"


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    """Close what the app opened: Shipyard's default engine (under ``shipyard dev`` the engine
    belongs to dev, which closes it itself)."""
    yield
    from shipyard import aclose  # as the routes do: imported when first needed

    await aclose()


app = FastAPI(title="Shipyard template API", version="0.1.0", lifespan=lifespan)
app.router.route_class = StrictJSONRoute
install_error_handlers(app)
app.include_router(reports_router)
app.include_router(notes_router)


@app.get("/", response_class=PlainTextResponse)
async def health() -> str:
    """Health check: answers as long as the app is up."""
    return HEALTH_TEXT


@app.get("/db-test", response_model=None)
async def db_test(
    config: Annotated[AppConfig, Depends(get_config)],
) -> dict[str, Any] | JSONResponse:
    """Check the Supabase connection with a real request to the project's auth health endpoint.

    ``not_configured`` (200) without a URL and public key; ``connected`` with the latency; or
    ``error`` (502) with a message. No key is ever part of the answer or of a log line.
    """
    if not config.supabase_url or not config.public_key:
        return {
            "status": "not_configured",
            "message": "Set SUPABASE_URL and SUPABASE_PUBLISHABLE_KEY (or SUPABASE_ANON_KEY) "
            "to connect; run `shipyard check-envs` to see what is missing.",
        }
    url = f"{config.supabase_url}/auth/v1/health"
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(timeout=config.db_test_timeout) as client:
            response = await client.get(url, headers={"apikey": config.public_key})
    except httpx.TimeoutException:
        message = f"Supabase did not answer within {config.db_test_timeout:g} s."
    except httpx.HTTPError as exc:
        message = f"Could not reach Supabase ({type(exc).__name__})."
    else:
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        if response.status_code == 200:
            log.info("db-test: Supabase answered in %.1f ms", latency_ms)
            return {"status": "connected", "latency_ms": latency_ms}
        message = f"Supabase answered HTTP {response.status_code}" + (
            " (check the API key)." if response.status_code in (401, 403) else "."
        )
    log.warning("db-test: %s", message)
    return JSONResponse({"status": "error", "message": message}, status_code=502)
