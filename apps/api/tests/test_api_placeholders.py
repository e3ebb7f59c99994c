"""``cp .env.example .env`` behaves exactly like no ``.env``: placeholders are never settings.

The example file's values (``<your_supabase_jwt_secret>``…) used to be taken for real: every
protected route answered 401 (tokens were checked against the placeholder string) and
``/db-test`` 502 (it called ``<your_supabase_project_url>``). Here the app sees the example's
values in its environment and must answer every request as it does with none of them set.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import user_token

from shipyard.tooling.dotenv import parse_dotenv

EXAMPLE = Path(__file__).resolve().parents[3] / ".env.example"
TOKEN = user_token("11111111-1111-4111-8111-111111111111")
REQUESTS: list[tuple[str, str, dict[str, Any] | None, str | None]] = [
    ("GET", "/", None, None),
    ("GET", "/db-test", None, None),
    ("GET", "/notes", None, None),
    ("GET", "/notes", None, TOKEN),
    ("POST", "/notes", {"title": "x"}, TOKEN),
    ("POST", "/reports", {"title": "x", "rows": []}, TOKEN),
]


async def answers(client: httpx.AsyncClient) -> list[tuple[int, str]]:
    seen = []
    for method, path, body, token in REQUESTS:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await client.request(method, path, json=body, headers=headers)
        seen.append((response.status_code, response.text))
    return seen


@pytest.mark.parametrize("app_env", [None, "development", "production"])
async def test_example_env_answers_like_no_env(
    client: httpx.AsyncClient,
    clean_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    app_env: str | None,
) -> None:
    if app_env:
        clean_env.setenv("APP_ENV", app_env)
    without = await answers(client)
    example = parse_dotenv(EXAMPLE.read_text()).values
    assert example["SUPABASE_JWT_SECRET"].startswith("<")
    for name, value in example.items():
        clean_env.setenv(name, value)
    import app.config

    app.config._warned.clear()
    with caplog.at_level(logging.WARNING, logger="app.config"):
        with_example = await answers(client)
    assert with_example == without
    lines = [r.getMessage() for r in caplog.records if r.name == "app.config"]
    assert len(lines) == 1, lines  # one line per process, not one per request
    for name in ("SUPABASE_URL", "SUPABASE_JWT_SECRET", "SUPABASE_PUBLISHABLE_KEY"):
        assert name in lines[0]
    assert "<your" not in caplog.text
    # What "no .env" means for each environment.
    statuses = [status for status, _ in without]
    if app_env == "development":
        assert statuses == [200, 200, 503, 503, 503, 422]  # notes: Supabase not configured
        assert "not_configured" in without[1][1]
    else:
        assert statuses == [200, 200, 503, 503, 503, 503]  # closed: no way to verify a user
        assert "Authentication is not configured" in without[2][1]
