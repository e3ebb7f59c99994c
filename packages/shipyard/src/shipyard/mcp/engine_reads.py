"""The reads the MCP tools make through the engine, as stored rows (epoch-ms times, JSON text):
registered tasks, a run's events, live workers."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.engine.engine import Engine
    from shipyard.records import RunEventRecord, TaskRecord, WorkerRecord

EVENTS_PAGE = 1000
WORKER_LIVE_WINDOW_MS = 30_000
"""A worker that heartbeated in the last 30 s counts as running (heartbeats are every 5 s)."""


async def registered_tasks(engine: Engine) -> list[TaskRecord]:
    """Every task a worker of the engine's environment registered."""
    return await engine.task_records()


async def run_events(engine: Engine, run_id: str, limit: int) -> tuple[list[RunEventRecord], bool]:
    """A run's events oldest first, at most ``limit``; True when there were more."""
    events: list[RunEventRecord] = []
    after = 0
    while True:
        page = await engine.run_event_records(run_id, after_id=after, limit=EVENTS_PAGE)
        events.extend(page)
        if len(events) > limit:
            return events[:limit], True
        if len(page) < EVENTS_PAGE:
            return events, False
        after = page[-1].id


async def live_workers(engine: Engine) -> list[WorkerRecord]:
    """Workers of the environment that heartbeated recently and did not stop."""
    return await engine.live_workers(WORKER_LIVE_WINDOW_MS)
