"""Trigger throughput from one process, one asyncio loop, no workers running.

* single: ``--runs`` ``engine.trigger`` calls awaited one at a time;
* batch: ``--runs / 1000`` ``engine.batch_trigger`` calls of 1,000 entries each.

Each mode gets a fresh database (SQLite file, or PostgreSQL database with
``--backend postgres``). The numbers are runs created per second of wall time.

    uv run python bench/trigger_throughput.py --runs 10000
    uv run python bench/trigger_throughput.py --backend postgres
"""

from __future__ import annotations

import argparse
import asyncio
import time

from _common import Env, add_backend_arg, emit, make_payload


async def _single(engine: object, n: int) -> float:
    e: object = engine
    await e.start()  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    for i in range(n):
        await e.trigger("noop", make_payload(i), {})  # type: ignore[attr-defined]
    took = time.perf_counter() - t0
    await e.close()  # type: ignore[attr-defined]
    return took


async def _batch(engine: object, n: int, size: int) -> float:
    e: object = engine
    await e.start()  # type: ignore[attr-defined]
    # Warm-up outside the timing: the first batch handle's token signing imports jwt and
    # cryptography (~0.5 s once per process, not per batch).
    e.public_token(["read:batch:warmup"])  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    for start in range(0, n, size):
        entries = [
            {"task": "noop", "payload": make_payload(i), "options": {}}
            for i in range(start, min(start + size, n))
        ]
        await e.batch_trigger(entries, {})  # type: ignore[attr-defined]
    took = time.perf_counter() - t0
    await e.close()  # type: ignore[attr-defined]
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--mode", choices=["both", "single", "batch"], default="both")
    add_backend_arg(ap)
    a = ap.parse_args()
    result: dict[str, object] = {
        "bench": "trigger_throughput",
        "backend": a.backend,
        "runs": a.runs,
    }
    for mode in ("single", "batch"):
        if a.mode not in ("both", mode):
            continue
        env = Env(f"trigger-{mode}", a.backend)
        try:
            engine = env.engine()
            if mode == "single":
                took = asyncio.run(_single(engine, a.runs))
            else:
                took = asyncio.run(_batch(engine, a.runs, a.batch_size))
            conn = env.connect()
            # No worker runs here: the runs wait for one (PENDING_VERSION).
            queued = conn.execute(
                "SELECT count(*) FROM runs WHERE status IN ('QUEUED', 'PENDING_VERSION')"
            ).fetchone()[0]
        finally:
            env.cleanup()
        result[f"{mode}_s"] = round(took, 3)
        result[f"{mode}_per_s"] = round(a.runs / took, 1)
        result[f"{mode}_queued"] = queued
    emit(
        result,
        f"trigger [{a.backend}] {a.runs} runs: single {result.get('single_per_s')}/s, "
        f"batch of {a.batch_size} {result.get('batch_per_s')}/s",
    )


if __name__ == "__main__":
    main()
