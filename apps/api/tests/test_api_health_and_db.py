"""``GET /`` and ``GET /db-test``: health text, and a real request to a (fake) Supabase."""

from __future__ import annotations

import logging

import httpx
import pytest
from api_support import ANON_KEY, FakeSupabase


async def test_health_answers_text(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.text == "AI start!"
    assert response.headers["content-type"].startswith("text/plain")


async def test_db_test_not_configured(client: httpx.AsyncClient) -> None:
    response = await client.get("/db-test")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "not_configured"
    assert "SUPABASE_URL" in body["message"]


async def test_db_test_connected_sends_the_key_as_apikey_only(
    client: httpx.AsyncClient,
    clean_env: pytest.MonkeyPatch,
    fake_supabase: FakeSupabase,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clean_env.setenv("SUPABASE_URL", fake_supabase.url + "/")
    clean_env.setenv("SUPABASE_ANON_KEY", ANON_KEY)
    with caplog.at_level(logging.DEBUG):
        response = await client.get("/db-test")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "connected"
    assert body["latency_ms"] >= 0
    sent = fake_supabase.last("/auth/v1/health")
    assert sent.method == "GET"
    assert sent.headers["apikey"] == ANON_KEY
    assert ANON_KEY not in sent.query
    assert ANON_KEY not in response.text
    assert ANON_KEY not in caplog.text


@pytest.mark.parametrize(("status", "hint"), [(401, "check the API key"), (503, "HTTP 503")])
async def test_db_test_reports_an_error_status_as_502(
    client: httpx.AsyncClient,
    clean_env: pytest.MonkeyPatch,
    fake_supabase: FakeSupabase,
    caplog: pytest.LogCaptureFixture,
    status: int,
    hint: str,
) -> None:
    clean_env.setenv("SUPABASE_URL", fake_supabase.url)
    clean_env.setenv("SUPABASE_PUBLISHABLE_KEY", ANON_KEY)
    fake_supabase.health_status = status
    with caplog.at_level(logging.DEBUG):
        response = await client.get("/db-test")
    assert response.status_code == 502
    assert response.json()["status"] == "error"
    assert hint in response.json()["message"]
    assert ANON_KEY not in response.text and ANON_KEY not in caplog.text


async def test_db_test_times_out(
    client: httpx.AsyncClient,
    clean_env: pytest.MonkeyPatch,
    fake_supabase: FakeSupabase,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clean_env.setenv("SUPABASE_URL", fake_supabase.url)
    clean_env.setenv("SUPABASE_ANON_KEY", ANON_KEY)
    clean_env.setenv("DB_TEST_TIMEOUT", "0.2")
    fake_supabase.delay = 2.0
    with caplog.at_level(logging.DEBUG):
        response = await client.get("/db-test")
    assert response.status_code == 502
    assert response.json() == {
        "status": "error",
        "message": "Supabase did not answer within 0.2 s.",
    }
    assert ANON_KEY not in caplog.text


async def test_db_test_unreachable(
    client: httpx.AsyncClient, clean_env: pytest.MonkeyPatch
) -> None:
    from api_support import free_port

    clean_env.setenv("SUPABASE_URL", f"http://127.0.0.1:{free_port()}")
    clean_env.setenv("SUPABASE_ANON_KEY", ANON_KEY)
    response = await client.get("/db-test")
    assert response.status_code == 502
    assert response.json()["message"] == "Could not reach Supabase (ConnectError)."
