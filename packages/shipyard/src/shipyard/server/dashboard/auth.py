"""Who may use the dashboard: a login with a secret key of an environment, a signed session
cookie, and a CSRF token on every form.

A browser signs in with a secret key: the server's own (``SHIPYARD_SECRET_KEY``) or one made
with ``shipyard keys create``; the key's environment is what the session may see. Signing in
with the key of another environment adds it to the session, and the environment switcher moves
between the environments the session holds.

The session cookie (``shipyard_session``) holds no key: it is ``<payload>.<signature>``, the
payload a base64url JSON ``{"sid", "exp", "cur", "g": [[environment, key id], …]}`` and the
signature its HMAC-SHA256 under the server's own secret key (rotating it ends every session).
A grant made with a key from the keys table names the key's id, and is dropped within
:data:`KEY_CHECK_SECONDS` of the key's revocation. The cookie is HttpOnly, SameSite=Strict,
``Path=/dashboard`` and Secure when the page is served over https.

Every POST carries a CSRF token (a form field ``csrf`` or the ``X-CSRF-Token`` header): the
HMAC of the session id, so a page on another site cannot forge one. The login form, posted
before any session exists, uses a double-submit nonce (a cookie and the same value in the
form).

``open_access`` (``shipyard dev``: the development environment on a loopback address) skips
the login for the server's own environment: every visitor gets a session at once — the CSRF
tokens still apply, and such a session is worth nothing to a server that is not open.
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

from shipyard.engine.auth import looks_like_jwt
from shipyard.engine.engine import Engine
from shipyard.errors import AuthenticationError
from shipyard.server.auth import Gatekeeper

__all__ = [
    "KEY_CHECK_SECONDS",
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "SESSION_TTL_S",
    "DashboardAuth",
    "Grant",
    "Session",
]

SESSION_COOKIE = "shipyard_session"
LOGIN_COOKIE = "shipyard_login"
SESSION_TTL_S = 12 * 3600
KEY_CHECK_SECONDS = 5.0
"""How long a key from the keys table is trusted to be live without asking again."""
COOKIE_PATH = "/dashboard"
OWN_KEY = "config"
"""The key id of a grant made with the server's configured secret key."""
OPEN = "open"
"""The key id of a grant made by open access (worth nothing to a closed server)."""


