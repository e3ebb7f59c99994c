"""Public access tokens: JWTs signed with the environment's secret key, carrying scopes.

Scopes are flattened strings (``read:runs:run_123``, ``write:waitpoints:waitpoint_x``). A handle
token (``handle.public_access_token``) reads only its run or batch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["sign_token"]


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
