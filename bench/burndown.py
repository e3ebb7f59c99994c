"""Burn-down: queue N no-op runs, then start worker process(es) and measure how fast they drain.

drain_per_s = (runs - 1) / (last task-body start - first task-body start)   (boot excluded,
as peers-bench does; from the task-side records, and also from attempts.started_at in the DB);
drain_wall_per_s = runs / (worker launch -> all COMPLETED), boot included, polled every 50 ms.

    uv run python bench/burndown.py --runs 10000 --workers 1 --concurrency 100
    uv run python bench/burndown.py --backend postgres --workers 2
    uv run python bench/burndown.py --backend postgres --task noop-metadata   # real task shapes
"""

from __future__ import annotations

import argparse
import asyncio
import time

from _common import Env, Workers, add_backend_arg, emit, make_payload


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument(
        "--task",
        choices=["noop", "noop-metadata", "noop-log"],
        default="noop",
        help="task shape: the no-op, or it plus one metadata.set / one logger.info",
    )
    ap.add_argument("--timeout", type=float, default=110.0)
    ap.add_argument("--keep", action="store_true", help="keep the temp folder / database")
    add_backend_arg(ap)
    a = ap.parse_args()

    env = Env("burndown", a.backend)
    try:
        run(a, env)
    finally:
        env.cleanup(keep=a.keep)


def run(a: argparse.Namespace, env: Env) -> None:
    engine = env.engine()

    async def enqueue() -> float:
        await engine.start()
        t0 = time.perf_counter()
        for start in range(0, a.runs, 1000):
            entries = [
                {"task": a.task, "payload": make_payload(i), "options": {}}
                for i in range(start, min(start + 1000, a.runs))
            ]
            await engine.batch_trigger(entries, {})
        took = time.perf_counter() - t0
        await engine.close()
        return took

    enqueue_s = asyncio.run(enqueue())
    conn = env.connect()
    workers = Workers(env, a.workers, a.concurrency)
    try:
        t_launch = time.time()
        deadline = t_launch + a.timeout
        done = 0
        while time.time() < deadline:
            done = env.count_completed(conn)
            if done >= a.runs:
                break
            if not workers.alive():
                raise RuntimeError("a worker exited:\n" + workers.log_tail())
            time.sleep(0.05)
        t_done = time.time()
    finally:
        workers.stop()
    starts = sorted(r[1] for r in env.records())
    span = starts[-1] - starts[0] if len(starts) > 1 else 0.0
    db_first, db_last = conn.execute(
        "SELECT min(started_at), max(started_at) FROM attempts"
    ).fetchone()
    db_span = ((db_last or 0) - (db_first or 0)) / 1000
    check = env.verify_once(conn, a.runs)
    conn.close()
    result = {
        "bench": "burndown",
        "backend": a.backend,
        "runs": a.runs,
        "workers": a.workers,
        "concurrency": a.concurrency,
        "task": a.task,
        "enqueue_s": round(enqueue_s, 3),
        "complete": done >= a.runs,
        "drain_per_s": round((len(starts) - 1) / span, 1) if span else None,
        "drain_db_per_s": round((a.runs - 1) / db_span, 1) if db_span else None,
        "drain_wall_s": round(t_done - t_launch, 3),
        "drain_wall_per_s": round(done / (t_done - t_launch), 1),
        **check,
    }
    emit(
        result,
        f"burndown [{a.backend}] {a.runs} {a.task} runs, "
        f"{a.workers} worker proc(s) x concurrency {a.concurrency}: "
        f"drain {result['drain_per_s']}/s (db {result['drain_db_per_s']}/s), "
        f"wall incl. boot {result['drain_wall_per_s']}/s, exactly once: {check['exactly_once']}",
    )


if __name__ == "__main__":
    main()
