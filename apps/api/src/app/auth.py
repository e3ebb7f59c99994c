"""Who is calling: a Supabase access token (HS256 JWT) verified with ``SUPABASE_JWT_SECRET``.

* ``SUPABASE_JWT_SECRET`` set → every protected route needs ``Authorization: Bearer <token>``,
  signed HS256 with that secret, audience ``authenticated``, not expired; else 401.
* not set, environment ``development`` → requests are let through as a development user (the
  ``sub`` of an unverified bearer token if one is sent), with a warning in the log.
* not set, any other environment → 503: the API refuses to run unauthenticated.

Projects that moved to asymmetric JWT signing keys verify against the project's JWKS instead;
that is a small change in :func:`verify_token` (``jwt.PyJWKClient``).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request

from app.config import AppConfig, get_config

log = logging.getLogger("app.auth")
DEV_USER_ID = "00000000-0000-0000-0000-000000000000"
AUDIENCE = "authenticated"


@dataclass(frozen=True)
class User:
    """The caller: Supabase user id (``sub``), role, and the token to forward to Supabase."""

    id: str
    role: str
    access_token: str | None = field(default=None, repr=False)
    verified: bool = True


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, if any."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def verify_token(token: str, secret: str) -> dict[str, Any]:
    """The claims of a valid Supabase access token; raises ``jwt.InvalidTokenError``."""
    claims: dict[str, Any] = jwt.decode(
        token,
        secret,
        algorithms=["HS256"],
        audience=AUDIENCE,
        options={"require": ["sub", "exp"]},
    )
    return claims


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def current_user(request: Request, config: Annotated[AppConfig, Depends(get_config)]) -> User:
    """FastAPI dependency for protected routes (see the module docstring)."""
    token = bearer_token(request)
    if config.jwt_secret:
        if token is None:
            raise _unauthorized("Missing bearer token: send Authorization: Bearer <access token>.")
        try:
            claims = verify_token(token, config.jwt_secret)
        except jwt.ExpiredSignatureError:
            raise _unauthorized("The access token has expired; refresh the session.") from None
        except jwt.InvalidTokenError as exc:
            raise _unauthorized(f"Invalid access token ({type(exc).__name__}).") from None
        return User(
            id=str(claims["sub"]), role=str(claims.get("role", AUDIENCE)), access_token=token
        )
    if config.environment != "development":
        log.error("SUPABASE_JWT_SECRET is not set outside development; refusing the request")
        raise HTTPException(503, detail="Authentication is not configured on this deployment.")
    log.warning(
        "SUPABASE_JWT_SECRET is not set: accepting an unauthenticated request "
        "(development only; set it to require Supabase access tokens)"
    )
    sub = DEV_USER_ID
    if token is not None:
        with contextlib.suppress(jwt.InvalidTokenError):
            sub = str(jwt.decode(token, options={"verify_signature": False}).get("sub") or sub)
    return User(id=sub, role=AUDIENCE, access_token=token, verified=False)


CurrentUser = Annotated[User, Depends(current_user)]
