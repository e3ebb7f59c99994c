"""Public access tokens: JWTs signed with the environment's secret key, carrying scopes.

Scopes are flattened strings (``read:runs:run_123``, ``write:waitpoints:waitpoint_x``). A handle
token (``handle.public_access_token``) reads only its run or batch. :func:`verify_token` checks
one (HS256 signature, expiry, environment) and returns its claims.

Example::

    token = sign_token("production", ["read:runs:run_1"], now_s, 3600, secret)
    claims = verify_token(token, secret, environment="production")
    claims.allows("read", "runs", "run_1")  # True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.errors import InvalidTokenError

__all__ = ["TokenClaims", "sign_token", "verify_token"]

# Clock skew tolerated between the signer and the verifier.
_LEEWAY_S = 5


def sign_token(
    environment: str, scopes: list[str], now_s: int, expires_in_s: int, secret: str
) -> str:
    """A HS256 JWT for ``environment`` granting ``scopes`` until ``now_s + expires_in_s``."""
    import jwt  # imported on first use: it pulls in cryptography (slow CLI start)

    claims: dict[str, Any] = {
        "sub": environment,
        "scopes": scopes,
        "iat": now_s,
        "exp": now_s + expires_in_s,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """A verified token: its environment, scopes and expiry (epoch seconds)."""

    environment: str
    scopes: tuple[str, ...]
    expires_at: int

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
    ``environment`` when given); :class:`InvalidTokenError` saying why otherwise."""
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
        raise InvalidTokenError("The public access token has expired.") from None
    except jwt.InvalidSignatureError:
        raise InvalidTokenError(
            "The public access token is not signed with this environment's key."
        ) from None
    except jwt.PyJWTError:
        raise InvalidTokenError("The public access token is not a valid JWT.") from None
    scopes = claims.get("scopes")
    if not isinstance(scopes, Sequence) or isinstance(scopes, str):
        scopes = []
    subject = claims.get("sub")
    if environment is not None and subject != environment:
        raise InvalidTokenError("The public access token is for another environment.")
    return TokenClaims(
        environment=str(subject),
        scopes=tuple(s for s in scopes if isinstance(s, str)),
        expires_at=int(claims["exp"]),
    )
