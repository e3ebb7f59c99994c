"""The dashboard in a real browser (headless Chromium): the login, a trigger from the Test
page watched live to COMPLETED with its trace, the runs list updating live, a paused queue
holding new runs, a token completed from the page resuming its run, a replay with an edited
payload. Each page's screenshot is saved (``conftest.py`` says where)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from playwright.async_api import Page, expect

from shipyard import logger, metadata, queue, streams, task, wait
from shipyard.engine.engine import Engine
from shipyard.server.app import create_app
from shipyard.testing.eventually import eventually

# Records every status the run page's badge shows, and marks the document: a reload (which
# would lose the mark) cannot pass for a live update.
WATCH_STATUS = """() => {
  window.__seen = [document.querySelector('h1 [data-status]').textContent];
  window.__sameDocument = true;
  new MutationObserver(() => {
    const now = document.querySelector('h1 [data-status]').textContent;
    if (window.__seen[window.__seen.length - 1] !== now) window.__seen.push(now);
  }).observe(document.querySelector('h1'), {subtree: true, childList: true, characterData: true});
}"""


# Every visible form control and button has a name a screen reader can say.
UNLABELLED = """() => [...document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button')].filter((el) =>
  !(el.labels && el.labels.length) && !el.getAttribute('aria-label') &&
  !(el.tagName === 'BUTTON' && el.textContent.trim())).map((el) => el.outerHTML)"""


# What sticks out past a phone's width (outside the tables' own scrollers), for the message.
TOO_WIDE = """() => [...document.querySelectorAll('body *')]
  .filter((el) => el.getBoundingClientRect().right > 391
    && !el.parentElement.closest('.table-wrap'))
  .slice(0, 8).map((el) => el.tagName + '.' + el.className)"""


def define(gate: asyncio.Event) -> None:
    """``slow-report`` (waits for ``gate``, traced, with progress) on the ``reports`` queue,
    and ``approve`` (waits on a token)."""
    reports = queue(name="reports", concurrency_limit=1)
    rows = streams.define("rows")

    @task(id="slow-report", queue=reports)
    async def slow_report(payload: dict[str, Any]) -> dict[str, Any]:
        logger.info("report requested", title=payload.get("title"))
        metadata.set("progress", 0.25)
        async with logger.trace("gather rows"):
            await metadata.flush()
            await rows.append_many(["row 1", "row 2"])
            await gate.wait()
        async with logger.trace("summarise"):
            metadata.set("progress", 1.0)
        return {"title": payload.get("title"), "rows": 3}

    @task(id="approve")
    async def approve(payload: dict[str, Any]) -> Any:
        token = await wait.create_token(tags=["browser"])
        metadata.set("token", token.id)
        await metadata.flush()
        result = await wait.for_token(token.id)
        return result.output


async def test_login_is_required_and_a_post_without_csrf_is_refused(
    engine: Engine, serve: Any, page: Page, screenshots: Path
) -> None:
    url = await serve(create_app(engine))
    await page.goto(f"{url}/dashboard/runs?tag=x")
    await expect(page).to_have_url(f"{url}/dashboard/login?next=/dashboard/runs%3Ftag%3Dx")
    await page.screenshot(path=screenshots / "login.png")
    await page.get_by_label("Secret key").fill("not-the-key-at-all-not-the-key-at-all")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("not a secret key")
    await page.get_by_label("Secret key").fill(engine.secret_key())
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{url}/dashboard/runs?tag=x")
    cookie = next(c for c in await page.context.cookies() if c["name"] == "shipyard_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    handle = await engine.trigger("never-runs", {}, {})
    refused = await page.request.post(f"{url}/dashboard/runs/{handle.id}/cancel", form={})
    assert refused.status == 403
    assert not (await engine.retrieve_run(handle.id)).is_completed


async def test_trigger_from_the_test_page_and_watch_it_live(
    engine: Engine, serve: Any, page: Page, screenshots: Path, start_worker: Any
) -> None:
    gate = asyncio.Event()
    define(gate)
    worker = await start_worker()
    url = await serve(create_app(engine, dashboard_open=True))
    await eventually(lambda: _has_queue(engine, "reports"), timeout=20)

    # The runs list is live: a run triggered elsewhere appears without a reload.
    await page.goto(f"{url}/dashboard/runs")
    other = await engine.trigger("approve", {}, {"tags": ["elsewhere"]})
    await expect(page.locator(f'tr[data-run="{other.id}"]')).to_be_visible()
    await page.screenshot(path=screenshots / "runs.png")

    # Pause the queue from the Queues page: a new run stays QUEUED.
    await page.goto(f"{url}/dashboard/queues")
    row = page.locator('tr[data-queue="reports"]')
    await row.get_by_role("button", name="Pause").click()
    await expect(row.get_by_role("button", name="Resume")).to_be_visible()
    await page.screenshot(path=screenshots / "queues.png")

    # Trigger from the Test page: it lands on the new run.
    await page.goto(f"{url}/dashboard/tasks/slow-report/test")
    await page.get_by_label("Payload (JSON)").fill('{"title": "Q3"}')
    await page.get_by_label("Tags").fill("browser")
    await page.screenshot(path=screenshots / "test.png")
    # From the keyboard: Ctrl+Enter in the editor triggers.
    await page.get_by_label("Payload (JSON)").press("Control+Enter")
    await page.wait_for_url(lambda u: "/dashboard/runs/run_" in u)
    run_id = page.url.rsplit("/", 1)[1]
    badge = page.locator("h1 [data-status]")
    await expect(badge).to_have_text("QUEUED")
    await page.evaluate(WATCH_STATUS)
    # Three more claim passes of the worker: the paused queue keeps the run.
    claimer = worker.service("claimer")
    passes = claimer.passes
    await eventually(lambda: claimer.passes >= passes + 3)
    assert (await engine.retrieve_run(run_id)).status == "QUEUED"

    await engine.resume_queue("reports")
    await expect(badge).to_have_text("EXECUTING")
    await expect(page.locator("#progress")).to_have_attribute("value", "0.25")
    gate.set()
    await expect(badge).to_have_text("COMPLETED")
    seen = await page.evaluate("window.__seen")
    assert seen == ["QUEUED", "EXECUTING", "COMPLETED"]
    assert await page.evaluate("window.__sameDocument") is True
    # The trace: the attempt, both spans and the log line, refreshed without a reload.
    trace = page.locator("#trace")
    for text in ("Attempt 1", "gather rows", "summarise", "report requested"):
        await expect(trace).to_contain_text(text)
    await expect(page.locator("#output")).to_contain_text('"Q3"')
    await expect(page.locator('[data-stream="rows"] ol.chunks')).to_contain_text('"row 2"')
    await page.screenshot(path=screenshots / "run.png", full_page=True)
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.screenshot(path=screenshots / "run-390.png", full_page=True)


async def test_complete_a_token_and_replay_with_an_edited_payload(
    engine: Engine, serve: Any, page: Page, screenshots: Path, start_worker: Any
) -> None:
    define(asyncio.Event())
    await start_worker()
    url = await serve(create_app(engine, dashboard_open=True))
    handle = await engine.trigger("approve", {"doc": 1}, {})
    run = await eventually(lambda: _with_token(engine, handle.id), timeout=20)
    await page.goto(f"{url}/dashboard/runs/{handle.id}")
    await expect(page.locator("h1 [data-status]")).to_have_text("WAITING")

    await page.goto(f"{url}/dashboard/tokens?status=WAITING")
    row = page.locator(f'tr[data-token="{run.metadata["token"]}"]')
    await row.get_by_role("textbox").fill('{"approved": true}')
    await page.screenshot(path=screenshots / "tokens.png")
    await row.get_by_role("button", name="Complete").click()
    await page.goto(f"{url}/dashboard/runs/{handle.id}")
    await expect(page.locator("h1 [data-status]")).to_have_text("COMPLETED")
    await expect(page.locator("#output")).to_contain_text("approved")

    # Replay with an edited payload: the new run has it.
    await page.get_by_label("Payload (JSON)").fill('{"doc": 2}')
    await page.get_by_role("button", name="Replay").click()
    await page.wait_for_url(lambda u: "/dashboard/runs/run_" in u and handle.id not in u)
    replayed = await engine.retrieve_run(page.url.rsplit("/", 1)[1])
    assert replayed.payload == {"doc": 2} and replayed.task_identifier == "approve"

    pages = ("overview", "runs", f"runs/{handle.id}", "tasks", "tasks/approve/test")
    pages += ("schedules", "batches", "tokens", "queues", "keys")
    for name in pages:
        await page.set_viewport_size({"width": 1280, "height": 900})
        await page.goto(f"{url}/dashboard/{name}")
        await expect(page.locator("h1")).to_be_visible()
        assert await page.evaluate(UNLABELLED) == [], name
        if "/" not in name:
            await page.screenshot(path=screenshots / f"{name}.png", full_page=True)
        # A phone's width: nothing wider than the screen but the tables' own scrollers.
        await page.set_viewport_size({"width": 390, "height": 844})
        wide = await page.evaluate(TOO_WIDE)
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390, (name, wide)


async def _has_queue(engine: Engine, name: str) -> bool:
    return any(q.name == name for q in await engine.list_queues())


async def _with_token(engine: Engine, run_id: str) -> Any:
    run = await engine.retrieve_run(run_id)
    return run if run.status == "WAITING" and "token" in run.metadata else None
