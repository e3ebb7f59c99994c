"""The API's settings, read per request from the process environment or the Worker's bindings.

Under ``shipyard dev`` (uvicorn) the values come from ``os.environ``; on Cloudflare Workers the
runtime's ASGI adapter puts the bindings (``[vars]`` and secrets) in ``request.scope["env"]``
and they are read from there. Both key formats are accepted: the legacy JWT keys
(``SUPABASE_ANON_KEY``/``SUPABASE_SERVICE_ROLE_KEY``) and the new ones
(``SUPABASE_PUBLISHABLE_KEY``/``SUPABASE_SECRET_KEY``); the new names win when both are set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

DEFAULT_DB_TEST_TIMEOUT = 5.0


@dataclass(frozen=True)
class AppConfig:
    """What the API needs to reach Supabase and verify users. Keys never appear in ``repr``."""

    supabase_url: str | None = None
    public_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    jwt_secret: str | None = field(default=None, repr=False)
    environment: str = "development"
    db_test_timeout: float = DEFAULT_DB_TEST_TIMEOUT

    @property
    def supabase_configured(self) -> bool:
        """True when the URL and a public key are set (enough for RLS-bound requests)."""
        return bool(self.supabase_url and self.public_key)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> AppConfig:
        def get(*names: str) -> str | None:
            for name in names:
                value = values.get(name)
                if value is not None and str(value).strip():
                    return str(value).strip()
            return None

        timeout = get("DB_TEST_TIMEOUT")
        return cls(
            supabase_url=(get("SUPABASE_URL") or "").rstrip("/") or None,
            public_key=get("SUPABASE_PUBLISHABLE_KEY", "SUPABASE_ANON_KEY"),
            secret_key=get("SUPABASE_SECRET_KEY", "SUPABASE_SERVICE_ROLE_KEY"),
            jwt_secret=get("SUPABASE_JWT_SECRET"),
            environment=get("APP_ENV", "SHIPYARD_ENVIRONMENT") or "development",
            db_test_timeout=float(timeout) if timeout else DEFAULT_DB_TEST_TIMEOUT,
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

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0


def get_config(request: Request) -> AppConfig:
    """FastAPI dependency: the Worker's bindings when present, else the process environment."""
    env = request.scope.get("env")
    return AppConfig.from_mapping(_Bindings(env) if env is not None else os.environ)
