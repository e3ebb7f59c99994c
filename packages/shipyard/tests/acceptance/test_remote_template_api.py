"""The template's API (``apps/api``) deployed as it runs on Cloudflare: no engine database,
only ``SHIPYARD_API_URL`` and ``SHIPYARD_SECRET_KEY``. Served by uvicorn in its own process
against a real engine server and worker: ``POST /reports`` triggers ``generate-report`` over
HTTP, the worker runs it, ``GET /reports/{id}`` reads the finished report back."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import pytest
from acceptance_support import REPO_ROOT, Procs, clean_env, free_port, wait_until
from remote_support import SECRET_KEY, start_remote_engine, url_project

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


async def test_the_api_app_triggers_and_reads_reports_over_http(
    tmp_path: Path, procs: Procs, database_url: str
) -> None:
    project = url_project(tmp_path / "engine", procs, database_url)
    tasks = (REPO_ROOT / "trigger" / "reports.py").read_text(encoding="utf-8")
    remote = await start_remote_engine(project, tasks=tasks)

    edge = tmp_path / "edge"  # the Worker: no project, no database
    edge.mkdir()
    port = free_port()
    api = procs.spawn(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--app-dir",
            str(REPO_ROOT / "apps" / "api" / "src"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=clean_env(
            APP_ENV="development",  # no Supabase here: the development user
            SHIPYARD_API_URL=remote.url,
            SHIPYARD_SECRET_KEY=SECRET_KEY,
        ),
        cwd=edge,
        name="api",
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if not api.alive():
            raise AssertionError(f"the API exited:\n{api.output()[-4000:]}")
        try:
            return httpx.get(base + "/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    await wait_until(up, timeout=60, what="the API", context=procs.dump)
    body = {"title": "Q1", "rows": [{"label": "a", "value": 1}, {"label": "b", "value": 3}]}
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        created = await http.post("/reports", json=body)
        assert created.status_code == 202, created.text
        report_id = created.json()["id"]
        assert report_id.startswith("run_")
        assert created.json()["public_access_token"].count(".") == 2
        report: dict[str, object] = {}
        for _ in range(600):
            got = await http.get(f"/reports/{report_id}")
            assert got.status_code == 200, got.text
            report = got.json()
            if report["status"] == "COMPLETED":
                break
            await asyncio.sleep(0.05)
        assert report["status"] == "COMPLETED", report
        output = report["output"]
        assert isinstance(output, dict) and output["title"] == "Q1"
        assert output["overall"]["sum"] == 4
        assert report["metadata"] == {"stage": "done", "progress": 1.0, "groups": 2, "current": "b"}
        missing = await http.get("/reports/run_doesnotexist")
        assert missing.status_code == 404
    assert not (edge / ".shipyard").exists(), "the API opened a database of its own"
