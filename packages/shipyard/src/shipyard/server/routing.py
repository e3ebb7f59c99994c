"""What every API route shares: bodies decoded by Shipyard's JSON rules, answers written from
the wire models.

:class:`JsonRoute` decodes a JSON body with :func:`shipyard.jsonutil.loads` before FastAPI
validates it, so a body nested too deeply, or not JSON at all, is a 400 that says so (FastAPI
alone would decode any depth and answer a vague message). :func:`wire` writes a model as its
camelCase JSON without FastAPI's second validation pass.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from shipyard.jsonutil import loads
from shipyard.schemas.wire import WireModel

__all__ = ["JsonRoute", "wire"]


class JsonRoute(APIRoute):
    """An API route whose JSON body is decoded by Shipyard's rules (see the module)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, after the body is decoded (errors reach the app's handlers)."""
        handler = super().get_route_handler()
        if self.body_field is None:  # the route reads its body itself (or has none)
            return handler

        async def decoded(request: Request) -> Response:
            if request.method in ("POST", "PUT", "PATCH"):
                body = await request.body()
                if body.strip():
                    # Starlette's Request.json() returns this once set.
                    request._json = loads(body, what="The request body")
            return await handler(request)

        return decoded


def wire(
    model: WireModel, status_code: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    """``model`` as its wire JSON (camelCase, absent fields left out)."""
    return JSONResponse(model.to_wire(), status_code=status_code, headers=headers)
