"""Strict JSON request bodies and one error shape for the API.

Python's ``json`` module accepts ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON, RFC 8259)
and turns ``1e400`` into ``inf``; such a number in a body used to reach a Shipyard payload and
fail there with a 500. :class:`StrictJSONRoute` parses bodies strictly: a non-finite number, or
a document nested too deeply for the parser, is a 422 like any other malformed JSON.

Every error the API returns has the same shape, ``{"error": "<what is wrong>"}`` (request
validation errors add ``"detail"``, FastAPI's list of the fields at fault):
:func:`install_error_handlers` sets that up.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

NON_FINITE = "NaN, Infinity and numbers too large for a 64-bit float are not valid JSON numbers"
TOO_DEEP = "the JSON document is nested too deeply"


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(NON_FINITE)
    return value


def _no_constants(text: str) -> float:
    raise ValueError(NON_FINITE)


def loads_strict(body: bytes | str) -> Any:
    """``json.loads`` that refuses non-finite numbers and overly deep nesting.

    Raises ``json.JSONDecodeError`` for every problem, so FastAPI answers 422.
    """
    doc = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        return json.loads(doc, parse_float=_finite, parse_constant=_no_constants)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError(TOO_DEEP, doc, 0) from None
    except ValueError as exc:
        # parse_float/parse_constant errors carry no position: find the first culprit.
        raise json.JSONDecodeError(str(exc), doc, _first_non_finite(doc)) from None


def _first_non_finite(doc: str) -> int:
    positions = [p for p in (doc.find("NaN"), doc.find("Infinity")) if p >= 0]
    return min(positions) if positions else 0


class StrictJSONRequest(Request):
    """A request whose ``json()`` is :func:`loads_strict`."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_strict(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """A route that parses its JSON body with :class:`StrictJSONRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict


def _summary(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", "invalid"))
    reason = (error.get("ctx") or {}).get("error")
    if error.get("type") == "json_invalid" and reason:
        message = f"{message}: {reason}"
    return f"{location}: {message}" if location else message


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error as ``{"error": …}`` (see the module docstring)."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return JSONResponse(
            {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        summary = "; ".join(_summary(e) for e in errors[:3]) or "invalid request"
        # "input" may echo a huge or sensitive body back: leave it out.
        detail = [{k: v for k, v in e.items() if k != "input"} for e in errors]
        return JSONResponse(
            {"error": f"Invalid request: {summary}.", "detail": jsonable_encoder(detail)},
            status_code=422,
        )

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
