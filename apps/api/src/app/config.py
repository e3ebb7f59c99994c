"""The API's settings, read per request from the process environment or the Worker's bindings.

Under ``shipyard dev`` (uvicorn) the values come from ``os.environ``; on Cloudflare Workers the
runtime's ASGI adapter puts the bindings (``[vars]`` and secrets) in ``request.scope["env"]``
and they are read from there. Both key formats are accepted: the legacy JWT keys
(``SUPABASE_ANON_KEY``/``SUPABASE_SERVICE_ROLE_KEY``) and the new ones
(``SUPABASE_PUBLISHABLE_KEY``/``SUPABASE_SECRET_KEY``); the new names win when both are set.

A value left from ``.env.example`` (``<your_supabase_url>``, ``changeme``, …, recognised by
``shipyard check-envs``' own rules) counts as *not set*: one warning line names such variables,
once per process, and the API behaves as if they were absent — a placeholder is never a key.

``APP_ENV`` (else ``SHIPYARD_ENVIRONMENT``) is the environment. It has no default: only an
explicit ``development`` lets requests through without verifying who sends them
(:mod:`app.auth`); ``shipyard dev`` sets it for the API it serves.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from shipyard.tooling.placeholders import placeholder_reason

log = logging.getLogger("app.config")
DEFAULT_DB_TEST_TIMEOUT = 5.0
DEVELOPMENT = "development"
AUTH_PATH = "/auth/v1"
JWKS_PATH = f"{AUTH_PATH}/.well-known/jwks.json"

# Every name the API reads; a placeholder in any of them is treated as unset.
READ_NAMES = (
    "SUPABASE_URL",
    "SUPABASE_PUBLISHABLE_KEY",
    "SUPABASE_ANON_KEY",
    "SUPABASE_SECRET_KEY",
    "SUPABASE_SERVICE_ROLE_KEY",
    "SUPABASE_JWT_SECRET",
    "APP_ENV",
    "SHIPYARD_ENVIRONMENT",
    "DB_TEST_TIMEOUT",
)
_warned: set[str] = set()
_warned_lock = threading.Lock()


@dataclass(frozen=True)
class AppConfig:
    """What the API needs to reach Supabase and verify users. Keys never appear in ``repr``."""

    supabase_url: str | None = None
    public_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    jwt_secret: str | None = field(default=None, repr=False)
    environment: str | None = None
    db_test_timeout: float = DEFAULT_DB_TEST_TIMEOUT

    @property
    def supabase_configured(self) -> bool:
        """True when the URL and a public key are set (enough for RLS-bound requests)."""
        return bool(self.supabase_url and self.public_key)

    @property
    def development(self) -> bool:
        """True only for an explicit ``APP_ENV=development`` (or ``SHIPYARD_ENVIRONMENT``)."""
        return self.environment == DEVELOPMENT

    @property
    def issuer(self) -> str | None:
        """The ``iss`` of the project's access tokens: ``{SUPABASE_URL}/auth/v1``."""
        return f"{self.supabase_url}{AUTH_PATH}" if self.supabase_url else None

    @property
    def jwks_url(self) -> str | None:
        """Where the project publishes its signing keys (ES256/RS256)."""
        return f"{self.supabase_url}{JWKS_PATH}" if self.supabase_url else None

    @property
    def can_verify(self) -> bool:
        """True when user tokens can be verified: a JWKS (the URL) or the legacy JWT secret."""
        return bool(self.supabase_url or self.jwt_secret)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> AppConfig:
        """Build the settings from env-like ``values``; placeholders count as unset."""

        def get(*names: str) -> str | None:
            for name in names:
                value = values.get(name)
                if value is None or not str(value).strip():
                    continue
                if placeholder_reason(str(value)) is None:
                    return str(value).strip()
            return None

        timeout = get("DB_TEST_TIMEOUT")
        config = cls(
            supabase_url=(get("SUPABASE_URL") or "").rstrip("/") or None,
            public_key=get("SUPABASE_PUBLISHABLE_KEY", "SUPABASE_ANON_KEY"),
            secret_key=get("SUPABASE_SECRET_KEY", "SUPABASE_SERVICE_ROLE_KEY"),
            jwt_secret=get("SUPABASE_JWT_SECRET"),
            environment=get("APP_ENV", "SHIPYARD_ENVIRONMENT"),
            db_test_timeout=float(timeout) if timeout else DEFAULT_DB_TEST_TIMEOUT,
        )
        # Every name is checked, not only the slot that won, so one line names them all.
        warn_placeholders(
            [
                name
                for name in READ_NAMES
                if str(values.get(name) or "").strip()
                and placeholder_reason(str(values.get(name))) is not None
            ]
        )
        return config


def warn_placeholders(names: list[str]) -> None:
    """Log one warning line naming placeholder variables not reported before (never values)."""
    with _warned_lock:
        new = sorted(set(names) - _warned)
        _warned.update(new)
    if new:
        log.warning(
            "placeholder values treated as unset (copied from .env.example?): %s",
            ", ".join(new),
        )


class _Bindings(Mapping[str, Any]):
    """A Workers ``env`` object (attribute access) seen as a read-only mapping."""

    def __init__(self, env: Any) -> None:
        self._env = env

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self._env, key)
        except AttributeError:
            raise KeyError(key) from None

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def get_config(request: Request) -> AppConfig:
    """FastAPI dependency: the Worker's bindings when present, else the process environment."""
    env = request.scope.get("env")
    return AppConfig.from_mapping(_Bindings(env) if env is not None else os.environ)
