"""The benchmark's no-op task: records its start like the peers harness, returns the payload.

``record`` appends ``"<i> <now> <now - ts>"`` to a per-process file under ``$BENCH_REC``
(one ``os.write`` per run, O_APPEND), exactly as the harness of the peer baselines does.
"""

from __future__ import annotations

import os
import time
from typing import Any

from shipyard import logger, metadata, task

_fds: dict[int, int] = {}


def record(payload: dict[str, Any]) -> dict[str, Any]:
    """Note this run's start (now, and now - payload["ts"])."""
    now = time.time()
    pid = os.getpid()
    fd = _fds.get(pid)
    if fd is None:
        rec_dir = os.environ.get("BENCH_REC", "/tmp/shipyard-bench/rec")
        os.makedirs(rec_dir, exist_ok=True)
        path = os.path.join(rec_dir, f"rec-{pid}.txt")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        _fds[pid] = fd
    os.write(fd, f"{payload['i']} {now:.6f} {now - payload['ts']:.6f}\n".encode())
    return payload


@task(id="noop")
async def noop(payload: dict[str, Any]) -> dict[str, Any]:
    """Return the payload after recording the start."""
    return record(payload)


@task(id="noop-metadata")
async def noop_metadata(payload: dict[str, Any]) -> dict[str, Any]:
    """A real task shape: the no-op that also sets one metadata key (a progress field)."""
    metadata.set("progress", 1.0)
    return record(payload)


@task(id="noop-log")
async def noop_log(payload: dict[str, Any]) -> dict[str, Any]:
    """A real task shape: the no-op that also logs one line."""
    logger.info("working", i=payload["i"])
    return record(payload)


@task(id="cpu-1ms")
async def cpu_1ms(payload: dict[str, Any]) -> dict[str, Any]:
    """A task whose body holds the CPU for 1 ms (its worker process is then the bound, and a
    second worker process on the same queue should add capacity)."""
    started = record(payload)
    until = time.perf_counter() + 0.001
    while time.perf_counter() < until:
        pass
    return started
