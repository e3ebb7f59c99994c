"""Fixtures for the API tests: the app over ASGI, a fake Supabase on real loopback HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from api_support import FakeSupabase, serve_fake_supabase


@pytest.fixture
def fake_supabase() -> Iterator[FakeSupabase]:
    """A fake Supabase on a real 127.0.0.1 port, for the duration of one test."""
    with serve_fake_supabase() as state:
        yield state


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No Supabase or auth variables from the developer's shell leak into a test."""
    for name in (
        "SUPABASE_URL",
        "SUPABASE_ANON_KEY",
        "SUPABASE_PUBLISHABLE_KEY",
        "SUPABASE_SERVICE_ROLE_KEY",
        "SUPABASE_SECRET_KEY",
        "SUPABASE_JWT_SECRET",
        "APP_ENV",
        "SHIPYARD_ENVIRONMENT",
        "DB_TEST_TIMEOUT",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
async def client(clean_env: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client bound to the API app in this process."""
    from app.main import app

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        yield http
