"""Burn-down: queue N no-op runs, then start worker process(es) and measure how fast they drain.

drain_per_s = (runs - 1) / (last task-body start - first task-body start)   (boot excluded,
as peers-bench does; from the task-side records, and also from attempts.started_at in the DB);
drain_wall_per_s = runs / (worker launch -> all COMPLETED), boot included, polled every 50 ms.

    uv run python bench/burndown.py --runs 10000 --workers 1 --concurrency 100
    uv run python bench/burndown.py --backend postgres --workers 2
    uv run python bench/burndown.py --backend postgres --task noop-metadata   # real task shapes
    uv run python bench/burndown.py --runs 20000 --tasks noop,noop-metadata --reps 3

``--tasks`` measures several task shapes in one invocation, interleaved rep by rep (each run
a fresh database), and ends with a summary line: per shape the median drain and worker CPU per
run, and each shape's ratio to the first one (``wall_ratio``: the first shape's median drain
÷ this one's, i.e. how many times longer the drain takes). Worker CPU per run
(``worker_cpu_us_per_run``, from /proc) and, on PostgreSQL, the database backends' CPU per run
(``server_cpu_us_per_run``) are less sensitive to a loaded machine than wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from _common import Env, Workers, add_backend_arg, emit, make_payload, server_cpu

SHAPES = ["noop", "noop-metadata", "noop-log", "cpu-1ms"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument(
        "--task",
        choices=SHAPES,
        default="noop",
        help="task shape: the no-op, or it plus one metadata.set / one logger.info, or 1 ms of CPU",
    )
    ap.add_argument(
        "--tasks",
        default=None,
        help="comma-separated shapes measured in one invocation, interleaved (overrides --task)",
    )
    ap.add_argument("--reps", type=int, default=1, help="rounds over --tasks")
    ap.add_argument("--timeout", type=float, default=110.0)
    ap.add_argument("--keep", action="store_true", help="keep the temp folder / database")
    add_backend_arg(ap)
    a = ap.parse_args()

    shapes = a.tasks.split(",") if a.tasks else [a.task]
    for shape in shapes:
        if shape not in SHAPES:
            ap.error(f"unknown task shape {shape!r}; one of {', '.join(SHAPES)}")
    results: dict[str, list[dict[str, Any]]] = {shape: [] for shape in shapes}
    for _ in range(a.reps):
        for shape in shapes:
            a.task = shape
            env = Env("burndown", a.backend)
            try:
                results[shape].append(run(a, env))
            finally:
                env.cleanup(keep=a.keep)
    if len(shapes) > 1 or a.reps > 1:
        summarize(a, shapes, results)


def summarize(
    a: argparse.Namespace, shapes: list[str], results: dict[str, list[dict[str, Any]]]
) -> None:
    """One line over every rep: per shape the median drain and CPU per run, and its ratio to
    the first shape (how many times longer it takes, and how many times the CPU)."""

    def median(shape: str, key: str) -> float | None:
        values = [r[key] for r in results[shape] if r.get(key) is not None]
        return round(statistics.median(values), 1) if values else None

    summary: dict[str, Any] = {
        "bench": "burndown_shapes",
        "backend": a.backend,
        "runs": a.runs,
        "reps": a.reps,
        "shapes": {},
    }
    base = shapes[0]
    for shape in shapes:
        row: dict[str, Any] = {
            key: median(shape, key)
            for key in ("drain_per_s", "worker_cpu_us_per_run", "server_cpu_us_per_run")
        }
        base_drain, drain = median(base, "drain_per_s"), row["drain_per_s"]
        row["wall_ratio"] = round(base_drain / drain, 2) if base_drain and drain else None
        base_cpu, cpu = median(base, "worker_cpu_us_per_run"), row["worker_cpu_us_per_run"]
        row["cpu_ratio"] = round(cpu / base_cpu, 2) if base_cpu and cpu else None
        row["exactly_once"] = all(r["exactly_once"] for r in results[shape])
        summary["shapes"][shape] = row
    emit(
        summary,
        f"burndown [{a.backend}] medians of {a.reps}: "
        + "; ".join(
            f"{shape} {row['drain_per_s']}/s ({row['wall_ratio']}x time, "
            f"{row['worker_cpu_us_per_run']} us worker CPU/run, {row['cpu_ratio']}x)"
            for shape, row in summary["shapes"].items()
        ),
    )


def run(a: argparse.Namespace, env: Env) -> dict[str, Any]:
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
    server0 = server_cpu(env, conn)
    workers = Workers(env, a.workers, a.concurrency)
    worker_cpu = server_cpu_s = None
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
        worker_cpu = workers.cpu_seconds()
        server1 = server_cpu(env, conn)
        if server0 is not None and server1 is not None:
            server_cpu_s = server1 - server0
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
        # Worker boot included (a constant ~0.3 s of CPU, small next to 10,000+ runs).
        "worker_cpu_us_per_run": round(1e6 * worker_cpu / done, 1) if worker_cpu and done else None,
        "server_cpu_us_per_run": round(1e6 * server_cpu_s / done, 1)
        if server_cpu_s is not None and done
        else None,
        **check,
    }
    emit(
        result,
        f"burndown [{a.backend}] {a.runs} {a.task} runs, "
        f"{a.workers} worker proc(s) x concurrency {a.concurrency}: "
        f"drain {result['drain_per_s']}/s (db {result['drain_db_per_s']}/s), "
        f"wall incl. boot {result['drain_wall_per_s']}/s, "
        f"worker CPU {result['worker_cpu_us_per_run']} us/run, "
        f"exactly once: {check['exactly_once']}",
    )
    return result


if __name__ == "__main__":
    main()
