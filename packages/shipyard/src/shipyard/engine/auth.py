"""Public access tokens: JWTs signed with the environment's secret key, carrying scopes.

Scopes are flattened strings (``read:runs:run_123``, ``write:waitpoints:waitpoint_x``). A handle
token (``handle.public_access_token``) reads only its run or batch. :func:`verify_token` checks
one (HS256 signature, expiry, environment) and returns its claims. A single-use token (a trigger
token made with ``multiple_use=False``) carries ``otu: true`` and a unique ``jti``; the server
spends it on first use. :func:`token_environment` reads the environment a token claims before
it is verified, to pick the key to verify it with.

Example::

    token = sign_token("production", ["read:runs:run_1"], now_s, 3600, secret)
    claims = verify_token(token, secret, environment="production")
    claims.allows("read", "runs", "run_1")  # True
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.errors import AuthenticationError

__all__ = ["TokenClaims", "looks_like_jwt", "sign_token", "token_environment", "verify_token"]

# Clock skew tolerated between the signer and the verifier.
_LEEWAY_S = 5


def sign_token(
    environment: str,
    scopes: list[str],
    now_s: int,
    expires_in_s: int,
    secret: str,
    *,
    one_time_use: bool = False,
) -> str:
    """A HS256 JWT for ``environment`` granting ``scopes`` until ``now_s + expires_in_s``
    (``one_time_use``: a single-use token, with a unique ``jti``)."""
    import jwt  # imported on first use: it pulls in cryptography (slow CLI start)

    claims: dict[str, Any] = {
        "sub": environment,
        "pub": True,
        "scopes": scopes,
        "iat": now_s,
        "exp": now_s + expires_in_s,
    }
    if one_time_use:
        claims["otu"] = True
        claims["jti"] = secrets.token_urlsafe(16)
    return jwt.encode(claims, secret, algorithm="HS256")


def looks_like_jwt(token: str) -> bool:
    """Three dot-separated parts, the first a JWT header (``eyJ``): a public access token
    rather than a secret key."""
    return token.startswith("eyJ") and token.count(".") == 2


def token_environment(token: str) -> str:
    """The environment (``sub``) a token says it is for, read **without** verifying it: only
    to choose the key to verify it with. :class:`AuthenticationError` if it is not a JWT."""
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise AuthenticationError("The public access token is not a valid JWT.") from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise AuthenticationError("The public access token names no environment (sub).")
    return subject


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """A verified token: its environment, scopes and expiry (epoch seconds)."""

    environment: str
    scopes: tuple[str, ...]
    expires_at: int
    one_time_use: bool = False
    jti: str | None = None

    def allows(self, action: str, resource: str, name: str | None = None) -> bool:
        """Whether a scope grants ``action`` on ``resource`` (``read:runs`` covers every run,
        ``read:runs:run_1`` that one). A token without scopes grants nothing."""
        whole = f"{action}:{resource}"
        return whole in self.scopes or (name is not None and f"{whole}:{name}" in self.scopes)

    def names(self, action: str, resource: str) -> tuple[str, ...]:
        """The names a scope grants ``action`` on: ``read:tags:a`` → ``("a",)``."""
        prefix = f"{action}:{resource}:"
        return tuple(s[len(prefix) :] for s in self.scopes if s.startswith(prefix))


def verify_token(
    token: str, secret: str, *, environment: str | None = None, now_s: int | None = None
) -> TokenClaims:
    """The claims of a token signed with ``secret`` (HS256) that has not expired (and is for
    ``environment`` when given); :class:`AuthenticationError` saying why otherwise."""
    import jwt

    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"require": ["exp", "sub"], "verify_exp": now_s is None},
            leeway=_LEEWAY_S,
        )
        if now_s is not None and int(claims["exp"]) + _LEEWAY_S < now_s:
            raise jwt.ExpiredSignatureError("expired")
    except jwt.ExpiredSignatureError:
        raise AuthenticationError("The public access token has expired.") from None
    except jwt.InvalidSignatureError:
        raise AuthenticationError(
            "The public access token is not signed with this environment's key."
        ) from None
    except jwt.PyJWTError:
        raise AuthenticationError("The public access token is not a valid JWT.") from None
    scopes = claims.get("scopes")
    if not isinstance(scopes, Sequence) or isinstance(scopes, str):
        scopes = []
    subject = claims.get("sub")
    if environment is not None and subject != environment:
        raise AuthenticationError("The public access token is for another environment.")
    jti = claims.get("jti")
    one_time_use = claims.get("otu") is True
    if one_time_use and not isinstance(jti, str):
        raise AuthenticationError("The single-use public access token has no id (jti).")
    return TokenClaims(
        environment=str(subject),
        scopes=tuple(s for s in scopes if isinstance(s, str)),
        expires_at=int(claims["exp"]),
        one_time_use=one_time_use,
        jti=jti if isinstance(jti, str) else None,
    )
