"""The example feature end to end: ``POST /reports`` triggers a real Shipyard run that a real
in-process worker executes on a real SQLite file; ``GET /reports/{id}`` follows it to COMPLETED.
Also: who may call these routes (bearer tokens verified with ``SUPABASE_JWT_SECRET``).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from api_support import JWT_SECRET, user_token

import shipyard
from shipyard.engine.definitions import default_definitions
from shipyard.engine.registry import get_engine, set_engine
from shipyard.worker.worker import Worker

REPO_ROOT = Path(__file__).resolve().parents[3]
ALICE = "11111111-1111-4111-8111-111111111111"
BOB = "22222222-2222-4222-8222-222222222222"
OTHER_SECRET = "another-secret-that-is-32-characters-or-more"
ROWS = [
    {"label": "north", "value": 10},
    {"label": "south", "value": 4},
    {"label": "north", "value": 30},
    {"label": "east", "value": 7.5},
]


def _define_report_task() -> None:
    """Import trigger/reports.py as the worker would (re-import if the registry was reset)."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    module = importlib.import_module("trigger.reports")
    if default_definitions().task("generate-report") is None:
        importlib.reload(module)


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[Worker]:
    """Shipyard on a fresh SQLite file, with the template's report task and a worker."""
    shipyard.configure(
        project_root=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'shipyard.db'}",
        heartbeat_interval=0.2,
        poll_interval=0.05,
    )
    _define_report_task()
    engine = get_engine()
    await engine.start()
    running = Worker(engine)
    await running.start()
    yield running
    await running.stop(grace=0)
    await engine.close()
    set_engine(None)


def auth(sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {user_token(sub)}"}


async def poll_report(
    client: httpx.AsyncClient, run_id: str, headers: dict[str, str], timeout: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(f"/reports/{run_id}", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in ("COMPLETED", "FAILED", "CRASHED", "SYSTEM_FAILURE", "CANCELED"):
            return body
        assert time.monotonic() < deadline, f"report still {body['status']}: {body}"
        await asyncio.sleep(0.05)


async def test_report_is_generated_by_a_shipyard_task(
    client: httpx.AsyncClient, clean_env: pytest.MonkeyPatch, worker: Worker
) -> None:
    clean_env.setenv("SUPABASE_JWT_SECRET", JWT_SECRET)
    created = await client.post(
        "/reports", json={"title": "Sales", "rows": ROWS}, headers=auth(ALICE)
    )
    assert created.status_code == 202, created.text
    body = created.json()
    run_id = body["id"]
    assert run_id.startswith("run_")
    assert body["status_url"] == f"/reports/{run_id}"
    token_claims = jwt.decode(body["public_access_token"], options={"verify_signature": False})
    assert any(run_id in scope for scope in token_claims["scopes"]), token_claims

    done = await poll_report(client, run_id, auth(ALICE))
    assert done["status"] == "COMPLETED", done
    assert done["metadata"]["stage"] == "done"
    assert done["metadata"]["progress"] == 1.0
    assert done["metadata"]["groups"] == 3
    report = done["output"]
    assert report["title"] == "Sales"
    assert report["overall"]["count"] == 4
    assert report["overall"]["sum"] == 51.5
    assert [s["label"] for s in report["sections"]] == ["east", "north", "south"]
    north = report["sections"][1]
    assert north == {
        "label": "north",
        "count": 2,
        "sum": 40.0,
        "mean": 20.0,
        "min": 10.0,
        "max": 30.0,
        "median": 20.0,
    }
    run = await shipyard.runs.retrieve(run_id)
    assert run.task_identifier == "generate-report"
    assert f"user_{ALICE}" in run.tags


async def test_another_user_cannot_read_the_report(
    client: httpx.AsyncClient, clean_env: pytest.MonkeyPatch, worker: Worker
) -> None:
    clean_env.setenv("SUPABASE_JWT_SECRET", JWT_SECRET)
    created = await client.post("/reports", json={"title": "x", "rows": ROWS}, headers=auth(ALICE))
    run_id = created.json()["id"]
    response = await client.get(f"/reports/{run_id}", headers=auth(BOB))
    assert response.status_code == 404
    assert (await client.get("/reports/run_doesnotexist", headers=auth(ALICE))).status_code == 404


async def test_invalid_report_request_is_422(
    client: httpx.AsyncClient, clean_env: pytest.MonkeyPatch, worker: Worker
) -> None:
    clean_env.setenv("SUPABASE_JWT_SECRET", JWT_SECRET)
    response = await client.post("/reports", json={"title": "x", "rows": []}, headers=auth(ALICE))
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "Missing bearer token"),
        ({"Authorization": "Bearer not-a-jwt"}, "Invalid access token"),
        (
            {"Authorization": f"Bearer {user_token(ALICE, secret=OTHER_SECRET)}"},
            "Invalid access token (InvalidSignatureError)",
        ),
        ({"Authorization": f"Bearer {user_token(ALICE, expires_in=-60)}"}, "has expired"),
        ({"Authorization": f"Bearer {user_token(ALICE, aud='anon')}"}, "InvalidAudienceError"),
    ],
)
async def test_protected_routes_need_a_valid_supabase_token(
    client: httpx.AsyncClient, clean_env: pytest.MonkeyPatch, headers: dict[str, str], detail: str
) -> None:
    clean_env.setenv("SUPABASE_JWT_SECRET", JWT_SECRET)
    for method, path in (("POST", "/reports"), ("GET", "/reports/run_x"), ("GET", "/notes")):
        response = await client.request(
            method, path, headers=headers, json={"title": "x", "rows": ROWS}
        )
        assert response.status_code == 401, (path, response.text)
        assert detail in response.json()["error"]
        assert response.headers["www-authenticate"] == "Bearer"


