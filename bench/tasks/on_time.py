"""The on-time benchmark's tasks: each execution appends ``"<run id> <attempt> <now>"`` to a
per-process file under ``$BENCH_REC`` (one ``os.write``, O_APPEND)."""

from __future__ import annotations

import os
import time
from typing import Any

from shipyard import Context, task

_fds: dict[int, int] = {}


def _note(run_id: str, attempt: int) -> None:
    pid = os.getpid()
    fd = _fds.get(pid)
    if fd is None:
        rec_dir = os.environ.get("BENCH_REC", "/tmp/shipyard-bench/rec")
        os.makedirs(rec_dir, exist_ok=True)
        fd = os.open(
            os.path.join(rec_dir, f"ontime-{pid}.txt"),
            os.O_WRONLY | os.O_CREAT | os.O_APPEND,
            0o644,
        )
        _fds[pid] = fd
    os.write(fd, f"{run_id} {attempt} {time.time():.6f}\n".encode())


@task(id="on-time")
async def on_time(payload: dict[str, Any], ctx: Context) -> None:
    """Record the start (a delayed run's)."""
    _note(ctx.run.id, ctx.attempt.number)


@task(
    id="retry-once",
    retry={"max_attempts": 2, "min_timeout_ms": 300, "max_timeout_ms": 300, "randomize": False},
)
async def retry_once(payload: dict[str, Any], ctx: Context) -> None:
    """Record the start; the first attempt fails, so a retry is due 300 ms after it."""
    _note(ctx.run.id, ctx.attempt.number)
    if ctx.attempt.number == 1:
        raise RuntimeError("the first attempt fails")
