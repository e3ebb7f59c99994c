"""The depth benchmark's tasks (``bench/depth.py``): a deep backlog waits on one queue while
no-op runs drain on another.

* ``depth-paused`` runs sit on a paused queue (the backlog of the ``paused`` scenario);
* ``depth-limited`` runs sit behind a queue whose one slot is held (``payload["hold_s"]``: the
  first run sleeps that long; the backlog of the ``limited`` scenario);
* ``depth-drain`` is the measured no-op, on its own queue (records its start like ``noop``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from shipyard import queue, task
from tasks.noop import record

paused_queue = queue(name="depth-paused")
limited_queue = queue(name="depth-limited", concurrency_limit=1)
drain_queue = queue(name="depth-drain")


@task(id="depth-paused", queue=paused_queue)
async def depth_paused(payload: dict[str, Any]) -> None:
    """Never runs in the benchmark: its queue stays paused."""


@task(id="depth-limited", queue=limited_queue)
async def depth_limited(payload: dict[str, Any]) -> None:
    """Hold the queue's one slot for ``hold_s`` seconds (0 for the backlog's runs)."""
    await asyncio.sleep(float(payload.get("hold_s", 0)))


@task(id="depth-drain", queue=drain_queue)
async def depth_drain(payload: dict[str, Any]) -> dict[str, Any]:
    """The measured no-op: record the start, return the payload."""
    return record(payload)
