"""Trigger -> start latency at a steady rate, measured as peers-bench does.

One worker process, warmed up (one run completed); the bench process triggers at ``--rate``
runs/s for ``--duration`` s with ``ts = time.time()`` taken just before each ``trigger`` call;
the task body records ``now - ts``. Reports p50/p95/p99/max over all runs, and verifies every
run COMPLETED exactly once.

    uv run python bench/latency.py --rate 100 --duration 20
    uv run python bench/latency.py --backend postgres
"""

from __future__ import annotations

import argparse
import asyncio
import time

from _common import Env, Workers, add_backend_arg, emit, make_payload, pct


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=110.0)
    add_backend_arg(ap)
    a = ap.parse_args()

    env = Env("latency", a.backend)
    try:
        run(a, env)
    finally:
        env.cleanup()


def run(a: argparse.Namespace, env: Env) -> None:
    engine = env.engine()
    count = int(a.rate * a.duration)
    workers = Workers(env, 1, a.concurrency)
    conn = env.connect()

    async def drive() -> dict[str, float]:
        deadline = time.time() + a.timeout
        await engine.start()
        # warm-up: one run (i = -1) completed means the worker is up and registered
        t = time.time()
        await engine.trigger("noop", make_payload(-1), {})
        while env.count_completed(conn) < 1:
            if time.time() > deadline or not workers.alive():
                raise RuntimeError("warm-up run never completed:\n" + workers.log_tail())
            await asyncio.sleep(0.05)
        warm = time.time() - t
        t0 = time.time() + 0.2
        late = 0
        for k in range(count):
            target = t0 + k / a.rate
            now = time.time()
            if target > now:
                await asyncio.sleep(target - now)
            elif now - target > 0.01:
                late += 1
            await engine.trigger("noop", make_payload(k), {})
        took = time.time() - t0
        while env.count_completed(conn) < count + 1 and time.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await engine.close()
        return {"warmup_s": warm, "took": took, "late": late}

    try:
        info = asyncio.run(drive())
    finally:
        workers.stop()
    lats = [r[2] for r in env.records() if r[0] >= 0]
    check = env.verify_once(conn, count + 1)
    conn.close()
    ms = {q: 1000 * (pct(lats, q) or 0.0) for q in (0.5, 0.95, 0.99)}
    result = {
        "bench": "latency",
        "backend": a.backend,
        "rate": a.rate,
        "duration": a.duration,
        "sent": count,
        "achieved_rate": round(count / info["took"], 1),
        "late_triggers": info["late"],
        "warmup_s": round(info["warmup_s"], 3),
        "p50_ms": round(ms[0.5], 2),
        "p95_ms": round(ms[0.95], 2),
        "p99_ms": round(ms[0.99], 2),
        "max_ms": round(1000 * max(lats), 2) if lats else None,
        **check,
    }
    emit(
        result,
        f"latency [{a.backend}] at {a.rate:g} runs/s for {a.duration:g} s: "
        f"p50 {result['p50_ms']} ms, "
        f"p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms (max {result['max_ms']} ms), "
        f"exactly once: {check['exactly_once']}",
    )


if __name__ == "__main__":
    main()
