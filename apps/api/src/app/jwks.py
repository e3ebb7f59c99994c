"""The project's signing keys: a cached JWKS (``{SUPABASE_URL}/auth/v1/.well-known/jwks.json``).

Supabase projects on asymmetric signing keys (ES256, or RS256) publish their public keys there.
:class:`JwksCache` keeps them by ``kid`` and fetches the set again

* when a token names a ``kid`` it does not hold (a key was rotated in), and
* when the set is older than ``max_age`` (a key was revoked), on the next request that needs it.

A token naming a ``kid`` that the fresh set does not have starts a *cooldown*: for
``refetch_cooldown`` seconds further unknown ``kid`` s are refused without asking Supabase
again, so a flood of made-up ``kid`` s costs one fetch, not one per request. A fetch that fails
(network, HTTP status, not a JWKS) starts the same cooldown; keys already held keep working.

Fetches use ``httpx.AsyncClient`` (the Workers runtime routes it through ``fetch``); concurrent
requests that need a fetch share one.

Example::

    cache = jwks_cache("https://abc.supabase.co/auth/v1/.well-known/jwks.json")
    key = await cache.key("a-kid")      # PyJWK, or None when the project has no such key
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

log = logging.getLogger("app.jwks")
ALGORITHMS = ("ES256", "RS256")
DEFAULT_MAX_AGE = 600.0
DEFAULT_REFETCH_COOLDOWN = 30.0
DEFAULT_TIMEOUT = 5.0
_KTY_ALGORITHM = {"EC": "ES256", "RSA": "RS256"}


class JwksUnavailableError(Exception):
    """The signing keys could not be fetched and none are held: tokens cannot be verified."""


class JwksCache:
    """One project's signing keys, by ``kid`` (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        max_age: float = DEFAULT_MAX_AGE,
        refetch_cooldown: float = DEFAULT_REFETCH_COOLDOWN,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.max_age = max_age
        self.refetch_cooldown = refetch_cooldown
        self.timeout = timeout
        self.clock = clock
        self.fetches = 0
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._cooldown_until = float("-inf")
        self._last_error: str | None = None
        # asyncio.Lock binds to the loop it first waits on; keep one per loop.
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def _fresh(self, now: float) -> bool:
        return self._fetched_at is not None and now - self._fetched_at < self.max_age

    def _cooling(self, now: float) -> bool:
        return now < self._cooldown_until

    def _loop_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """The key ``kid``, fetching the set when needed; None when the project has none.

        Raises :class:`JwksUnavailableError` when no key set could ever be fetched.
        """
        now = self.clock()
        if kid in self._keys and self._fresh(now):
            return self._keys[kid]
        async with self._loop_lock():
            now = self.clock()
            if kid in self._keys and self._fresh(now):
                return self._keys[kid]  # another request fetched it meanwhile
            known_stale = kid in self._keys
            must_fetch = self._fetched_at is None or not self._fresh(now) or not known_stale
            if must_fetch and not self._cooling(now):
                await self._refresh()
                if kid not in self._keys:
                    # An unknown kid after a fresh fetch: refuse further unknown kids for a
                    # while instead of asking Supabase once per forged token.
                    self._cooldown_until = self.clock() + self.refetch_cooldown
            if kid in self._keys:
                return self._keys[kid]
            if self._fetched_at is None and self._last_error is not None:
                raise JwksUnavailableError(self._last_error)
            return None

    async def _refresh(self) -> None:
        self.fetches += 1
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(self.url, headers={"accept": "application/json"})
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            keys = parse_jwks(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            self._last_error = f"could not fetch the signing keys ({_describe(exc)})"
            self._cooldown_until = self.clock() + self.refetch_cooldown
            log.warning("JWKS %s: %s; keeping %d known key(s)", self.url, exc, len(self._keys))
            return
        self._keys = keys
        self._fetched_at = self.clock()
        self._last_error = None
        log.info("JWKS %s: %d signing key(s)", self.url, len(keys))


def _describe(exc: Exception) -> str:
    return str(exc) if isinstance(exc, ValueError) else type(exc).__name__


def parse_jwks(document: Any) -> dict[str, jwt.PyJWK]:
    """``{kid: key}`` for the ES256/RS256 signing keys of a JWKS document.

    Keys without a ``kid``, of another type or use, or that do not parse are skipped (with a
    log line); a document that is not ``{"keys": [...]}`` raises ``ValueError``.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError('not a JWKS document ({"keys": [...]})')
    keys: dict[str, jwt.PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        algorithm = entry.get("alg") or _KTY_ALGORITHM.get(str(entry.get("kty")))
        if algorithm not in ALGORITHMS or entry.get("use", "sig") != "sig":
            continue
        try:
            keys[entry["kid"]] = jwt.PyJWK(entry, algorithm=algorithm)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
            log.warning("JWKS key %s skipped: %s", entry["kid"], exc)
    return keys


_caches: dict[str, JwksCache] = {}


def jwks_cache(url: str) -> JwksCache:
    """The process-wide cache for ``url`` (one per project URL)."""
    cache = _caches.get(url)
    if cache is None:
        cache = _caches[url] = JwksCache(url)
    return cache
