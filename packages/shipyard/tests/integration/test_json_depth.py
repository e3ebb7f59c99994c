"""JSON nested deeper than ``MAX_JSON_DEPTH`` is refused where it is written, on both backends.

Payloads, batch items, outputs, metadata (own, parent, root, trigger option) and wait token data
nested one level past the limit raise :class:`JsonTooDeepError` at the call (an output fails
the run through the normal path), and nothing is written. A value stored before the limit
existed (a 980-level payload written straight into the table) no longer crashes ``runs.list``,
``runs.retrieve`` or ``shipyard runs list/get``: it reads as a marker.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from shipyard import (
    JsonTooDeepError,
    ValidationError,
    batch,
    metadata,
    runs,
    task,
    wait,
)
from shipyard.config import Settings
from shipyard.engine.engine import Engine
from shipyard.jsonutil import MAX_JSON_DEPTH

LIMIT = MAX_JSON_DEPTH


def nested(levels: int) -> Any:
    """A value whose arrays and objects nest exactly ``levels`` deep."""
    value: Any = []
    for index in range(levels - 1):
        value = [value] if index % 2 else {"k": value}
    return value


async def _run_ids(engine: Engine) -> list[str]:
    return [r.id async for r in runs.list(limit=1000)]


def _execute(settings: Settings, sql: str, params: tuple[Any, ...]) -> None:
    """Run one statement straight on the database (``?`` placeholders)."""
    if settings.database_url.startswith("sqlite"):
        conn = sqlite3.connect(settings.sqlite_path())
        try:
            conn.execute(sql, params)
            conn.commit()
        finally:
            conn.close()
        return
    import psycopg

    from shipyard.testing.postgres import ENGINE_OPTIONS

    with psycopg.connect(settings.database_url, autocommit=True, options=ENGINE_OPTIONS) as pg:
        pg.execute(sql.replace("?", "%s"), params)


def test_the_helper_nests_exactly() -> None:
    from shipyard.jsonutil import text_depth

    assert [text_depth(json.dumps(nested(n))) for n in (1, 2, 3, LIMIT)] == [1, 2, 3, LIMIT]


async def test_trigger_one_level_too_deep_is_rejected_and_writes_nothing(engine: Engine) -> None:
    @task(id="deep-echo")
    async def echo(payload: Any) -> Any:
        return payload

    with pytest.raises(JsonTooDeepError) as info:
        await echo.trigger(nested(LIMIT + 1))
    assert isinstance(info.value, ValidationError)
    assert info.value.code == "JSON_TOO_DEEP" and info.value.context["limit"] == LIMIT
    assert str(info.value).startswith("Payload is nested too deeply")
    assert f"at most {LIMIT} levels" in str(info.value)
    with pytest.raises(JsonTooDeepError):
        await echo.batch_trigger([{"payload": 1}, {"payload": nested(LIMIT + 1)}])
    with pytest.raises(JsonTooDeepError):
        await batch.trigger([{"id": "deep-echo", "payload": nested(980)}])
    with pytest.raises(JsonTooDeepError, match="Metadata"):
        await echo.trigger(None, metadata={"deep": nested(LIMIT)})
    assert await _run_ids(engine) == []
    # At the limit is fine.
    handle = await echo.trigger(nested(LIMIT))
    assert await _run_ids(engine) == [handle.id]
    assert (await runs.retrieve(handle.id)).payload == nested(LIMIT)


async def test_an_output_too_deep_fails_the_run_with_a_clear_error(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    @task(id="deep-output", retry={"max_attempts": 1})
    async def deep_output(payload: int) -> Any:
        return nested(payload)

    await start_worker()
    ok = await deep_output.trigger(LIMIT)
    bad = await deep_output.trigger(980)
    assert (await engine.wait_for_final(ok.id, timeout=10)).status == "COMPLETED"
    record = await engine.wait_for_final(bad.id, timeout=10)
    assert record.status == "FAILED"
    run = await runs.retrieve(bad.id)
    assert run.error is not None
    assert "Output is nested too deeply" in run.error.message
    assert f"at most {LIMIT} levels" in run.error.message


async def test_metadata_too_deep_is_rejected_at_the_call(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    seen: dict[str, str] = {}

    def attempt(name: str, call: Callable[[], Any]) -> None:
        try:
            call()
        except JsonTooDeepError as exc:
            seen[name] = exc.message

    @task(id="deep-child", retry={"max_attempts": 1})
    async def child(payload: None) -> str:
        attempt("parent.set", lambda: metadata.parent.set("deep", nested(LIMIT)))
        attempt("root.append", lambda: metadata.root.append("deep", nested(LIMIT)))
        metadata.parent.set("fine", nested(LIMIT - 1))
        return "ok"

    @task(id="deep-parent", retry={"max_attempts": 1})
    async def parent(payload: None) -> str:
        attempt("set", lambda: metadata.set("deep", nested(LIMIT)))
        attempt("set path", lambda: metadata.set("$.a.b", nested(LIMIT - 1)))
        attempt("replace", lambda: metadata.replace({"deep": nested(LIMIT)}))
        attempt("set 980", lambda: metadata.set("deep", nested(980)))
        metadata.set("kept", nested(LIMIT - 1))
        result = await child.trigger_and_wait(None)
        return str(result.unwrap())

    await start_worker()
    handle = await parent.trigger(None)
    record = await engine.wait_for_final(handle.id, timeout=15)
    assert record.status == "COMPLETED", record.error
    assert sorted(seen) == ["parent.set", "replace", "root.append", "set", "set 980", "set path"]
    assert all(f"at most {LIMIT} levels" in message for message in seen.values()), seen
    stored = (await runs.retrieve(handle.id)).metadata
    assert stored == {"kept": nested(LIMIT - 1), "fine": nested(LIMIT - 1)}


async def test_token_completion_too_deep_is_rejected(engine: Engine) -> None:
    token = await wait.create_token()
    with pytest.raises(JsonTooDeepError, match="Token data is nested too deeply"):
        await wait.complete_token(token.id, {"data": nested(LIMIT)})
    assert (await wait.retrieve_token(token.id)).status == "WAITING"
    assert await wait.complete_token(token.id, nested(LIMIT))
    assert (await wait.retrieve_token(token.id)).output == nested(LIMIT)


async def test_a_980_level_row_stored_before_the_limit_reads_as_a_marker(
    engine: Engine, settings: Settings
) -> None:
    @task(id="legacy")
    async def legacy(payload: Any) -> Any:
        return payload

    deep_handle = await legacy.trigger({"small": True})
    fine_handle = await legacy.trigger({"fine": True})
    deep_text = "[" * 980 + "]" * 980
    _execute(
        settings,
        "UPDATE runs SET payload = ?, output = ?, metadata = ? WHERE id = ?",
        (deep_text, deep_text, "{" + '"a":' * 1 + deep_text + "}", deep_handle.id),
    )

    listed = {r.id: r async for r in runs.list(limit=10)}
    assert set(listed) == {deep_handle.id, fine_handle.id}
    assert listed[fine_handle.id].payload == {"fine": True}
    run = await runs.retrieve(deep_handle.id)
    for value in (run.payload, run.output, run.metadata):
        assert value["$shipyard_error"] == "JSON_TOO_DEEP"
        assert "not decoded" in value["message"]
    assert run.to_dict()["payload"]["$shipyard_error"] == "JSON_TOO_DEEP"

    env = {
        "SHIPYARD_PROJECT_ROOT": str(settings.project_root),
        "SHIPYARD_DATABASE_URL": settings.database_url,
        "COLUMNS": "200",
        "PATH": "/usr/bin:/bin",
    }
    commands = (["runs", "list"], ["runs", "get", deep_handle.id], ["runs", "list", "--json"])
    results = await asyncio.gather(
        *(
            asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "shipyard", *args],
                env=env,
                cwd=settings.project_root,
                capture_output=True,
                text=True,
                timeout=60,
            )
            for args in commands
        )
    )
    for args, result in zip(commands, results, strict=True):
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "Traceback" not in output and "RecursionError" not in output
        assert deep_handle.id in output and ("JSON_TOO_DEEP" in output or args[1] == "list")
