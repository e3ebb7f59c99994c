"""The Supabase clients' header contract, checked on the wire against a local HTTP server.

``create_supabase_client`` must send the public key as ``apikey`` and the caller's token as
``Authorization`` (so RLS sees the caller), or act as anon without a token;
``create_supabase_admin_client`` must send the secret key in both. Both key formats (legacy
JWTs and ``sb_…`` keys) go through unchanged. ``/notes`` uses the per-request client.
"""

from __future__ import annotations

import logging

import httpx
import pytest
from api_support import ANON_KEY, JWT_SECRET, SECRET_KEY, FakeSupabase, user_token
from app.config import AppConfig
from app.lib.supabase import (
    SupabaseNotConfiguredError,
    create_supabase_admin_client,
    create_supabase_client,
)

ALICE = "11111111-1111-4111-8111-111111111111"
LEGACY_ANON = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.legacy-anon-signature"
LEGACY_SERVICE = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.legacy-service-sig"


@pytest.mark.parametrize("public_key", [ANON_KEY, LEGACY_ANON])
async def test_user_client_sends_public_key_and_the_callers_token(
    fake_supabase: FakeSupabase, public_key: str
) -> None:
    config = AppConfig(supabase_url=fake_supabase.url, public_key=public_key)
    token = user_token(ALICE)
    client = await create_supabase_client(config, token)
    await client.table("notes").select("*").execute()
    sent = fake_supabase.last("/rest/v1/notes")
    assert sent.method == "GET"
    assert sent.headers["apikey"] == public_key
    assert sent.headers["authorization"] == f"Bearer {token}"
    assert SECRET_KEY not in str(sent.headers)


async def test_user_client_without_a_token_acts_as_anon(fake_supabase: FakeSupabase) -> None:
    config = AppConfig(supabase_url=fake_supabase.url, public_key=LEGACY_ANON)
    client = await create_supabase_client(config)
    await client.table("notes").select("id").execute()
    sent = fake_supabase.last("/rest/v1/notes")
    assert sent.headers["apikey"] == LEGACY_ANON
    assert sent.headers["authorization"] == f"Bearer {LEGACY_ANON}"


@pytest.mark.parametrize("secret_key", [SECRET_KEY, LEGACY_SERVICE])
async def test_admin_client_sends_the_secret_key(
    fake_supabase: FakeSupabase, secret_key: str
) -> None:
    config = AppConfig(supabase_url=fake_supabase.url, public_key=ANON_KEY, secret_key=secret_key)
    client = await create_supabase_admin_client(config)
    await client.table("notes").select("*").execute()
    sent = fake_supabase.last("/rest/v1/notes")
    assert sent.headers["apikey"] == secret_key
    assert sent.headers["authorization"] == f"Bearer {secret_key}"
    assert ANON_KEY not in str(sent.headers)


async def test_clients_need_their_keys() -> None:
    with pytest.raises(SupabaseNotConfiguredError, match="SUPABASE_URL"):
        await create_supabase_client(AppConfig())
    with pytest.raises(SupabaseNotConfiguredError, match="SUPABASE_SECRET_KEY"):
        await create_supabase_admin_client(
            AppConfig(supabase_url="http://127.0.0.1:1", public_key=ANON_KEY)
        )


def test_config_reads_both_key_formats_and_hides_them() -> None:
    legacy = AppConfig.from_mapping(
        {
            "SUPABASE_URL": "https://x.supabase.co/",
            "SUPABASE_ANON_KEY": LEGACY_ANON,
            "SUPABASE_SERVICE_ROLE_KEY": LEGACY_SERVICE,
        }
    )
    assert legacy.supabase_url == "https://x.supabase.co"
    assert (legacy.public_key, legacy.secret_key) == (LEGACY_ANON, LEGACY_SERVICE)
    new = AppConfig.from_mapping(
        {
            "SUPABASE_ANON_KEY": LEGACY_ANON,
            "SUPABASE_PUBLISHABLE_KEY": ANON_KEY,
            "SUPABASE_SECRET_KEY": SECRET_KEY,
            "SUPABASE_JWT_SECRET": JWT_SECRET,
        }
    )
    assert (new.public_key, new.secret_key) == (ANON_KEY, SECRET_KEY)
    for secret in (ANON_KEY, SECRET_KEY, JWT_SECRET):
        assert secret not in repr(new)


async def test_notes_go_through_supabase_as_the_caller(
    client: httpx.AsyncClient,
    clean_env: pytest.MonkeyPatch,
    fake_supabase: FakeSupabase,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clean_env.setenv("SUPABASE_URL", fake_supabase.url)
    clean_env.setenv("SUPABASE_PUBLISHABLE_KEY", ANON_KEY)
    clean_env.setenv("SUPABASE_SECRET_KEY", SECRET_KEY)
    clean_env.setenv("SUPABASE_JWT_SECRET", JWT_SECRET)
    fake_supabase.notes = [{"id": "n-1", "title": "hello", "body": "", "created_at": "t"}]
    token = user_token(ALICE, iss=f"{fake_supabase.url}/auth/v1")
    headers = {"Authorization": f"Bearer {token}"}
    with caplog.at_level(logging.DEBUG):
        listed = await client.get("/notes", headers=headers)
        created = await client.post("/notes", json={"title": "new"}, headers=headers)
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"notes": fake_supabase.notes}
    assert created.status_code == 201, created.text
    assert created.json()["note"]["title"] == "new"
    gets = [r for r in fake_supabase.requests if r.path == "/rest/v1/notes"]
    assert [r.method for r in gets] == ["GET", "POST"]
    for request in gets:
        assert request.headers["apikey"] == ANON_KEY  # never the secret key
        assert request.headers["authorization"] == f"Bearer {token}"
    assert "order=created_at.desc" in gets[0].query
    for secret in (ANON_KEY, SECRET_KEY, JWT_SECRET, token):
        assert secret not in caplog.text
        assert secret not in listed.text + created.text


async def test_notes_need_supabase(
    client: httpx.AsyncClient, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("SUPABASE_JWT_SECRET", JWT_SECRET)
    response = await client.get("/notes", headers={"Authorization": f"Bearer {user_token(ALICE)}"})
    assert response.status_code == 503
