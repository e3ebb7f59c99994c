"""Soak: one worker drains --runs no-op runs while its RSS is sampled; memory must stay flat.

The benchmark process keeps a bounded backlog queued (batch triggers of 1,000) so the worker
never runs dry, and samples the worker's resident set size (``VmRSS`` from ``/proc``) at
``--samples`` evenly spaced points. It prints each sample, then one JSON line with the first,
last, minimum and maximum RSS and the growth per 100,000 runs over the second half of the soak
(after warm-up: caches, pools, allocator arenas); a worker that keeps something per run shows
a steady slope there (issue 10, defect 16: ~30 MB per 100,000 runs on SQLite before the fix).
No assertions: read the numbers.

    uv run python bench/soak.py --runs 1000000
    uv run python bench/soak.py --runs 1000000 --backend postgres
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from _common import Env, Workers, add_backend_arg, emit, make_payload

BATCH = 1_000


def rss_mb(pid: int) -> float:
    """The resident set size of a process, in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def slope_per_100k(points: list[tuple[int, float]]) -> float | None:
    """Least-squares growth of RSS (MB) per 100,000 runs."""
    if len(points) < 2:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if var == 0:
        return None
    cov = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return cov / var * 100_000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--samples", type=int, default=20, help="RSS samples over the soak")
    ap.add_argument("--backlog", type=int, default=20_000, help="runs kept queued ahead")
    ap.add_argument("--timeout", type=float, default=3_600.0)
    ap.add_argument("--keep", action="store_true", help="keep the temp folder / database")
    add_backend_arg(ap)
    a = ap.parse_args()

    env = Env("soak", a.backend)
    try:
        run(a, env)
    finally:
        env.cleanup(keep=a.keep)


def run(a: argparse.Namespace, env: Env) -> None:
    engine = env.engine()
    conn = env.connect()
    loop = asyncio.new_event_loop()
    loop.run_until_complete(engine.start())
    enqueued = 0

    def enqueue_batch() -> None:
        nonlocal enqueued
        count = min(BATCH, a.runs - enqueued)
        entries = [
            {"task": "noop", "payload": make_payload(i), "options": {}}
            for i in range(enqueued, enqueued + count)
        ]
        loop.run_until_complete(engine.batch_trigger(entries, {}))
        enqueued += count

    def not_finished() -> int:
        # Each count uses a partial index (QUEUED, PENDING_VERSION — the backlog enqueued before
        # the worker started —, EXECUTING): cheap at 10⁶ rows.
        row = conn.execute(
            "SELECT (SELECT count(*) FROM runs WHERE status = 'QUEUED') "
            "+ (SELECT count(*) FROM runs WHERE status = 'PENDING_VERSION') "
            "+ (SELECT count(*) FROM runs WHERE status = 'EXECUTING')"
        ).fetchone()
        return int(row[0])

    while enqueued < min(a.backlog, a.runs):
        enqueue_batch()
    workers = Workers(env, 1, a.concurrency)
    pid = workers.procs[0].pid
    samples: list[dict[str, Any]] = []
    every = max(1, a.runs // a.samples)
    next_sample = every  # from the first interval on: the worker is up and warm
    t0 = time.time()
    done = 0
    try:
        deadline = t0 + a.timeout
        while time.time() < deadline:
            if not workers.alive():
                raise RuntimeError("the worker exited:\n" + workers.log_tail())
            done = enqueued - not_finished()
            if done >= next_sample:
                sample = {
                    "runs": done,
                    "rss_mb": round(rss_mb(pid), 1),
                    "elapsed_s": round(time.time() - t0, 1),
                }
                samples.append(sample)
                print(
                    f"  {sample['runs']:>9,} runs  rss {sample['rss_mb']:7.1f} MB"
                    f"  {sample['elapsed_s']:7.1f} s",
                    flush=True,
                )
                next_sample = (done // every + 1) * every
            if done >= a.runs:
                break
            if enqueued < a.runs and enqueued - done < a.backlog:
                enqueue_batch()
            else:
                time.sleep(0.1)
        took = time.time() - t0
    finally:
        workers.stop()
        loop.run_until_complete(engine.close())
        loop.close()
    completed = env.count_completed(conn)
    conn.close()
    second_half = [(s["runs"], s["rss_mb"]) for s in samples if s["runs"] >= a.runs // 2]
    rss = [s["rss_mb"] for s in samples]
    slope = slope_per_100k(second_half)
    result = {
        "bench": "soak",
        "backend": a.backend,
        "runs": a.runs,
        "concurrency": a.concurrency,
        "completed": completed,
        "complete": completed >= a.runs,
        "seconds": round(took, 1),
        "runs_per_s": round(done / took, 1) if took else None,
        "rss_first_mb": rss[0] if rss else None,
        "rss_last_mb": rss[-1] if rss else None,
        "rss_min_mb": min(rss) if rss else None,
        "rss_max_mb": max(rss) if rss else None,
        "rss_growth_mb_per_100k_second_half": round(slope, 2) if slope is not None else None,
        "samples": samples,
    }
    emit(
        result,
        f"soak [{a.backend}] {completed:,}/{a.runs:,} runs in {took:.0f} s: worker RSS "
        f"{result['rss_first_mb']} → {result['rss_last_mb']} MB (min {result['rss_min_mb']}, "
        f"max {result['rss_max_mb']}), second half "
        f"{result['rss_growth_mb_per_100k_second_half']} MB per 100k runs",
    )


if __name__ == "__main__":
    main()
