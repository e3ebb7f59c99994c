"""The schedule routes over HTTP: Trigger.dev's paths and shapes, the deduplication-key
update, paging, activate/deactivate, delete, time zones, and bad input as 400 with the
engine's message (404 for an unknown id, 401 without a key)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shipyard import schedules
from shipyard.clock import FakeClock
from shipyard.engine.engine import Engine
from shipyard.models.schedules import ScheduledPayload
from shipyard.testing.eventually import eventually


async def test_schedule_routes(api: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    @schedules.task(id="report")
    async def report(payload: ScheduledPayload) -> None:
        return None

    body = {
        "task": "report",
        "cron": "0 9 * * 1-5",
        "deduplicationKey": "customer-7",
        "externalId": "7",
        "timezone": "America/New_York",
    }
    created = await api.post("/api/v1/schedules", json=body)
    assert created.status_code == 200, created.text
    schedule = created.json()
    assert schedule["id"].startswith("sched_") and schedule["type"] == "IMPERATIVE"
    assert schedule["generator"] == {
        "type": "CRON",
        "expression": "0 9 * * 1-5",
        "description": "At 09:00 on Monday through Friday",
    }
    assert (schedule["timezone"], schedule["externalId"], schedule["active"]) == (
        "America/New_York",
        "7",
        True,
    )
    assert schedule["nextRun"].endswith("Z")
    assert schedule["environments"] == [{"id": "development", "type": "DEVELOPMENT"}]

    again = await api.post("/api/v1/schedules", json={**body, "cron": "0 10 * * *"})
    assert again.json()["id"] == schedule["id"]  # the same key updates
    for i in range(3):
        await api.post(
            "/api/v1/schedules",
            json={"task": "report", "cron": "0 0 * * *", "deduplicationKey": f"k{i}"},
        )
    page = await api.get("/api/v1/schedules", params={"page": 2, "perPage": 3})
    assert page.status_code == 200, page.text
    assert page.json()["pagination"] == {"currentPage": 2, "totalPages": 2, "count": 4}
    assert len(page.json()["data"]) == 1

    sid = schedule["id"]
    got = await api.get(f"/api/v1/schedules/{sid}")
    assert got.json()["generator"]["expression"] == "0 10 * * *"
    put = await api.put(f"/api/v1/schedules/{sid}", json={"task": "report", "cron": "*/5 * * * *"})
    assert put.status_code == 200 and put.json()["generator"]["expression"] == "*/5 * * * *"
    assert put.json()["deduplicationKey"] == "customer-7"
    off = await api.post(f"/api/v1/schedules/{sid}/deactivate")
    assert off.json()["active"] is False and off.json()["nextRun"] is None
    on = await api.post(f"/api/v1/schedules/{sid}/activate")
    assert on.json()["active"] is True and on.json()["nextRun"] is not None
    deleted = await api.delete(f"/api/v1/schedules/{sid}")
    assert deleted.status_code == 200 and deleted.json()["id"] == sid
    gone = await api.get(f"/api/v1/schedules/{sid}")
    assert gone.status_code == 404, gone.text
    assert sid in gone.json()["error"]

    zones = await api.get("/api/v1/timezones")
    assert zones.status_code == 200 and zones.json()["timezones"][0] == "UTC"
    assert "Europe/London" in zones.json()["timezones"]
    no_utc = await api.get("/api/v1/timezones", params={"excludeUtc": "true"})
    assert "UTC" not in no_utc.json()["timezones"]

    bad: list[tuple[dict[str, Any], str]] = [
        ({**body, "cron": "0 0 9 * * *"}, "seconds are not allowed"),
        ({**body, "timezone": "Mars/Olympus"}, "Unknown time zone 'Mars/Olympus'"),
        ({**body, "window": "90s"}, "Invalid schedule window '90s'"),
    ]
    for payload, message in bad:
        response = await api.post("/api/v1/schedules", json=payload)
        assert response.status_code == 400, response.text
        assert message in response.json()["error"]
    unknown_task = await api.post("/api/v1/schedules", json={**body, "task": "nope"})
    assert unknown_task.status_code == 404, unknown_task.text
    assert (await anon.get("/api/v1/schedules")).status_code == 401


@pytest.mark.fake_clock
async def test_a_scheduled_run_shows_its_schedule(
    engine: Engine, clock: FakeClock, start_worker: Callable[..., Any], api: httpx.AsyncClient
) -> None:
    @schedules.task(id="minutely")
    async def minutely(payload: ScheduledPayload) -> str:
        return payload.schedule_id

    await start_worker()
    created = await api.post(
        "/api/v1/schedules",
        json={"task": "minutely", "cron": "* * * * *", "deduplicationKey": "m", "externalId": "x"},
    )
    schedule = created.json()

    async def fired() -> Any:
        return (await engine.list_runs(schedule_id=schedule["id"])).items

    await clock.advance(61)
    [run] = await eventually(fired)
    got = await api.get(f"/api/v3/runs/{run.id}")
    assert got.status_code == 200, got.text
    assert got.json()["schedule"] == {
        "id": schedule["id"],
        "externalId": "x",
        "deduplicationKey": "m",
        "generator": {"type": "CRON", "expression": "* * * * *", "description": "Every minute"},
    }
    assert got.json()["payload"]["scheduleId"] == schedule["id"]


async def test_an_unknown_list_parameter_names_every_accepted_one(api: httpx.AsyncClient) -> None:
    answer = await api.get("/api/v1/schedules", params={"sort": "asc"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "Unknown query parameter sort; accepted: page, perPage, task."
    listed = await api.get("/api/v1/schedules", params={"task": "nope", "perPage": "5"})
    assert listed.status_code == 200, listed.text
