"""The browser example of ``docs/realtime.md``, as written, in headless Chromium: served from
another origin than the engine (as an app's page would be), it opens an ``EventSource`` with a
handle's public access token, moves its progress bar with each metadata update and shows the
output when the run completes — through the engine's real CORS handling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.async_api import Page, expect
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from shipyard import metadata, task
from shipyard.engine.engine import Engine
from shipyard.server.app import create_app
from shipyard.testing.eventually import eventually

DOC = Path(__file__).resolve().parents[4] / "docs" / "realtime.md"


def page_html() -> str:
    text = DOC.read_text()
    block = text.split("<!-- browser-example:start -->", 1)[1].split(
        "<!-- browser-example:end -->", 1
    )[0]
    return block.split("```html", 1)[1].split("```", 1)[0]


def static_site(html: str) -> Starlette:
    async def index(request: Any) -> HTMLResponse:
        return HTMLResponse(html)

    return Starlette(routes=[Route("/", index)])


@pytest.fixture
async def server_engine() -> AsyncIterator[Callable[[Engine, list[str]], Awaitable[Engine]]]:
    """``await server_engine(engine, origins)``: the server's own engine on the test engine's
    database, allowing ``origins`` (settings are fixed once an engine has them)."""
    started: list[Engine] = []

    async def make(engine: Engine, origins: list[str]) -> Engine:
        settings = engine.settings.model_copy(update={"server_cors_origins": origins})
        instance = Engine(settings)
        await instance.start()
        started.append(instance)
        return instance

    yield make
    for instance in started:
        await instance.close()


async def test_the_docs_page_shows_live_progress_in_chromium(
    engine: Engine,
    start_worker: Any,
    serve: Any,
    server_engine: Any,
    page: Page,
    screenshots: Path,
) -> None:
    gates = {v: asyncio.Event() for v in (0.25, 0.5, 0.75)}

    @task(id="browser-progress")
    async def browser_progress(payload: None) -> dict[str, Any]:
        for value, gate in gates.items():
            metadata.set("progress", value)
            await metadata.flush()
            await asyncio.wait_for(gate.wait(), 30)
        return {"pages": 3}

    site = await serve(static_site(page_html()))
    # The page's origin may call the engine's public routes; no other origin may.
    engine_url = await serve(create_app(await server_engine(engine, [site])))
    await start_worker()
    handle = await browser_progress.trigger(None)
    query = urlencode({"engine": engine_url, "run": handle.id, "token": handle.public_access_token})
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    try:
        await page.goto(f"{site}/?{query}")
        bar = page.locator("#bar")
        for value, gate in gates.items():
            await expect(bar).to_have_js_property("value", value)
            await expect(page.locator("#status")).to_have_text("EXECUTING")
            gate.set()
        await expect(page.locator("#status")).to_have_text("COMPLETED")
        await expect(bar).to_have_js_property("value", 1)
        await expect(page.locator("#output")).to_have_text('{"pages":3}')
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nbrowser console: {console}") from None
    finally:
        for gate in gates.values():  # never leave the run (and the worker) waiting
            gate.set()
    await page.screenshot(path=str(screenshots / "realtime-example.png"))


async def test_another_origin_is_refused_by_the_browser(
    engine: Engine, serve: Any, server_engine: Any, page: Page
) -> None:
    @task(id="browser-other-origin")
    async def other_origin(payload: None) -> None:
        return None

    site = await serve(static_site(page_html()))
    engine_url = await serve(create_app(await server_engine(engine, ["https://app.example.com"])))
    handle = await other_origin.trigger(None)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text))
    query = urlencode({"engine": engine_url, "run": handle.id, "token": handle.public_access_token})
    await page.goto(f"{site}/?{query}")
    # Without CORS headers for this origin the browser blocks the stream: it says so, and the
    # page never gets a status.
    await eventually(lambda: any("blocked by CORS policy" in e for e in errors))
    await expect(page.locator("#status")).to_have_text("connecting…")