@dataclass(frozen=True, slots=True)
class Grant:
    """An environment a session may see, and the id of the key that granted it."""

    environment: str
    key_id: str


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: its grants, the environment it looks at (and its engine), its
    CSRF token."""

    sid: str
    grants: tuple[Grant, ...]
    current: str
    csrf: str
    expires_at: int
    engine: Engine

    @property
    def environment(self) -> str:
        """The environment the pages show."""
        return self.current

    @property
    def environments(self) -> tuple[str, ...]:
        """Every environment the session may switch to."""
        return tuple(g.environment for g in self.grants)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class DashboardAuth:
    """Sessions and CSRF tokens over the server's :class:`Gatekeeper` (see the module
    docstring)."""

    def __init__(self, gate: Gatekeeper, *, open_access: bool = False) -> None:
        self.gate = gate
        self.open_access = open_access
        self._live: dict[str, tuple[frozenset[str], float]] = {}
        self._known: tuple[tuple[str, ...], float] | None = None

    @property
    def engine(self) -> Engine:
        """The server's own engine (its environment and key)."""
        return self.gate.engine

    def _mac(self, purpose: str, value: str) -> str:
        key = self.engine.secret_key().encode()
        message = f"shipyard-dashboard-{purpose}:{value}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    # -- signing in -------------------------------------------------------------------------

    async def grant_for(self, key: str) -> Grant | None:
        """The grant a secret key gives (its environment), or None for anything else — a
        wrong or revoked key, or a public access token (they are for browsers of your app,
        not for the dashboard)."""
        key = key.strip()
        if not key or looks_like_jwt(key):
            return None
        try:
            caller = await self.gate.authenticate(key)
        except AuthenticationError:
            return None
        found = await self.engine.find_key(key)
        return Grant(caller.environment, found.id if found is not None else OWN_KEY)

    def cookie_value(self, sid: str, grants: tuple[Grant, ...], current: str) -> str:
        """A signed session cookie value (valid :data:`SESSION_TTL_S` from now)."""
        payload = _b64(
            json.dumps(
                {
                    "sid": sid,
                    "exp": int(time.time()) + SESSION_TTL_S,
                    "cur": current,
                    "g": [[g.environment, g.key_id] for g in grants],
                },
                separators=(",", ":"),
            ).encode()
        )
        return f"{payload}.{self._mac('session', payload)}"

    def signed_in(self, session: Session | None, grant: Grant) -> str:
        """The cookie of ``session`` (or a new one) with ``grant`` added and shown."""
        sid = session.sid if session is not None else secrets.token_urlsafe(18)
        kept = tuple(
            g for g in (session.grants if session else ()) if g.environment != grant.environment
        )
        return self.cookie_value(sid, (*kept, grant), grant.environment)

    def switched(self, session: Session, environment: str) -> str | None:
        """The cookie of ``session`` looking at ``environment``; None if it holds no grant
        for it (sign in with its key first)."""
        if environment not in session.environments:
            return None
        return self.cookie_value(session.sid, session.grants, environment)

    # -- reading a request --------------------------------------------------------------------

    async def session(self, request: Request) -> Session | None:
        """The request's valid session, or None (missing, forged, expired, revoked key);
        under ``open_access`` a new one (its cookie in ``request.state.new_session``)."""
        found = await self._read(request.cookies.get(SESSION_COOKIE, ""))
        if found is None and self.open_access:
            grant = Grant(self.engine.environment, OPEN)
            value = self.signed_in(None, grant)
            request.state.new_session = value
            found = await self._read(value)
        return found

    async def _read(self, value: str) -> Session | None:
        payload, _, signature = value.partition(".")
        expected = self._mac("session", payload).encode()
        if not payload or not hmac.compare_digest(
            expected, signature.encode("utf-8", "surrogatepass")
        ):
            return None
        try:
            data = json.loads(_unb64(payload))
            sid, expires, current = str(data["sid"]), int(data["exp"]), str(data["cur"])
            grants = tuple(Grant(str(e), str(k)) for e, k in data["g"])
        except (ValueError, KeyError, TypeError):
            return None
        if expires < time.time():
            return None
        live = tuple([g for g in grants if await self._grant_live(g)])
        if current not in (g.environment for g in live):
            return None
        engine = await self.gate.engine_for(current)
        if engine is None:
            return None
        return Session(sid, live, current, self._mac("csrf", sid), expires, engine)

    async def _grant_live(self, grant: Grant) -> bool:
        if grant.key_id == OPEN:
            return self.open_access and grant.environment == self.engine.environment
        if grant.key_id == OWN_KEY:
            return grant.environment == self.engine.environment
        cached = self._live.get(grant.environment)
        now = time.monotonic()
        if cached is None or cached[1] <= now:
            keys = await self.engine.list_keys(grant.environment)
            ids = frozenset(k.id for k in keys if not k.revoked)
            if len(self._live) > 1000:
                self._live.clear()
            cached = (ids, now + KEY_CHECK_SECONDS)
            self._live[grant.environment] = cached
        return grant.key_id in cached[0]

    def forget_keys(self) -> None:
        """Check keys afresh on the next request (after a revocation made here)."""
        self._live.clear()
        self._known = None

    async def environments(self) -> tuple[str, ...]:
        """Every environment this server can show: its own and each one with a live key
        (read at most every :data:`KEY_CHECK_SECONDS`), sorted."""
        now = time.monotonic()
        if self._known is None or self._known[1] <= now:
            keys = await self.engine.list_keys()
            names = {k.environment for k in keys if not k.revoked} | {self.engine.environment}
            self._known = (tuple(sorted(names)), now + KEY_CHECK_SECONDS)
        return self._known[0]

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

    # -- cookies ------------------------------------------------------------------------------

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
