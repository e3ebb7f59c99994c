"""On time: how late delayed runs and retries start after their due time.

One warmed-up worker process. ``--count`` runs of ``on-time`` are triggered at ``--rate``/s,
each with ``delay="2s"``: lateness = task start − the run's ``delay_until``. Then ``--count``
runs of ``retry-once`` (its first attempt fails; the retry is due 300 ms later, no jitter):
lateness = the second attempt's start − the run's retry time (``available_at``). Prints p50 /
p95 / p99 / max (ms) of each. Task starts are recorded in the task body (``tasks/on_time.py``).

    uv run python bench/on_time.py --backend postgres
    uv run python bench/on_time.py --backend sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import time
from typing import Any

from _common import Env, Workers, add_backend_arg, emit, pct


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--keep", action="store_true", help="keep the temp folder / database")
    add_backend_arg(ap)
    a = ap.parse_args()
    env = Env("on-time", a.backend)
    try:
        run(a, env)
    finally:
        env.cleanup(keep=a.keep)


def starts(env: Env) -> dict[tuple[str, int], float]:
    found: dict[tuple[str, int], float] = {}
    for path in glob.glob(str(env.rec / "ontime-*.txt")):
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) == 3:
                    found[(p[0], int(p[1]))] = float(p[2])
    return found


def run(a: argparse.Namespace, env: Env) -> None:
    engine = env.engine()
    import tasks.on_time  # noqa: F401  (defines the tasks in this process)

    workers = Workers(env, 1, 100)
    conn = env.connect()

    async def drive() -> tuple[list[str], list[str]]:
        await engine.start()
        # Warm-up: one run started and finished (the worker is registered and claiming).
        warm = await engine.trigger("on-time", {}, {})
        await engine.wait_for_final(warm.id, timeout=a.timeout)
        delayed, retried = [], []
        for ids, task_id, options in (
            (delayed, "on-time", {"delay": "2s"}),
            (retried, "retry-once", {}),
        ):
            t0 = time.perf_counter()
            for i in range(a.count):
                # Paced: trigger i at t0 + i / rate.
                await asyncio.sleep(max(0.0, t0 + i / a.rate - time.perf_counter()))
                ids.append((await engine.trigger(task_id, {"i": i}, options)).id)
        for run_id in delayed + retried:
            await engine.wait_for_final(run_id, timeout=a.timeout)
        await engine.close()
        return delayed, retried

    try:
        delayed, retried = asyncio.run(drive())
    finally:
        workers.stop()
    started = starts(env)
    due: dict[str, tuple[int | None, int | None]] = {
        r[0]: (r[1], r[2]) for r in conn.execute("SELECT id, delay_until, available_at FROM runs")
    }
    late_delayed = [
        1000 * started[(i, 1)] - float(due[i][0] or 0) for i in delayed if (i, 1) in started
    ]
    late_retry = [
        1000 * started[(i, 2)] - float(due[i][1] or 0) for i in retried if (i, 2) in started
    ]

    def stats(values: list[float]) -> dict[str, Any]:
        return {
            f"{k}_ms": None if not values else round(pct(values, q) or 0.0, 1)
            for k, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
        } | {"n": len(values)}

    d, r = stats(late_delayed), stats(late_retry)
    emit(
        {"bench": "on_time", "backend": a.backend, "delayed": d, "retry": r},
        f"on_time [{a.backend}] 2 s delayed run late by p50 {d['p50_ms']} / p99 {d['p99_ms']} ms "
        f"(n={d['n']}); 300 ms retry late by p50 {r['p50_ms']} / p99 {r['p99_ms']} ms "
        f"(n={r['n']})",
    )


if __name__ == "__main__":
    main()
