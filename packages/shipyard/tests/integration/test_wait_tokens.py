"""Wait tokens with a real worker on both backends: completion from another engine (another
process's view of the database), timeouts, first-output-wins, and the signed callback URL."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from test_waits import status_becomes

from shipyard import WaitpointTimeoutError, task, wait
from shipyard.config import Settings
from shipyard.engine.auth import verify_token
from shipyard.engine.engine import Engine
from shipyard.engine.waitpoints import TOKEN_PAT_TTL_S
from shipyard.errors import WaitpointNotFoundError
from shipyard.ids import new_id
from shipyard.server.app import create_app
from shipyard.store.params import WaitpointCreateParams


def approval_task(tokens: dict[str, str]) -> Any:
    @task(id="w-approval")
    async def approval(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
        token = await wait.create_token(timeout=payload.get("timeout"), tags=["approval"])
        tokens[ctx.run.id] = token.id
        result = await wait.for_token(token)
        if not result.ok:
            with pytest.raises(WaitpointTimeoutError):
                result.unwrap()
        return {
            "ok": result.ok,
            "output": result.output,
            "error": type(result.error).__name__ if result.error else None,
        }

    return approval


async def test_token_completed_elsewhere_resumes_the_run_with_the_first_data(
    engine: Engine, settings: Settings, start_worker: Callable[..., Any]
) -> None:
    tokens: dict[str, str] = {}
    approval = approval_task(tokens)
    await start_worker()
    handle = await approval.trigger({})
    await status_becomes(engine, handle.id, "WAITING")
    token_id = tokens[handle.id]
    assert token_id.startswith("waitpoint_")
    info = await wait.retrieve_token(token_id)
    assert (info.status, info.tags, info.timeout_at) == ("WAITING", ("approval",), None)
    other = Engine(settings)  # another process completing the token
    try:
        assert await wait.complete_token(token_id, {"approved": True})
        await other.complete_token(token_id, {"approved": False})  # no-op: first data wins
    finally:
        await other.close()
    run = await engine.wait_for_final(handle.id, timeout=10)
    assert json.loads(run.output or "null") == {
        "ok": True,
        "output": {"approved": True},
        "error": None,
    }
    info = await wait.retrieve_token(token_id)
    assert (info.status, info.output) == ("COMPLETED", {"approved": True})
    listed = [t async for t in wait.list_tokens(status="COMPLETED", tags=["approval"])]
    assert [t.id for t in listed] == [token_id]
    assert [t async for t in wait.list_tokens(status="WAITING")] == []


async def test_token_timeout_resolves_not_ok(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    tokens: dict[str, str] = {}
    approval = approval_task(tokens)
    await start_worker()
    handle = await approval.trigger({"timeout": "1s"})
    run = await engine.wait_for_final(handle.id, timeout=10)
    assert json.loads(run.output or "null") == {
        "ok": False,
        "output": None,
        "error": "WaitpointTimeoutError",
    }
    info = await wait.retrieve_token(tokens[handle.id])
    assert info.status == "TIMED_OUT" and isinstance(info.error, WaitpointTimeoutError)


async def test_callback_url_completes_the_token_and_rejects_a_wrong_signature(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    tokens: dict[str, str] = {}
    approval = approval_task(tokens)
    await start_worker()
    handle = await approval.trigger({})
    await status_becomes(engine, handle.id, "WAITING")
    token = await wait.retrieve_token(tokens[handle.id])
    path = token.url.split("://", 1)[1].split("/", 1)[1]
    transport = httpx.ASGITransport(app=create_app(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        bad = path.rsplit("/", 1)[0] + "/" + "0" * 64
        response = await client.post(f"/{bad}", json={"hacked": True})
        assert response.status_code == 401
        assert (await wait.retrieve_token(token.id)).status == "WAITING"
        response = await client.post(f"/{path}", json={"via": "callback"})
        assert response.status_code == 200 and response.json() == {"success": True}
    run = await engine.wait_for_final(handle.id, timeout=10)
    assert json.loads(run.output or "null")["output"] == {"via": "callback"}


async def test_callback_with_an_empty_body_completes_with_an_empty_object(
    engine: Engine,
) -> None:
    token = await wait.create_token()
    assert not token.is_cached and token.public_access_token
    transport = httpx.ASGITransport(app=create_app(engine))
    path = "/" + token.url.split("://", 1)[1].split("/", 1)[1]
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        assert (await client.post(path)).status_code == 200
    info = await wait.retrieve_token(token.id)
    assert (info.status, info.output) == ("COMPLETED", {})
    again = await wait.create_token(idempotency_key="same")
    cached = await wait.create_token(idempotency_key="same")
    assert cached.id == again.id and cached.is_cached


async def test_a_tokens_access_token_is_signed_on_first_read_with_its_creation_claims(
    engine: Engine,
) -> None:
    before = int(time.time())
    token = await wait.create_token()
    after = int(time.time())
    assert token._token is None  # not signed yet: most tokens are only waited for
    signed = token.public_access_token
    assert token.public_access_token == signed  # signed once
    claims = verify_token(signed, engine.secret_key(), environment=engine.environment)
    assert claims.scopes == (f"write:waitpoints:{token.id}",)
    assert before + TOKEN_PAT_TTL_S <= claims.expires_at <= after + TOKEN_PAT_TTL_S


async def test_waiting_for_an_unknown_token_or_a_non_token_fails_at_once(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    """wait.for_token reads the token with its recorded-call lookup (one round trip): an id
    that names no token, or a waitpoint that is not a token (a wait.until's), fails the call
    before anything is suspended; a good token after them still waits."""
    seen: list[str] = []

    @task(id="w-unknown-token", retry={"max_attempts": 1})
    async def unknown(payload: None) -> list[str]:
        try:
            await wait.for_token("waitpoint_nope")
        except WaitpointNotFoundError as exc:
            seen.append(str(exc))
        date = await engine.store.waitpoint_create(
            WaitpointCreateParams(
                id=new_id("waitpoint"),
                environment=engine.environment,
                kind="DATETIME",
                now=engine.now(),
                completes_at=engine.now() + 60_000,
            )
        )
        try:
            await wait.for_token(date[0].id)
        except WaitpointNotFoundError as exc:
            seen.append(str(exc))
        token = await wait.create_token()
        await wait.complete_token(token, {"fine": 1})
        return [*seen, str((await wait.for_token(token)).output)]

    await start_worker()
    handle = await unknown.trigger(None)
    run = await engine.wait_for_final(handle.id, timeout=10)
    assert run.status == "COMPLETED", run.error
    first, second, last = json.loads(run.output or "[]")
    assert "waitpoint_nope not found" in first and "not found" in second
    assert last == "{'fine': 1}"
