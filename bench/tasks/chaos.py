"""The chaos benchmark's task: sleeps ``payload["ms"]`` and records each execution.

Each execution appends ``"<run id> <attempt> start|end <now>"`` lines to a per-process file under
``$BENCH_REC`` (one ``os.write`` each, O_APPEND), so ``bench/chaos.py`` can tell a killed
attempt (a start without an end) from an attempt executed twice (two starts).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from shipyard import Context, task

_fds: dict[int, int] = {}


def _note(run_id: str, attempt: int, what: str) -> None:
    pid = os.getpid()
    fd = _fds.get(pid)
    if fd is None:
        rec_dir = os.environ.get("BENCH_REC", "/tmp/shipyard-bench/rec")
        os.makedirs(rec_dir, exist_ok=True)
        fd = os.open(
            os.path.join(rec_dir, f"chaos-{pid}.txt"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
        )
        _fds[pid] = fd
    os.write(fd, f"{run_id} {attempt} {what} {time.time():.6f}\n".encode())


# Enough attempts that a run killed again and again still completes (a kill costs one).
@task(id="chaos", retry={"max_attempts": 50, "min_timeout_ms": 10, "max_timeout_ms": 100})
async def chaos(payload: dict[str, Any], ctx: Context) -> int:
    """Record the start, sleep, record the end."""
    _note(ctx.run.id, ctx.attempt.number, "start")
    await asyncio.sleep(payload.get("ms", 0) / 1000)
    _note(ctx.run.id, ctx.attempt.number, "end")
    return int(payload.get("i", 0))
