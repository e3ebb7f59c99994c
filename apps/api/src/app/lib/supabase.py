"""Supabase clients: the seed's ``createSupabaseClient`` and ``createSupabaseAdminClient``.

* :func:`create_supabase_client` — per request, with the public key (``sb_publishable_…`` or the
  legacy anon JWT) as ``apikey`` and the caller's access token as ``Authorization``, so Postgres
  sees ``auth.uid()`` = the caller and row-level security applies. Without a token it acts as
  ``anon``.
* :func:`create_supabase_admin_client` — with the secret key (``sb_secret_…`` or the legacy
  service_role JWT); it bypasses row-level security. Server only: never return its results
  unfiltered to a caller, never ship the key to a browser.

Both keep no session (a server has no user to remember) and never refresh tokens.

Example::

    supabase = await create_supabase_client(config, user.access_token)
    notes = await supabase.table("notes").select("*").execute()
"""

from __future__ import annotations

from app.config import AppConfig
from supabase import AsyncClient, AsyncClientOptions, acreate_client

DEFAULT_TIMEOUT = 10


class SupabaseNotConfiguredError(RuntimeError):
    """The URL or the key a client needs is not set."""


def _options(authorization: str | None, timeout: int) -> AsyncClientOptions:
    headers = {"Authorization": f"Bearer {authorization}"} if authorization else {}
    return AsyncClientOptions(
        headers=headers,
        auto_refresh_token=False,
        persist_session=False,
        postgrest_client_timeout=timeout,
    )


async def create_supabase_client(
    config: AppConfig, access_token: str | None = None, *, timeout: int = DEFAULT_TIMEOUT
) -> AsyncClient:
    """A client acting as the caller (``access_token``) or as ``anon``; RLS applies."""
    if not config.supabase_url or not config.public_key:
        raise SupabaseNotConfiguredError(
            "Set SUPABASE_URL and SUPABASE_PUBLISHABLE_KEY (or SUPABASE_ANON_KEY)."
        )
    return await acreate_client(
        config.supabase_url, config.public_key, _options(access_token, timeout)
    )


async def create_supabase_admin_client(
    config: AppConfig, *, timeout: int = DEFAULT_TIMEOUT
) -> AsyncClient:
    """A client with the secret key: it bypasses row-level security (server only)."""
    if not config.supabase_url or not config.secret_key:
        raise SupabaseNotConfiguredError(
            "Set SUPABASE_URL and SUPABASE_SECRET_KEY (or SUPABASE_SERVICE_ROLE_KEY)."
        )
    return await acreate_client(
        config.supabase_url, config.secret_key, _options(config.secret_key, timeout)
    )
