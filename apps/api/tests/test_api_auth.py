"""Auth against today's Supabase: real ES256/RS256 keys behind a real local JWKS endpoint, the
legacy HS256 secret, and closed-by-default behaviour when nothing can verify a token.

Protected requests go to ``GET /notes`` (the fake Supabase answers it), so a 200 means the
token was accepted and the call went through as that user.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from api_support import (
    ANON_KEY,
    JWT_SECRET,
    FakeSupabase,
    SigningKey,
    free_port,
    user_token,
)
from app.jwks import JwksCache, jwks_cache

ALICE = "11111111-1111-4111-8111-111111111111"


@pytest.fixture
def project(clean_env: pytest.MonkeyPatch, fake_supabase: FakeSupabase) -> FakeSupabase:
    """The API configured for the fake project (URL + publishable key), production mode."""
    clean_env.setenv("SUPABASE_URL", fake_supabase.url)
    clean_env.setenv("SUPABASE_PUBLISHABLE_KEY", ANON_KEY)
    clean_env.setenv("APP_ENV", "production")
    fake_supabase.notes = [{"id": "n-1", "title": "mine", "body": "", "created_at": "t"}]
    return fake_supabase


async def notes(client: httpx.AsyncClient, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.get("/notes", headers=headers)


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
async def test_asymmetric_token_verified_against_the_jwks(
    client: httpx.AsyncClient, project: FakeSupabase, algorithm: str
) -> None:
    key = SigningKey.generate("key-1", algorithm)
    project.publish(key)
    token = key.sign(ALICE, issuer=project.issuer)
    response = await notes(client, token)
    assert response.status_code == 200, response.text
    # The caller's own token went on to Supabase: RLS sees Alice.
    assert project.last("/rest/v1/notes").headers["authorization"] == f"Bearer {token}"
    # Cached by kid: a second request does not fetch the keys again.
    assert (await notes(client, token)).status_code == 200
    assert project.jwks_fetches() == 1


async def test_hs256_with_the_legacy_secret(
    client: httpx.AsyncClient, project: FakeSupabase, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("SUPABASE_JWT_SECRET", JWT_SECRET)
    response = await notes(client, user_token(ALICE, iss=project.issuer))
    assert response.status_code == 200, response.text
    assert project.jwks_fetches() == 0  # HS256 needs no keys


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("expired", "has expired"),
        ("wrong_audience", "InvalidAudienceError"),
        ("wrong_issuer", "InvalidIssuerError"),
        ("no_issuer", "MissingRequiredClaimError"),
        ("bad_signature", "InvalidSignatureError"),
        ("unknown_key", "signed by a key the project does not have"),
        ("not_a_jwt", "DecodeError"),
        ("hs256_without_secret", "SUPABASE_JWT_SECRET is not set"),
        ("alg_none", "is not accepted"),
        ("header_alg_swapped", "InvalidAlgorithmError"),
        ("missing", "Missing bearer token"),
    ],
)
async def test_bad_tokens_are_401(
    client: httpx.AsyncClient, project: FakeSupabase, case: str, message: str
) -> None:
    key = SigningKey.generate("key-1")
    rsa_key = SigningKey.generate("rsa-1", "RS256")
    project.publish(key, rsa_key)
    stranger = SigningKey.generate("key-1")  # same kid, another private key
    issuer = project.issuer
    tokens = {
        "expired": key.sign(ALICE, issuer=issuer, expires_in=-60),
        "wrong_audience": key.sign(ALICE, issuer=issuer, aud="anon"),
        "wrong_issuer": key.sign(ALICE, issuer="https://evil.supabase.co/auth/v1"),
        "no_issuer": key.sign(ALICE, issuer=issuer, iss=None),
        "bad_signature": stranger.sign(ALICE, issuer=issuer),
        "unknown_key": SigningKey.generate("key-404").sign(ALICE, issuer=issuer),
        "not_a_jwt": "not-a-jwt",
        "hs256_without_secret": user_token(ALICE, iss=issuer),
        "alg_none": _unsigned(ALICE, issuer),
        # An ES256 header on a token whose kid is the RSA key: checked with RS256, never ES256.
        "header_alg_swapped": key.sign(ALICE, issuer=issuer, kid="rsa-1"),
        "missing": None,
    }
    response = await notes(client, tokens[case])
    assert response.status_code == 401, response.text
    assert message in response.json()["error"]
    assert response.headers["www-authenticate"] == "Bearer"


def _unsigned(sub: str, issuer: str) -> str:
    import jwt

    return jwt.encode(
        {"sub": sub, "aud": "authenticated", "iss": issuer, "exp": 2**31}, None, algorithm="none"
    )


async def test_key_rotation_is_accepted_after_one_refetch(
    client: httpx.AsyncClient, project: FakeSupabase
) -> None:
    old, new = SigningKey.generate("old"), SigningKey.generate("new")
    project.publish(old)
    assert (await notes(client, old.sign(ALICE, issuer=project.issuer))).status_code == 200
    assert project.jwks_fetches() == 1
    project.publish(new)  # Supabase rotates: a new kid appears in the JWKS
    response = await notes(client, new.sign(ALICE, issuer=project.issuer))
    assert response.status_code == 200, response.text
    assert project.jwks_fetches() == 2
    # Both keys are now cached.
    assert (await notes(client, old.sign(ALICE, issuer=project.issuer))).status_code == 200
    assert (await notes(client, new.sign(ALICE, issuer=project.issuer))).status_code == 200
    assert project.jwks_fetches() == 2


async def test_a_flood_of_unknown_kids_costs_one_refetch(
    client: httpx.AsyncClient, project: FakeSupabase
) -> None:
    key = SigningKey.generate("real")
    project.publish(key)
    assert (await notes(client, key.sign(ALICE, issuer=project.issuer))).status_code == 200
    forger = SigningKey.generate("x")
    forged = [forger.sign(ALICE, issuer=project.issuer, kid=f"forged-{i}") for i in range(25)]
    answers = await asyncio.gather(*(notes(client, t) for t in forged))
    assert {a.status_code for a in answers} == {401}
    assert project.jwks_fetches() == 2  # the first unknown kid refetched; the rest waited
    # Real tokens keep working during the cooldown.
    assert (await notes(client, key.sign(ALICE, issuer=project.issuer))).status_code == 200


async def test_after_the_cooldown_an_unknown_kid_refetches_again(project: FakeSupabase) -> None:
    now = [1000.0]
    cache = JwksCache(
        f"{project.url}/auth/v1/.well-known/jwks.json", refetch_cooldown=30, clock=lambda: now[0]
    )
    key = SigningKey.generate("late")
    assert await cache.key("late") is None
    assert await cache.key("late") is None  # cooling down: not fetched again
    assert cache.fetches == 1
    project.publish(key)
    now[0] += 31
    found = await cache.key("late")
    assert found is not None and found.key_id == "late"
    assert cache.fetches == 2


async def test_stale_keys_are_refreshed_and_revoked_keys_dropped(project: FakeSupabase) -> None:
    now = [0.0]
    cache = JwksCache(
        f"{project.url}/auth/v1/.well-known/jwks.json", max_age=600, clock=lambda: now[0]
    )
    key = SigningKey.generate("k")
    project.publish(key)
    assert await cache.key("k") is not None
    project.jwks.clear()  # revoked
    now[0] += 601
    assert await cache.key("k") is None
    assert cache.fetches == 2


async def test_jwks_unreachable_is_503(
    client: httpx.AsyncClient, clean_env: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    clean_env.setenv("SUPABASE_URL", url)
    clean_env.setenv("APP_ENV", "production")
    token = SigningKey.generate("k").sign(ALICE, issuer=f"{url}/auth/v1")
    response = await notes(client, token)
    assert response.status_code == 503, response.text
    assert "could not fetch the signing keys" in response.json()["error"]
    # Cooling down: the next request is answered without trying again.
    assert (await notes(client, token)).status_code == 503
    assert jwks_cache(f"{url}/auth/v1/.well-known/jwks.json").fetches == 1


async def test_jwks_error_status_is_503(client: httpx.AsyncClient, project: FakeSupabase) -> None:
    project.jwks_status = 500
    token = SigningKey.generate("k").sign(ALICE, issuer=project.issuer)
    response = await notes(client, token)
    assert response.status_code == 503
    assert "HTTP 500" in response.json()["error"]


@pytest.mark.parametrize("app_env", [None, "production", "staging", "preview", "Development"])
async def test_nothing_to_verify_with_outside_development_is_503(
    client: httpx.AsyncClient, clean_env: pytest.MonkeyPatch, app_env: str | None
) -> None:
    if app_env is not None:
        clean_env.setenv("APP_ENV", app_env)
    token = user_token(ALICE, secret="anything-at-all-32-characters-long!")
    for headers in ({}, {"Authorization": f"Bearer {token}"}):
        response = await client.get("/notes", headers=headers)
        assert response.status_code == 503, response.text
        assert "Authentication is not configured" in response.json()["error"]


async def test_development_without_verification_lets_requests_through(
    client: httpx.AsyncClient, clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Only ``APP_ENV=development``: the caller is the dev user, or the token's unverified sub."""
    from app.auth import DEV_USER_ID, current_user
    from app.config import AppConfig
    from starlette.requests import Request

    clean_env.setenv("APP_ENV", "development")
    with caplog.at_level(logging.WARNING, logger="app.auth"):
        response = await client.get("/notes")
    # Past auth: the route itself says Supabase is not configured.
    assert response.status_code == 503
    assert "Supabase is not configured" in response.json()["error"]
    assert "accepting an unverified request" in caplog.text

    def request(token: str | None) -> Request:
        headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
        return Request({"type": "http", "headers": headers})

    config = AppConfig(environment="development")
    anonymous = await current_user(request(None), config)
    assert (anonymous.id, anonymous.verified) == (DEV_USER_ID, False)
    forged = await current_user(
        request(user_token(ALICE, secret="whatever-whatever-whatever-32-chars")), config
    )
    assert (forged.id, forged.verified) == (ALICE, False)


async def test_development_with_a_project_still_verifies(
    client: httpx.AsyncClient, project: FakeSupabase, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("APP_ENV", "development")
    response = await notes(client, user_token(ALICE, secret="forged-forged-forged-forged-32ch"))
    assert response.status_code == 401
    key = SigningKey.generate("dev")
    project.publish(key)
    assert (await notes(client, key.sign(ALICE, issuer=project.issuer))).status_code == 200
