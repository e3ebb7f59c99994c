"""``shipyard keys create|list|revoke``: the key is printed once and works against the server
at once; a revoked key is refused; bad input is one line with exit code 2 (not found: 1)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from http_support import bearer
from typer.testing import CliRunner

from shipyard.cli.main import app as cli
from shipyard.config import load_settings
from shipyard.engine.engine import Engine
from shipyard.server.app import create_app


async def status_with(root: Path, key: str) -> int:
    engine = Engine(load_settings(project_root=root, secret_key="d" * 40))
    await engine.start()
    try:
        transport = httpx.ASGITransport(app=create_app(engine))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            return (await http.get("/api/v1/runs", headers=bearer(key))).status_code
    finally:
        await engine.close()


def test_keys_create_list_revoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHIPYARD_PROJECT_ROOT", str(tmp_path))
    monkeypatch.setenv("SHIPYARD_DATABASE_URL", f"sqlite:///{tmp_path / 'keys.db'}")
    runner = CliRunner()

    made = runner.invoke(cli, ["keys", "create", "--env", "production", "--name", "ci", "--json"])
    assert made.exit_code == 0, made.output
    created = json.loads(made.output)
    assert created["key"].startswith("sk_prod_") and created["environment"] == "production"
    assert created["prefix"] == created["key"][: len(created["prefix"])]
    text = runner.invoke(cli, ["keys", "create", "--env", "preview/feature-x"])
    assert text.exit_code == 0 and "sk_preview_" in text.output and "shown this once" in text.output

    listed = runner.invoke(cli, ["keys", "list", "--json"])
    keys = json.loads(listed.output)
    assert [k["environment"] for k in keys] == ["production", "preview/feature-x"]
    assert all("key" not in k for k in keys)  # never the key again
    assert created["key"] not in listed.output
    only = json.loads(runner.invoke(cli, ["keys", "list", "--env", "production", "--json"]).output)
    assert [k["id"] for k in only] == [created["id"]]
    table = runner.invoke(cli, ["keys", "list"])
    assert created["id"] in table.output and created["key"] not in table.output

    assert asyncio.run(status_with(tmp_path, created["key"])) == 200
    revoked = runner.invoke(cli, ["keys", "revoke", created["id"], "--json"])
    assert revoked.exit_code == 0 and json.loads(revoked.output)["revoked_at"]
    assert asyncio.run(status_with(tmp_path, created["key"])) == 401

    missing = runner.invoke(cli, ["keys", "revoke", "key_nope"])
    assert missing.exit_code == 1 and "not found" in missing.output
    bad = runner.invoke(cli, ["keys", "create", "--env", "no spaces"])
    assert bad.exit_code == 2 and "Invalid environment" in bad.output
