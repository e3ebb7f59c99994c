"""Trigger throughput from one process, one asyncio loop, no workers running.

* single: ``--runs`` ``engine.trigger`` calls awaited one at a time;
* batch: ``--runs / 1000`` ``engine.batch_trigger`` calls of 1,000 entries each;
* sync: what the peers harness's Shipyard adapter does (``peers/shipyard_peer.py``): a plain
  sync program calls ``loop.run_until_complete(noop.trigger(payload))`` once per run on one
  event loop made with ``asyncio.new_event_loop()``, after ``shipyard.configure(...)`` — the
  public SDK path (backend look-up, the task's ``trigger``) plus a loop start and stop per run.
  20 warm-up runs (the first starts the engine: migrations, connection) are not timed.

Each mode gets a fresh database (SQLite file, or PostgreSQL database with
``--backend postgres``). The numbers are runs created per second of wall time, and the CPU
per run of this process (``*_client_cpu_us``) and, on PostgreSQL, of the database backends
serving it (``*_server_cpu_us``): less sensitive to a loaded machine than the wall clock.

    uv run python bench/trigger_throughput.py --runs 10000
    uv run python bench/trigger_throughput.py --backend postgres
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from _common import Env, add_backend_arg, emit, make_payload, server_cpu

Timing = tuple[float, float, float | None]  # wall s, client CPU s, server CPU s (or None)


async def _single(engine: Any, env: Env, n: int) -> Timing:
    e = engine
    await e.start()
    reader = env.connect()
    # Warm-up outside the timing (the pool's connection, its prepared statements).
    for i in range(20):
        await e.trigger("noop", make_payload(-1 - i), {})
    s0, c0, t0 = server_cpu(env, reader), time.process_time(), time.perf_counter()
    for i in range(n):
        await e.trigger("noop", make_payload(i), {})
    took = time.perf_counter() - t0
    client, s1 = time.process_time() - c0, server_cpu(env, reader)
    await e.close()
    return took, client, None if s0 is None or s1 is None else s1 - s0


async def _batch(engine: Any, env: Env, n: int, size: int) -> Timing:
    e = engine
    await e.start()
    reader = env.connect()
    # Warm-up outside the timing: the first batch handle's token signing imports jwt and
    # cryptography (~0.5 s once per process, not per batch).
    e.public_token(["read:batch:warmup"])
    s0, c0, t0 = server_cpu(env, reader), time.process_time(), time.perf_counter()
    for start in range(0, n, size):
        entries = [
            {"task": "noop", "payload": make_payload(i), "options": {}}
            for i in range(start, min(start + size, n))
        ]
        await e.batch_trigger(entries, {})
    took = time.perf_counter() - t0
    client, s1 = time.process_time() - c0, server_cpu(env, reader)
    await e.close()
    return took, client, None if s0 is None or s1 is None else s1 - s0


def _sync(engine: Any, env: Env, n: int) -> Timing:
    """The adapter's shape: no coroutine spans the runs; each is its own run_until_complete."""
    del engine  # the SDK finds the process's engine itself, as the adapter's calls do
    import tasks.noop

    loop = asyncio.new_event_loop()
    try:
        # Warm-up outside the timing: the first trigger starts the engine (migrations).
        for i in range(20):
            loop.run_until_complete(tasks.noop.noop.trigger(make_payload(-1 - i)))
        reader = env.connect()
        payloads = [make_payload(i) for i in range(n)]
        s0, c0, t0 = server_cpu(env, reader), time.process_time(), time.perf_counter()
        for p in payloads:
            p["ts"] = time.time()
            loop.run_until_complete(tasks.noop.noop.trigger(p))
        took = time.perf_counter() - t0
        client, s1 = time.process_time() - c0, server_cpu(env, reader)
        import shipyard

        loop.run_until_complete(shipyard.aclose())
    finally:
        loop.close()
    return took, client, None if s0 is None or s1 is None else s1 - s0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--mode", choices=["both", "single", "batch", "sync"], default="both")
    add_backend_arg(ap)
    a = ap.parse_args()
    result: dict[str, object] = {
        "bench": "trigger_throughput",
        "backend": a.backend,
        "runs": a.runs,
    }
    for mode in ("single", "batch", "sync"):
        if a.mode != mode and (a.mode != "both" or mode == "sync"):
            continue
        env = Env(f"trigger-{mode}", a.backend)
        try:
            engine = env.engine()
            if mode == "single":
                took, client, server = asyncio.run(_single(engine, env, a.runs))
            elif mode == "sync":
                took, client, server = _sync(engine, env, a.runs)
            else:
                took, client, server = asyncio.run(_batch(engine, env, a.runs, a.batch_size))
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
        result[f"{mode}_client_cpu_us"] = round(1e6 * client / a.runs, 1)
        result[f"{mode}_server_cpu_us"] = (
            None if server is None else round(1e6 * server / a.runs, 1)
        )
    emit(
        result,
        f"trigger [{a.backend}] {a.runs} runs: single {result.get('single_per_s')}/s, "
        f"batch of {a.batch_size} {result.get('batch_per_s')}/s; CPU µs/run client/server: "
        f"single {result.get('single_client_cpu_us')}/{result.get('single_server_cpu_us')}, "
        f"batch {result.get('batch_client_cpu_us')}/{result.get('batch_server_cpu_us')}; "
        f"sync (the peers adapter's shape) {result.get('sync_per_s')}/s, CPU µs/run "
        f"{result.get('sync_client_cpu_us')}/{result.get('sync_server_cpu_us')}",
    )


if __name__ == "__main__":
    main()
