"""Who may use the dashboard: a login with the environment's secret key, a signed session
cookie, and a CSRF token on every form.

The session cookie (``shipyard_session``) holds no key: it is ``<payload>.<signature>``, the
payload a base64url JSON ``{"env", "exp", "sid"}`` and the signature its HMAC-SHA256 under the
environment's secret key — rotating the key ends every session. It is HttpOnly,
SameSite=Strict, ``Path=/dashboard`` and Secure when the page is served over https.

Every POST carries a CSRF token (a form field ``csrf`` or the ``X-CSRF-Token`` header): the
HMAC of the session id, so a page on another site cannot forge one. The login form, posted
before any session exists, uses a double-submit nonce (a cookie and the same value in the
form).

``open_access`` (``shipyard dev`` in the development environment on a loopback address) skips
the login: every visitor gets a session at once — the CSRF tokens still apply.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from shipyard.engine.engine import Engine

__all__ = ["LOGIN_COOKIE", "SESSION_COOKIE", "SESSION_TTL_S", "DashboardAuth", "Session"]

SESSION_COOKIE = "shipyard_session"
LOGIN_COOKIE = "shipyard_login"
SESSION_TTL_S = 12 * 3600
COOKIE_PATH = "/dashboard"


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: its environment, session id and CSRF token."""

    environment: str
    sid: str
    csrf: str
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class DashboardAuth:
    """Sessions and CSRF tokens for one engine (see the module docstring)."""

    def __init__(self, engine: Engine, *, open_access: bool = False) -> None:
        self.engine = engine
        self.open_access = open_access

    def _mac(self, purpose: str, value: str) -> str:
        key = self.engine.secret_key().encode()
        return hmac.new(
            key, f"shipyard-dashboard-{purpose}:{value}".encode(), hashlib.sha256
        ).hexdigest()

    def key_valid(self, key: str) -> bool:
        """Whether ``key`` is the environment's secret key (compared in constant time)."""
        expected = self.engine.secret_key().encode()
        return hmac.compare_digest(expected, key.strip().encode("utf-8", "surrogatepass"))

    def new_session(self) -> tuple[Session, str]:
        """A new session and its cookie value."""
        expires = int(time.time()) + SESSION_TTL_S
        sid = secrets.token_urlsafe(18)
        payload = _b64(
            json.dumps({"env": self.engine.environment, "exp": expires, "sid": sid}).encode()
        )
        value = f"{payload}.{self._mac('session', payload)}"
        return Session(self.engine.environment, sid, self._mac("csrf", sid), expires), value

    def session(self, request: Request) -> Session | None:
        """The request's valid session, or None (missing, forged, expired, other environment)."""
        value = request.cookies.get(SESSION_COOKIE, "")
        payload, _, signature = value.partition(".")
        if not payload or not hmac.compare_digest(
            self._mac("session", payload).encode(), signature.encode("utf-8", "surrogatepass")
        ):
            return None
        try:
            data = json.loads(_unb64(payload))
            environment, expires, sid = str(data["env"]), int(data["exp"]), str(data["sid"])
        except (ValueError, KeyError, TypeError):
            return None
        if environment != self.engine.environment or expires < time.time():
            return None
        return Session(environment, sid, self._mac("csrf", sid), expires)

    def csrf_valid(self, session: Session, token: str | None) -> bool:
        """Whether ``token`` is this session's CSRF token."""
        return token is not None and hmac.compare_digest(
            session.csrf.encode(), token.encode("utf-8", "surrogatepass")
        )

    def login_nonce_valid(self, request: Request, nonce: str | None) -> bool:
        """The login form's double-submit check: the form's nonce is the cookie's."""
        cookie = request.cookies.get(LOGIN_COOKIE)
        if not cookie or not nonce:
            return False
        return hmac.compare_digest(
            cookie.encode("utf-8", "surrogatepass"), nonce.encode("utf-8", "surrogatepass")
        )

    @staticmethod
    def set_cookie(
        response: Response, request: Request, name: str, value: str, max_age: int
    ) -> None:
        """Set a dashboard cookie: HttpOnly, SameSite=Strict, Secure over https."""
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    @staticmethod
    def clear_cookie(response: Response, name: str) -> None:
        """Remove a dashboard cookie."""
        response.delete_cookie(name, path=COOKIE_PATH, httponly=True, samesite="strict")
