"""Public access tokens over HTTP: ``POST /api/v1/auth/jwt`` (secret key only) signs a token
for the caller's environment with the scopes asked for (flat strings; see
:mod:`shipyard.schemas.auth`), valid for ``expirationTime`` (15 minutes by default)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from shipyard.durations import parse_duration_ms
from shipyard.engine.auth import sign_token
from shipyard.errors import InvalidDurationError, ValidationError
from shipyard.schemas.auth import (
    DEFAULT_PUBLIC_TOKEN_EXPIRY,
    CreatePublicTokenRequest,
    CreatePublicTokenResponse,
    check_scope,
)
from shipyard.schemas.headers import TRIGGER_JWT_HEADER
from shipyard.server.auth import Caller, secret_caller
from shipyard.server.routes.common import ERRORS
from shipyard.server.routing import JsonRoute

__all__ = ["expires_in_s", "router"]


def expires_in_s(expiration: str | int | None, now_s: int) -> int:
    """Seconds until a token made now expires: a duration (``"15m"``) or an epoch time in
    seconds; :class:`ValidationError` if it is not in the future."""
    param = "expirationTime"
    if expiration is None:
        expiration = DEFAULT_PUBLIC_TOKEN_EXPIRY
    if isinstance(expiration, int):
        seconds = expiration - now_s
    else:
        try:
            seconds = parse_duration_ms(expiration) // 1000
        except InvalidDurationError as exc:
            raise ValidationError(
                f"Invalid expirationTime: {exc.message} Use a duration such as '15m' or an "
                "epoch time in seconds.",
                param=param,
            ) from None
    if seconds < 1:
        raise ValidationError(
            "expirationTime must be in the future (a token needs an expiry).", param=param
        )
    return seconds


def router() -> APIRouter:
    """The token route."""
    api = APIRouter(route_class=JsonRoute, tags=["auth"])

    @api.post(
        "/api/v1/auth/jwt",
        response_model=CreatePublicTokenResponse,
        responses=ERRORS,
        summary="Create a public access token",
    )
    async def create_public_token(
        caller: Annotated[Caller, Depends(secret_caller)],
        body: CreatePublicTokenRequest | None = None,
    ) -> JSONResponse:
        """A JWT for the key's environment granting ``claims.scopes`` (none: it grants
        nothing) until ``expirationTime``; ``oneTimeUse`` makes a token the server accepts
        once (a single-use trigger token)."""
        body = body or CreatePublicTokenRequest()
        scopes = [check_scope(s) for s in (body.claims.scopes if body.claims else [])]
        now_s = int(time.time())
        engine = caller.engine
        token = sign_token(
            engine.environment,
            scopes,
            now_s,
            expires_in_s(body.expiration_time, now_s),
            engine.secret_key(),
            one_time_use=body.one_time_use,
        )
        return JSONResponse(
            CreatePublicTokenResponse(token=token).to_wire(), headers={TRIGGER_JWT_HEADER: token}
        )

    return api
