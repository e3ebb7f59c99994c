"""Durable waits: memory per parked run, token resume latency, trigger_and_wait round trip.

One process holds the engine and an in-process worker (so the clocks of "completed" and
"continued" are the same ``perf_counter``):

* parked: N runs each park at ``wait.for_token`` in one worker; RSS after all are parked
  minus RSS after they were triggered (before the worker started), divided by N;
* resume: a run parks at a token; the bench completes the token and the task notes when its
  code continues (sequential, ``--samples`` times), p50/p99;
* round trip: one parent runs ``trigger_and_wait`` of a no-op child ``--samples`` times in a
  row (suspend, child claim + run + finish, waitpoint resolve, parent re-claim), p50/p99.

    uv run python bench/waits.py --backend postgres --parked 10000 --samples 200
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time
from typing import Any

from _common import Env, add_backend_arg, emit


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run(args: argparse.Namespace, env: Env) -> dict[str, Any]:
    from shipyard import task, wait
    from shipyard.worker.worker import Worker

    engine = env.engine()
    await engine.start()
    resumed: dict[str, float] = {}
    parked_events: dict[str, asyncio.Event] = {}
    tokens: dict[str, str] = {}

    def on_wait(ctx: Any) -> None:
        event = parked_events.get(ctx.run.id)
        if event is not None:
            event.set()

    @task(id="bench-park", on_wait=on_wait)
    async def park(payload: Any, ctx: Any) -> None:
        token = await wait.create_token()
        tokens[ctx.run.id] = token.id
        await wait.for_token(token)
        resumed[ctx.run.id] = time.perf_counter()

    @task(id="bench-child")
    async def child(payload: Any) -> None:
        return None

    round_trips: list[float] = []

    @task(id="bench-parent")
    async def parent(payload: Any) -> None:
        for _ in range(payload):
            t0 = time.perf_counter()
            await child.trigger_and_wait(None)
            round_trips.append(time.perf_counter() - t0)

    result: dict[str, Any] = {"bench": "waits", "backend": env.backend}

    # -- resume latency -------------------------------------------------------------------
    worker = Worker(engine, concurrency=50, poll_interval=0.5)
    await worker.start()
    latencies = []
    for _ in range(args.samples):
        handle = await park.trigger(None)
        parked_events[handle.id] = asyncio.Event()
        await asyncio.wait_for(parked_events[handle.id].wait(), 10)
        await asyncio.sleep(0.005)  # let the worker reach the park
        t0 = time.perf_counter()
        await engine.complete_token(tokens[handle.id], {"ok": True})
        await engine.wait_for_final(handle.id, timeout=10)
        latencies.append(resumed[handle.id] - t0)
    result["resume_ms_p50"] = round(pct(latencies, 50) * 1000, 2)
    result["resume_ms_p99"] = round(pct(latencies, 99) * 1000, 2)

    # -- trigger_and_wait round trip ------------------------------------------------------
    handle = await parent.trigger(args.samples)
    await engine.wait_for_final(handle.id, timeout=120)
    result["trigger_and_wait_ms_p50"] = round(pct(round_trips, 50) * 1000, 2)
    result["trigger_and_wait_ms_p99"] = round(pct(round_trips, 99) * 1000, 2)
    result["trigger_and_wait_ms_mean"] = round(statistics.mean(round_trips) * 1000, 2)
    await worker.stop(grace=0)

    # -- memory per parked run ------------------------------------------------------------
    await engine.batch_trigger([{"task": "bench-park", "payload": None}] * 1000, {})
    for _ in range(args.parked // 1000 - 1):
        await engine.batch_trigger([{"task": "bench-park", "payload": None}] * 1000, {})
    before = rss_kb()
    worker = Worker(engine, concurrency=500, poll_interval=0.2)
    started = time.perf_counter()
    await worker.start()
    for _ in range(int(args.timeout / 0.2)):
        if len(worker.parked) >= args.parked:
            break
        await asyncio.sleep(0.2)
    parked_s = time.perf_counter() - started
    after = rss_kb()
    result["parked"] = len(worker.parked)
    result["park_all_s"] = round(parked_s, 1)
    result["rss_before_kb"] = before
    result["rss_after_kb"] = after
    result["rss_per_parked_kb"] = round((after - before) / max(1, len(worker.parked)), 2)
    await worker.stop(grace=0)
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parked", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--keep", action="store_true")
    add_backend_arg(ap)
    args = ap.parse_args()
    env = Env("waits", args.backend)
    try:
        result = asyncio.run(run(args, env))
    finally:
        env.cleanup(args.keep)
    emit(
        result,
        f"resume p50 {result['resume_ms_p50']} ms p99 {result['resume_ms_p99']} ms; "
        f"trigger_and_wait p50 {result['trigger_and_wait_ms_p50']} ms "
        f"p99 {result['trigger_and_wait_ms_p99']} ms; "
        f"{result['rss_per_parked_kb']} KB RSS per parked run ({result['parked']} parked)",
    )


if __name__ == "__main__":
    main()
