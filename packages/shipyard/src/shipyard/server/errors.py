"""Errors as HTTP answers: every failure is JSON ``{"error": "…", "code": …}`` with the status
:func:`shipyard.schemas.errors.http_status_for` gives its :class:`~shipyard.errors.ShipyardError`
(400 bad input naming the field, 401, 403, 404, 409, 413, 422, 429 with ``Retry-After``).

A request body that fails its model is 400 naming each field (422 for a token completion that
sends ``output``); an unknown path is 404 and a wrong method 405, in the same shape; a database
that cannot be reached is 503 with ``Retry-After``; anything else is 500 with a generic message
(the traceback goes to the log, never to the caller).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError as PydanticValidationError
from starlette.exceptions import HTTPException

from shipyard.engine.engine import Engine
from shipyard.errors import RateLimitedError, ShipyardError
from shipyard.schemas.errors import (
    ErrorResponse,
    error_headers,
    error_response,
    http_status_for,
    validation_error_response,
)
from shipyard.schemas.headers import RATELIMIT_RESET_HEADER

__all__ = ["error_json", "install_error_handlers", "shipyard_error_response"]

logger = logging.getLogger("shipyard.server")


def error_json(
    status: int, message: str, code: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A ``{"error", "code"}`` response of ``status``."""
    body = ErrorResponse(error=message, code=code).to_wire()
    return JSONResponse(
        body, status_code=status, headers={**error_headers(status), **(headers or {})}
    )


def shipyard_error_response(exc: ShipyardError) -> JSONResponse:
    """The answer for a Shipyard error: its status, message, code and retry headers."""
    status = http_status_for(exc)
    headers = error_headers(status, exc)
    if isinstance(exc, RateLimitedError):
        reset_ms = int(time.time() * 1000) + int(exc.retry_after_ms)
        headers[RATELIMIT_RESET_HEADER] = str(reset_ms)
    if status == 500:
        logger.error("unexpected %s: %s", type(exc).__name__, exc.message)
        message = "Internal server error."
        return error_json(500, message, exc.code)
    return JSONResponse(error_response(exc).to_wire(), status_code=status, headers=headers)


def validation_response(errors: Any) -> JSONResponse:
    """400 (or 422) naming every field at fault."""
    status, body = validation_error_response(errors)
    return JSONResponse(body.to_wire(), status_code=status, headers=error_headers(status))


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error the app can raise in the JSON error shape."""

    @app.exception_handler(ShipyardError)
    async def _shipyard(request: Request, exc: ShipyardError) -> JSONResponse:
        return shipyard_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(exc.errors())

    @app.exception_handler(PydanticValidationError)
    async def _model(request: Request, exc: PydanticValidationError) -> JSONResponse:
        return validation_response(exc.errors())

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"No route {request.method} {request.url.path}."
            return error_json(404, message, "NOT_FOUND")
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}."
            return error_json(405, message, "METHOD_NOT_ALLOWED", dict(exc.headers or {}))
        return error_json(exc.status_code, str(exc.detail), "HTTP_ERROR")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if Engine.is_unavailable(exc):
            return error_json(
                503,
                "The database cannot be reached; retry shortly.",
                "STORE_UNAVAILABLE",
                {"Retry-After": "1"},
            )
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_json(500, "Internal server error.", "INTERNAL_ERROR")
