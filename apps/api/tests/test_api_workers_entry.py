"""``src/entry.py`` and ``wrangler.jsonc``: the Cloudflare Python Worker wiring.

The Workers runtime (its ``workers`` module) exists only on Cloudflare; here a stand-in with
the same two names records what the entry point hands to the ASGI adapter.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

API_ROOT = Path(__file__).resolve().parents[1]


async def test_entry_hands_requests_and_bindings_to_the_fastapi_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[Any, Any, Any]] = []

    class WorkerEntrypoint:
        def __init__(self, env: Any) -> None:
            self.env = env

    async def fetch(app: Any, request: Any, env: Any) -> str:
        calls.append((app, request, env))
        return "response"

    runtime = types.ModuleType("workers")
    runtime.WorkerEntrypoint = WorkerEntrypoint  # type: ignore[attr-defined]
    runtime.asgi = types.SimpleNamespace(fetch=fetch)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "workers", runtime)
    spec = importlib.util.spec_from_file_location("worker_entry", API_ROOT / "src" / "entry.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    from app.main import app

    env = types.SimpleNamespace(SUPABASE_URL="https://x.supabase.co")
    assert await module.Default(env).fetch("request") == "response"
    assert calls == [(app, "request", env)]


async def test_entry_points_shipyard_at_the_engine_from_the_bindings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bindings are not environment variables: the entry hands the engine's URL and key to
    Shipyard, so the report routes trigger over HTTP on Workers."""
    from shipyard.client import RemoteClient
    from shipyard.sdk.backend import current_backend, set_client

    async def fetch(app: Any, request: Any, env: Any) -> Any:
        return current_backend()

    class WorkerEntrypoint:
        def __init__(self, env: Any) -> None:
            self.env = env

    runtime = types.ModuleType("workers")
    runtime.WorkerEntrypoint = WorkerEntrypoint  # type: ignore[attr-defined]
    runtime.asgi = types.SimpleNamespace(fetch=fetch)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "workers", runtime)
    monkeypatch.delenv("SHIPYARD_API_URL", raising=False)
    spec = importlib.util.spec_from_file_location("worker_entry2", API_ROOT / "src" / "entry.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    key = "sk_preview_" + "k" * 40
    env = types.SimpleNamespace(
        SHIPYARD_API_URL="https://engine.example.com/", SHIPYARD_SECRET_KEY=key
    )
    try:
        backend = await module.Default(env).fetch("request")
        assert isinstance(backend, RemoteClient)
        assert backend.api_url == "https://engine.example.com"
        # The same bindings again: the same client, not a new one per request.
        assert await module.Default(env).fetch("request") is backend
    finally:
        set_client(None)


def test_wrangler_config_points_at_the_python_entry() -> None:
    text = (API_ROOT / "wrangler.jsonc").read_text()
    config = json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.MULTILINE))
    assert config["name"] == "api"
    assert config["main"] == "src/entry.py"
    assert (API_ROOT / config["main"]).is_file()
    assert "python_workers" in config["compatibility_flags"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", config["compatibility_date"])
    assert config["observability"]["logs"]["enabled"] is True


async def test_config_is_read_from_worker_bindings(monkeypatch: pytest.MonkeyPatch) -> None:
    """On Workers, settings come from ``scope["env"]`` (bindings), not the process env."""
    import httpx
    from app.main import app

    monkeypatch.delenv("SUPABASE_URL", raising=False)
    bindings = types.SimpleNamespace(SUPABASE_URL="http://127.0.0.1:9", SUPABASE_ANON_KEY="k" * 40)

    async def with_env(scope: Any, receive: Any, send: Any) -> None:
        await app({**scope, "env": bindings}, receive, send)

    transport = httpx.ASGITransport(app=with_env)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        response = await client.get("/db-test")
    # Configured from the bindings: it tried to connect (and port 9 refuses).
    assert response.status_code == 502
    assert response.json()["status"] == "error"
