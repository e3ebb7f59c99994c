"""The browser example of ``docs/realtime.md``: the endpoint its ``EventSource`` opens, read the
way the page reads it (a handle's public token in ``?token=``, ``update`` events moving the
progress bar, ``end`` closing it), through a real server on both backends."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from shipyard import metadata, task
from shipyard.engine.engine import Engine
from shipyard.testing.eventually import eventually
from shipyard.testing.sse import sse_events

DOC = Path(__file__).resolve().parents[4] / "docs" / "realtime.md"


def page() -> str:
    text = DOC.read_text()
    block = text.split("<!-- browser-example:start -->", 1)[1].split(
        "<!-- browser-example:end -->", 1
    )[0]
    return block.split("```html", 1)[1].split("```", 1)[0]


def test_the_example_is_a_short_page_using_event_source_with_a_token_in_the_url() -> None:
    html = page()
    assert 30 <= len(html.strip().splitlines()) <= 45
    assert "new EventSource(url)" in html
    assert re.search(r"/realtime/v1/runs/\$\{encodeURIComponent\(runId\)\}", html)
    assert "?token=${encodeURIComponent(token)}" in html
    assert 'addEventListener("update"' in html and 'addEventListener("end"' in html
    assert "source.close()" in html


async def test_the_page_endpoint_moves_the_bar_to_the_end(
    engine: Engine, start_worker: Callable[..., Any], server_url: str
) -> None:
    steps = {v: asyncio.Event() for v in (0.3, 0.6, 0.9)}

    @task(id="page-progress")
    async def page_progress(payload: None) -> dict[str, bool]:
        for value in steps:
            metadata.set("progress", value)
            await metadata.flush()
            await asyncio.wait_for(steps[value].wait(), 15)
        return {"ok": True}

    handle = await page_progress.trigger(None)
    # The URL the page builds: engine + path + ?token= (no Authorization header).
    url = f"/realtime/v1/runs/{handle.id}?token={handle.public_access_token}"
    bar: list[float] = []
    shown: dict[str, Any] = {}

    async def browser() -> str:
        async with httpx.AsyncClient(base_url=server_url) as http:
            async for event in sse_events(http, url):
                if event.event == "update":
                    run = event.json()["run"]
                    shown["status"] = run["status"]
                    progress = (run.get("metadata") or {}).get("progress")
                    if isinstance(progress, float):
                        bar.append(progress)
                        if progress in steps:
                            steps[progress].set()
                    if run["status"] == "COMPLETED":
                        bar.append(1)
                        shown["output"] = run["output"]
                elif event.event == "end":
                    return "closed"
        return "ended without end"

    reading = asyncio.create_task(browser())
    await eventually(lambda: "status" in shown)
    assert shown["status"] == "PENDING_VERSION"  # no worker has the task yet
    await start_worker()
    assert await asyncio.wait_for(reading, 30) == "closed"
    assert shown == {"status": "COMPLETED", "output": {"ok": True}}
    assert bar == sorted(bar) and set(bar) == {0.3, 0.6, 0.9, 1}
