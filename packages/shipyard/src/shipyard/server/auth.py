"""Who is calling: ``Authorization: Bearer <secret key or public access token>`` → the engine
of the caller's environment and what the caller may do.

* A **secret key** is the configured ``SHIPYARD_SECRET_KEY`` (the key of
  ``SHIPYARD_ENVIRONMENT``) or a key made with ``shipyard keys create`` (stored hashed, looked
  up by its hash and cached a few seconds, so a revoked key stops working within
  :data:`KEY_CACHE_SECONDS`). It may call every route, in its environment only. Keys are
  compared in constant time and never logged.
* A **public access token** is a JWT signed with its environment's signing key. It may call
  only the routes marked public (:func:`public_caller`), and only for what its scopes name
  (:meth:`Caller.require`): out of scope is 403, a wrong, forged or expired token 401 with the
  reason. A single-use token (``otu``) is spent by the trigger it makes.

The same :class:`Gatekeeper` authenticates the realtime routes (it is their
:class:`~shipyard.server.realtime.RealtimeAccess`), so one path serves both.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from dataclasses import dataclass

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shipyard.engine.auth import TokenClaims, looks_like_jwt, token_environment, verify_token
from shipyard.engine.engine import Engine
from shipyard.errors import AuthenticationError, ForbiddenError
from shipyard.server.realtime import FullGrant, RealtimeContext, RealtimeGrant, ScopeGrant

__all__ = [
    "KEY_CACHE_SECONDS",
    "Caller",
    "Gatekeeper",
    "public_caller",
    "secret_caller",
]

KEY_CACHE_SECONDS = 5.0
"""How long a secret key found in the keys table is trusted without asking again."""

_MISSING = (
    "Missing credentials: send 'Authorization: Bearer <secret key>' (or a public access "
    "token on the routes that accept one)."
)
_bearer = HTTPBearer(
    auto_error=False,
    description="A secret key of the environment (sk_…) or, on the routes that say so, a "
    "public access token (JWT).",
)


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request: its environment's engine, and the token's claims (``None``
    for a secret key, which may do everything in its environment)."""

    engine: Engine
    claims: TokenClaims | None = None

    @property
    def environment(self) -> str:
        """The environment the request acts in."""
        return self.engine.environment

    def allows(self, action: str, resource: str, name: str | None = None) -> bool:
        """Whether the caller may ``action`` the ``resource`` named ``name``."""
        return self.claims is None or self.claims.allows(action, resource, name)

    def require(self, action: str, resource: str, name: str | None = None) -> None:
        """:class:`ForbiddenError` unless the caller may ``action`` the ``resource``."""
        if not self.allows(action, resource, name):
            target = f"{resource} {name}" if name else resource
            raise ForbiddenError(
                f"This public access token cannot {action} {target}: it needs the scope "
                f"{action}:{resource}{':' + name if name else ''}.",
                scope=f"{action}:{resource}",
            )

    @property
    def grant(self) -> RealtimeGrant:
        """What the caller may subscribe to (realtime)."""
        return FullGrant() if self.claims is None else ScopeGrant(self.claims)


class Gatekeeper:
    """Maps credentials to the engine of their environment (see the module docstring).

    ``engine`` is the server's own engine: its environment is ``SHIPYARD_ENVIRONMENT``, its
    secret key ``SHIPYARD_SECRET_KEY``; other environments' engines share its store.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._own_hash = hashlib.sha256(engine.secret_key().encode()).digest()
        self._engines: dict[str, Engine] = {engine.environment: engine}
        self._keys: dict[bytes, tuple[str, float]] = {}
        self._unknown: dict[str, float] = {}
        self._lock = asyncio.Lock()

    async def engine_for(self, environment: str, *, known: bool = False) -> Engine | None:
        """The engine of ``environment``, or None when it has no signing key (no key was
        ever made for it). ``known``: the environment was just read from a key (skip the
        short memory of environments found to have none)."""
        found = self._engines.get(environment)
        if found is not None:
            return found
        if not known and self._unknown.get(environment, 0.0) > time.monotonic():
            return None  # asked a moment ago: a stream of forged tokens costs no queries
        async with self._lock:
            found = self._engines.get(environment)
            if found is None:
                signing = await self.engine.signing_key_of(environment)
                if signing is None:
                    if len(self._unknown) > 10_000:
                        self._unknown.clear()
                    self._unknown[environment] = time.monotonic() + KEY_CACHE_SECONDS
                    return None
                found = self.engine.for_environment(environment, signing)
                self._engines[environment] = found
        return found

    async def close(self) -> None:
        """Close the other environments' engines (the server's own engine is its owner's)."""
        for engine in list(self._engines.values()):
            if engine is not self.engine:
                await engine.close()
        self._engines = {self.engine.environment: self.engine}

    async def authenticate(self, token: str | None) -> Caller:
        """The caller ``token`` stands for; :class:`AuthenticationError` saying why not."""
        if not token:
            raise AuthenticationError(_MISSING)
        if looks_like_jwt(token):
            return await self._public(token)
        digest = hashlib.sha256(token.encode()).digest()
        if hmac.compare_digest(digest, self._own_hash):
            return Caller(self.engine)
        cached = self._keys.get(digest)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            environment = cached[0]
        else:
            found = await self.engine.find_key(token)
            if found is None:
                self._keys.pop(digest, None)
                raise AuthenticationError(
                    "Invalid credentials: not a secret key of any environment (or a revoked "
                    "one), and not a valid JWT public access token."
                )
            environment = found.environment
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[digest] = (environment, now + KEY_CACHE_SECONDS)
        engine = await self.engine_for(environment, known=True)
        if engine is None:  # a key always comes with its environment's signing key
            raise AuthenticationError(f"Environment {environment!r} has no signing key.")
        return Caller(engine)

    async def _public(self, token: str) -> Caller:
        environment = token_environment(token)
        engine = await self.engine_for(environment)
        if engine is None:
            raise AuthenticationError(
                f"The public access token is for another environment ({environment!r}), "
                "which this server has no key for."
            )
        claims = verify_token(token, engine.secret_key(), environment=environment)
        return Caller(engine, claims)

    async def __call__(self, request: Request) -> RealtimeContext:
        """The realtime routes' access: the token from the header or ``?token=``."""
        caller = await self.authenticate(request_token(request, query=True))
        return RealtimeContext(caller.engine, caller.grant)


def request_token(request: Request, *, query: bool = False) -> str | None:
    """``Authorization: Bearer …``; with ``query``, else ``?token=`` (``EventSource`` cannot
    send headers)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if query:
        return request.query_params.get("token") or None
    return None


def _gate(request: Request) -> Gatekeeper:
    gate: Gatekeeper = request.app.state.gatekeeper
    return gate


async def secret_caller(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Security(_bearer),  # noqa: B008
) -> Caller:
    """Dependency of the secret-key routes: a public access token is 403 here."""
    caller = await _gate(request).authenticate(request_token(request))
    if caller.claims is not None:
        raise ForbiddenError(
            f"{request.method} {request.url.path} needs a secret key; a public access token "
            "cannot call it."
        )
    return caller


async def public_caller(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Security(_bearer),  # noqa: B008
) -> Caller:
    """Dependency of the routes a public access token may call (each checks the scope)."""
    return await _gate(request).authenticate(request_token(request))
