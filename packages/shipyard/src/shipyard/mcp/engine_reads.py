"""ADAPTER — the reads the MCP tools need that the engine does not offer as methods yet.

LEAD: this is the one place the MCP package reaches past the engine's public methods (to
``engine.store``). Rewire each function to an ``Engine`` method when issue 10 adds one
(``Engine.list_tasks``, ``Engine.run_events``, ``Engine.live_workers`` or similar); nothing
else in ``shipyard.mcp`` touches the store, and nothing here imports ``shipyard.store``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.engine.engine import Engine
    from shipyard.records import RunEventRecord, TaskRecord, WorkerRecord

EVENTS_PAGE = 1000
WORKER_LIVE_WINDOW_MS = 30_000
"""A worker that heartbeated in the last 30 s counts as running (heartbeats are every 5 s)."""


async def registered_tasks(engine: Engine) -> list[TaskRecord]:
    """Every task a worker of the engine's environment registered (LEAD: rewire)."""
    return await engine.store.task_list(engine.environment)


async def run_events(engine: Engine, run_id: str, limit: int) -> tuple[list[RunEventRecord], bool]:
    """A run's events oldest first, at most ``limit``; True when there were more (LEAD: rewire).

    The caller has already checked that the run belongs to the engine's environment.
    """
    events: list[RunEventRecord] = []
    after = 0
    while True:
        page = await engine.store.run_events_list(run_id, after_id=after, limit=EVENTS_PAGE)
        events.extend(page)
        if len(events) > limit:
            return events[:limit], True
        if len(page) < EVENTS_PAGE:
            return events, False
        after = page[-1].id


async def live_workers(engine: Engine) -> list[WorkerRecord]:
    """Workers of the environment that heartbeated recently and did not stop (LEAD: rewire)."""
    since = engine.clock() - WORKER_LIVE_WINDOW_MS
    return await engine.store.worker_list_live(engine.environment, since)
