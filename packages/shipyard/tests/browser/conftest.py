"""Browser test helpers: Debian's Chromium driven by Playwright (``/usr/bin/chromium``;
``scripts/test.sh`` installs it when missing), the engine server on a real uvicorn in the test's
event loop, SQLite only (the pages' backend behaviour is covered by ``tests/dashboard``).

Screenshots go to ``SHIPYARD_SCREENSHOTS`` (default ``.shipyard/screenshots/`` at the
repository root, git-ignored).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from shipyard.testing.servers import Serve, uvicorn_servers

CHROMIUM = Path("/usr/bin/chromium")
# A loaded CI machine: assertions wait up to 20 s for the page (they pass as soon as it shows).
expect.set_options(timeout=20_000)
ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: these tests are about the browser, not the store."""
    return f"sqlite:///{tmp_path / 'shipyard.db'}"


@pytest.fixture
def screenshots() -> Path:
    """Where the tests save their screenshots."""
    folder = Path(os.environ.get("SHIPYARD_SCREENSHOTS") or ROOT / ".shipyard" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium (Debian's), closed after the test."""
    if not CHROMIUM.exists():
        message = "Chromium is not installed: apt-get install -y chromium (scripts/test.sh does)."
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield instance
        finally:
            await instance.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page 1280 px wide; actions wait up to 20 s (a loaded CI machine)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    instance = await context.new_page()
    yield instance
    await context.close()


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``url = await serve(app)``: serve ``app`` with uvicorn on 127.0.0.1, a free port."""
    async with uvicorn_servers() as start:
        yield start