async def test_development_without_jwt_secret_allows_with_a_warning(
    client: httpx.AsyncClient,
    clean_env: pytest.MonkeyPatch,
    worker: Worker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clean_env.setenv("APP_ENV", "development")
    with caplog.at_level(logging.WARNING, logger="app.auth"):
        created = await client.post("/reports", json={"title": "dev", "rows": ROWS})
    assert created.status_code == 202, created.text
    assert "accepting an unverified request" in caplog.text
    done = await poll_report(client, created.json()["id"], {})
    assert done["status"] == "COMPLETED"


async def test_outside_development_without_jwt_secret_refuses(
    client: httpx.AsyncClient, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("APP_ENV", "production")
    response = await client.post("/reports", json={"title": "x", "rows": ROWS})
    assert response.status_code == 503
    assert "not configured" in response.json()["error"]


async def test_a_report_without_a_worker_yet_is_accepted_and_waits_for_one(
    client: httpx.AsyncClient, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No worker has the task (and this process defines none): the run is accepted and waits
    as PENDING_VERSION (it used to be a 503 the user had to retry)."""
    from shipyard.engine.definitions import Definitions, use_definitions

    clean_env.setenv("APP_ENV", "development")
    with use_definitions(Definitions()):  # this process defines no task either
        shipyard.configure(project_root=tmp_path, database_url=f"sqlite:///{tmp_path / 'empty.db'}")
        try:
            response = await client.post("/reports", json={"title": "x", "rows": ROWS})
            assert response.status_code == 202, response.text
            report = await client.get(f"/reports/{response.json()['id']}")
        finally:
            await get_engine().close()
            set_engine(None)
    assert report.status_code == 200, report.text
    assert report.json()["status"] == "PENDING_VERSION"


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_non_finite_numbers_in_the_body_are_422(
    client: httpx.AsyncClient, clean_env: pytest.MonkeyPatch, worker: Worker, number: str
) -> None:
    """Regression (defect 13): Python's json accepts NaN/Infinity, and 1e400 parses to inf; the
    value reached the task payload and the request ended in a 500. Now: 422, no run."""
    clean_env.setenv("SUPABASE_JWT_SECRET", JWT_SECRET)
    body = '{"title": "x", "rows": [{"label": "a", "value": NUMBER}]}'.replace("NUMBER", number)
    response = await client.post(
        "/reports",
        content=body,
        headers={**auth(ALICE), "content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert "JSON decode error" in error
    assert "NaN, Infinity and numbers too large" in error
    assert [run async for run in shipyard.runs.list()] == []


async def test_a_body_nested_too_deeply_is_422(
    client: httpx.AsyncClient, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("SUPABASE_JWT_SECRET", JWT_SECRET)
    depth = 50_000
    response = await client.post(
        "/reports",
        content="[" * depth + "]" * depth,
        headers={**auth(ALICE), "content-type": "application/json"},
    )
    assert response.status_code == 422, response.text[:300]
    assert "nested too deeply" in response.json()["error"]
