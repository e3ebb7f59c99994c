"""The reads the MCP tools make beyond the public SDK, as stored rows (epoch-ms times, JSON
text): registered tasks, a run's events, live workers, the clock, waiting for a run.

Each takes the tools' engine: the :class:`~shipyard.engine.engine.Engine` of this project, or
a :class:`~shipyard.client.RemoteClient` of an engine server (``shipyard mcp --api-url``).
Over HTTP the API's bodies are turned into the same rows; what the API does not tell (which
workers run) is ``None``, "unknown", so no tool claims that no worker runs.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from shipyard.errors import RunTimeoutError
from shipyard.jsonutil import dumps
from shipyard.records import RunEventRecord, TaskRecord, WorkerRecord

if TYPE_CHECKING:
    from shipyard.client import RemoteClient
    from shipyard.engine.engine import Engine

    ToolEngine = Engine | RemoteClient

EVENTS_PAGE = 1000
WORKER_LIVE_WINDOW_MS = 30_000
"""A worker that heartbeated in the last 30 s counts as running (heartbeats are every 5 s)."""


async def environment(engine: ToolEngine) -> str:
    """The engine's environment (a remote server's, from its ``/healthz``)."""
    from shipyard.engine.engine import Engine

    if isinstance(engine, Engine):
        return engine.environment
    info = await engine.server_info()
    return str(info.get("environment") or "unknown")


def now_ms(engine: ToolEngine) -> int:
    """The engine's clock in epoch ms (this machine's clock for a remote engine)."""
    from shipyard.engine.engine import Engine

    if isinstance(engine, Engine):
        return engine.now()
    return int(time.time() * 1000)


async def registered_tasks(engine: ToolEngine) -> list[TaskRecord]:
    """Every task a worker of the engine's environment registered."""
    from shipyard.engine.engine import Engine

    if isinstance(engine, Engine):
        return await engine.task_records()
    env = await environment(engine)
    return [
        TaskRecord(
            environment=env,
            id=task.id,
            file_path=task.file_path,
            queue=task.queue,
            max_attempts=task.max_attempts,
            retry=dumps(task.retry) if task.retry else None,
            max_duration_s=task.max_duration,
            machine=task.machine,
            description=task.description,
            payload_schema=dumps(task.payload_schema) if task.payload_schema else None,
            worker_id="",
            updated_at=0,
            ttl_ms=task.ttl_ms,
        )
        for task in await engine.list_tasks()
    ]


async def run_events(
    engine: ToolEngine, run_id: str, limit: int
) -> tuple[list[RunEventRecord], bool]:
    """A run's events oldest first, at most ``limit``; True when there were more."""
    from shipyard.engine.engine import Engine

    events: list[RunEventRecord] = []
    after = 0
    while True:
        if isinstance(engine, Engine):
            page = await engine.run_event_records(run_id, after_id=after, limit=EVENTS_PAGE)
        else:
            page = [
                RunEventRecord(
                    id=e.id,
                    run_id=e.run_id,
                    ts=int(e.ts.timestamp() * 1000),
                    kind=e.kind,
                    level=e.level,
                    message=e.message,
                    attributes=dumps(e.attributes) if e.attributes is not None else None,
                )
                for e in await engine.run_events(run_id, after_id=after, limit=EVENTS_PAGE)
            ]
        events.extend(page)
        if len(events) > limit:
            return events[:limit], True
        if len(page) < EVENTS_PAGE:
            return events, False
        after = page[-1].id


async def live_workers(engine: ToolEngine) -> list[WorkerRecord] | None:
    """Workers of the environment that heartbeated recently and did not stop; ``None`` for a
    remote engine (its API does not list workers)."""
    from shipyard.engine.engine import Engine

    if isinstance(engine, Engine):
        return await engine.live_workers(WORKER_LIVE_WINDOW_MS)
    return None


async def wait_for_final(engine: ToolEngine, run_id: str, timeout: float) -> None:
    """Wait until the run is final, at most ``timeout`` seconds (:class:`RunTimeoutError`)."""
    from shipyard.engine.engine import Engine

    if isinstance(engine, Engine):
        await engine.wait_for_final(run_id, timeout=timeout)
        return
    deadline = time.monotonic() + timeout
    interval = 0.05
    while not (run := await engine.retrieve_run(run_id)).is_completed:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RunTimeoutError(
                f"Run {run_id} did not finish within {timeout} s (status {run.status}).",
                run_id=run_id,
                status=str(run.status),
            )
        await asyncio.sleep(min(interval, remaining))
        interval = min(interval * 1.5, 1.0)


__all__ = [
    "environment",
    "live_workers",
    "now_ms",
    "registered_tasks",
    "run_events",
    "wait_for_final",
]
