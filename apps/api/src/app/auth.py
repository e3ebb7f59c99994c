"""Who is calling: a Supabase access token, verified, or the request is refused.

Protected routes need ``Authorization: Bearer <access token>``. The token is verified by the
algorithm its header names:

* **ES256 / RS256** (Supabase's asymmetric signing keys, the default for new projects) —
  against the project's JWKS, ``{SUPABASE_URL}/auth/v1/.well-known/jwks.json``, by ``kid``
  (:mod:`app.jwks`: cached, fetched again when a new ``kid`` appears, rate-limited);
* **HS256** (the legacy shared secret) — with ``SUPABASE_JWT_SECRET``, when it is set.

Either way the token must be unexpired (``exp``), for audience ``authenticated`` (``aud``),
have a ``sub``, and — when ``SUPABASE_URL`` is set — be issued by ``{SUPABASE_URL}/auth/v1``
(``iss``). Anything else is 401. No other algorithm is accepted (``none``, ``HS512``, …).

Closed by default:

* neither ``SUPABASE_URL`` nor ``SUPABASE_JWT_SECRET`` set (placeholders count as unset) and
  ``APP_ENV`` anything but ``development`` (unset included) → 503 ``{"error": …}``: the API
  refuses to run unauthenticated;
* the same with an explicit ``APP_ENV=development`` (``shipyard dev`` sets it) → requests are let
  through as a development user, with a warning in the log: the ``sub`` of the bearer token if
  one is sent (unverified: only here), else :data:`DEV_USER_ID`;
* the signing keys cannot be fetched and none are cached → 503.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request
from jwt.types import Options

from app.config import AppConfig, get_config
from app.jwks import ALGORITHMS, JwksUnavailableError, jwks_cache

log = logging.getLogger("app.auth")
DEV_USER_ID = "00000000-0000-0000-0000-000000000000"
AUDIENCE = "authenticated"
REQUIRED_CLAIMS = ["sub", "exp", "aud"]


@dataclass(frozen=True)
class User:
    """The caller: Supabase user id (``sub``), role, and the token to forward to Supabase."""

    id: str
    role: str
    access_token: str | None = field(default=None, repr=False)
    verified: bool = True


class TokenRejectedError(Exception):
    """The token cannot be accepted; the message says why (it never contains the token)."""


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, if any."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _decode(token: str, key: Any, algorithm: str, issuer: str | None) -> dict[str, Any]:
    options: Options = {"require": [*REQUIRED_CLAIMS, *(["iss"] if issuer else [])]}
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=AUDIENCE,
            issuer=issuer,
            options=options,
        )
    except jwt.ExpiredSignatureError:
        raise TokenRejectedError("The access token has expired; refresh the session.") from None
    except jwt.InvalidTokenError as exc:
        raise TokenRejectedError(f"Invalid access token ({type(exc).__name__}).") from None
    return claims


async def verify_token(token: str, config: AppConfig) -> dict[str, Any]:
    """The claims of a valid Supabase access token (see the module docstring).

    Raises :class:`TokenRejectedError` (→ 401) or :class:`JwksUnavailableError` (→ 503).
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise TokenRejectedError("Invalid access token (DecodeError).") from None
    algorithm = header.get("alg")
    if algorithm == "HS256":
        if not config.jwt_secret:
            raise TokenRejectedError(
                "The access token is HS256-signed but SUPABASE_JWT_SECRET is not set on this "
                "deployment: set it, or sign tokens with the project's asymmetric keys."
            )
        return _decode(token, config.jwt_secret, "HS256", config.issuer)
    if algorithm not in ALGORITHMS:
        raise TokenRejectedError(
            f"Invalid access token (algorithm {str(algorithm)[:20]!r} is not accepted)."
        )
    if config.jwks_url is None:
        raise TokenRejectedError(
            f"The access token is {algorithm}-signed but SUPABASE_URL is not set on this "
            "deployment, so its signing keys cannot be fetched."
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRejectedError("Invalid access token (no key id in its header).")
    key = await jwks_cache(config.jwks_url).key(kid)
    if key is None:
        raise TokenRejectedError(
            "Invalid access token (signed by a key the project does not have)."
        )
    # The key's own algorithm, never the header's: a token cannot pick how it is checked.
    return _decode(token, key.key, str(key.algorithm_name), config.issuer)


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, detail=message, headers={"WWW-Authenticate": "Bearer"})


async def current_user(request: Request, config: Annotated[AppConfig, Depends(get_config)]) -> User:
    """FastAPI dependency for protected routes (see the module docstring)."""
    token = bearer_token(request)
    if config.can_verify:
        if token is None:
            raise _unauthorized("Missing bearer token: send Authorization: Bearer <access token>.")
        try:
            claims = await verify_token(token, config)
        except TokenRejectedError as exc:
            raise _unauthorized(str(exc)) from None
        except JwksUnavailableError as exc:
            log.error("cannot verify access tokens: %s", exc)
            raise HTTPException(
                503, detail=f"Cannot verify access tokens right now: {exc}."
            ) from None
        return User(
            id=str(claims["sub"]), role=str(claims.get("role", AUDIENCE)), access_token=token
        )
    if not config.development:
        log.error(
            "no way to verify access tokens (SUPABASE_URL and SUPABASE_JWT_SECRET unset) and "
            "APP_ENV is %r, not 'development': refusing the request",
            config.environment,
        )
        raise HTTPException(
            503,
            detail="Authentication is not configured on this deployment: set SUPABASE_URL "
            "(JWKS) or SUPABASE_JWT_SECRET, or APP_ENV=development for local development.",
        )
    log.warning(
        "APP_ENV=development and neither SUPABASE_URL nor SUPABASE_JWT_SECRET is set: accepting "
        "an unverified request (set one of them to require Supabase access tokens)"
    )
    sub = DEV_USER_ID
    if token is not None:
        # Development only: lets a developer act as several users without a Supabase project.
        with contextlib.suppress(jwt.InvalidTokenError):
            sub = str(jwt.decode(token, options={"verify_signature": False}).get("sub") or sub)
    return User(id=sub, role=AUDIENCE, access_token=token, verified=False)


CurrentUser = Annotated[User, Depends(current_user)]
