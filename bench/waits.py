"""Durable waits: memory per parked run, token resume latency, trigger_and_wait round trip.

One process holds the engine and an in-process worker (so the clocks of "completed" and
"continued" are the same ``perf_counter``):

* parked: N runs each park at ``wait.for_token`` in one worker (concurrency 500); RSS after
  all are parked minus RSS after they were triggered (before the worker started), divided by
  N; ``parks_per_s``: (N - 1) / (last park - first park), and this process's CPU per park.
  Once each part's worker has started, the collector is set up as ``shipyard worker`` sets
  up its process (``worker/heap.py``; ``--no-worker-heap``: CPython's defaults, as before:
  there the latencies moved with the size of the heap, e.g. whether PyJWT was imported);
  then ``complete_token_ms_p50_parked``: 50 of them are completed one by one, each call
  timed, the rest still parked (a completion's cost must not grow with the runs parked);
* resume: a run parks at a token; the bench completes the token and the task notes when its
  code continues (sequential, ``--samples`` times), p50/p99;
* round trip: one parent runs ``trigger_and_wait`` of a no-op child ``--samples`` times in a
  row (suspend, child claim + run + finish, waitpoint resolve, parent re-claim), p50/p99.

    uv run python bench/waits.py --backend postgres --parked 10000 --samples 200
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import inspect
import resource
import statistics
import sys
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


async def enqueue(engine: Any, n: int) -> None:
    """Batch-trigger n parking runs. On PostgreSQL the first batch after ``worker.stop(grace=0)``
    used to fail now and then with "Run id collision on batch insert" (a pooled connection
    handed back with an unread result; fixed: the store closes a connection whose use was
    cancelled). Retried once, and said on stderr, so a return of the bug shows."""
    from shipyard.errors import ShipyardError

    entries = [{"task": "bench-park", "payload": None}] * n
    try:
        await engine.batch_trigger(entries, {})
    except ShipyardError as exc:
        print(f"retrying a batch after: {exc}", file=sys.stderr)
        await engine.batch_trigger(entries, {})


def count_store_calls(store: Any) -> collections.Counter[str]:
    """Count the calls of the store's public coroutine methods (wrapping this instance)."""
    counts: collections.Counter[str] = collections.Counter()
    for name in dir(type(store)):
        method = getattr(store, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(method):
            continue

        async def counted(*args: Any, _name: str = name, _method: Any = method) -> Any:
            counts[_name] += 1
            return await _method(*args)

        setattr(store, name, counted)
    return counts


async def run(args: argparse.Namespace, env: Env) -> dict[str, Any]:
    from shipyard import task, wait

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
    try:
        seen = (parked_events, tokens, resumed)
        await _parts(args, engine, result, (park, parent), seen, round_trips)
    finally:
        # Closed here, not left to asyncio.run: its cancellation of the pool's tasks at exit
        # sometimes never returned (the process hung after the last part, its line unprinted).
        await engine.close()
    return result


async def _parts(
    args: argparse.Namespace,
    engine: Any,
    result: dict[str, Any],
    tasks: tuple[Any, Any],
    seen: tuple[dict[str, asyncio.Event], dict[str, str], dict[str, float]],
    round_trips: list[float],
) -> None:
    parts = set(args.parts.split(","))
    if parts & {"resume", "round-trip"}:
        await _latencies(
            args,
            engine,
            result,
            parts,
            tasks,
            seen,
            round_trips,
        )
    # The stop after the latencies sometimes leaves a pooled connection out of step on
    # PostgreSQL (docs/benchmarks.md, "Found and left"): --parts park measures parking alone.
    if "park" in parts:
        await _parking(args, engine, result, seen[1])


async def _latencies(
    args: argparse.Namespace,
    engine: Any,
    result: dict[str, Any],
    parts: set[str],
    tasks: tuple[Any, Any],
    seen: tuple[dict[str, asyncio.Event], dict[str, str], dict[str, float]],
    round_trips: list[float],
) -> None:
    from shipyard.worker.heap import freeze_startup_heap
    from shipyard.worker.worker import Worker

    park, parent = tasks
    parked_events, tokens, resumed = seen
    # -- resume latency -------------------------------------------------------------------
    worker = Worker(engine, concurrency=50, poll_interval=0.5)
    await worker.start()
    if args.worker_heap:
        freeze_startup_heap()  # as `shipyard worker` does (see _parking)
    latencies = []
    failed = 0
    for _ in range(args.samples if "resume" in parts else 0):
        handle = await park.trigger(None)
        parked_events[handle.id] = asyncio.Event()
        try:
            await asyncio.wait_for(parked_events[handle.id].wait(), 10)
        except TimeoutError:  # it did not park (failed: see resume_failed)
            failed += 1
            continue
        await asyncio.sleep(0.005)  # let the worker reach the park
        t0 = time.perf_counter()
        await engine.complete_token(tokens[handle.id], {"ok": True})
        final = await engine.wait_for_final(handle.id, timeout=10)
        if handle.id not in resumed:
            # The run ended without continuing (seen on a loaded shared server: a token just
            # created read back as unknown, WaitpointNotFoundError). Counted, not timed.
            print(f"resume sample failed: {final.status} {final.error}", file=sys.stderr)
            failed += 1
            continue
        latencies.append(resumed[handle.id] - t0)
    result["resume_failed"] = failed
    if latencies:
        result["resume_ms_p50"] = round(pct(latencies, 50) * 1000, 2)
        result["resume_ms_p99"] = round(pct(latencies, 99) * 1000, 2)

    # -- trigger_and_wait round trip ------------------------------------------------------
    if "round-trip" not in parts:
        await worker.stop(grace=0)
        return
    calls = count_store_calls(engine.store)
    handle = await parent.trigger(args.samples)
    await engine.wait_for_final(handle.id, timeout=120)
    # Store calls per trigger_and_wait (every service of the worker included, so a floor of
    # the periodic ones is in there too): each is one or more round trips (docs/benchmarks.md).
    result["store_calls_per_trigger_and_wait"] = {
        name: round(n / args.samples, 2)
        for name, n in sorted(calls.items())
        if n >= args.samples / 2
    }
    calls.clear()
    result["trigger_and_wait_ms_p50"] = round(pct(round_trips, 50) * 1000, 2)
    result["trigger_and_wait_ms_p99"] = round(pct(round_trips, 99) * 1000, 2)
    result["trigger_and_wait_ms_mean"] = round(statistics.mean(round_trips) * 1000, 2)
    await worker.stop(grace=0)


async def _parking(
    args: argparse.Namespace, engine: Any, result: dict[str, Any], tokens: dict[str, str]
) -> None:
    from shipyard.worker.heap import freeze_startup_heap
    from shipyard.worker.worker import Worker

    # -- memory per parked run ------------------------------------------------------------
    for _ in range(max(1, args.parked // 1000)):
        await enqueue(engine, 1000)
    before = rss_kb()
    # Every run stays parked in this worker (SHIPYARD_MAX_PARKED's default, 10,000, would let
    # the oldest go past it, and the count below would never be reached).
    worker = Worker(engine, concurrency=500, poll_interval=0.2, max_parked=args.parked)
    started = time.perf_counter()
    await worker.start()
    if args.worker_heap:
        # What `shipyard worker` does once started (worker/heap.py): the parked runs' heap is
        # this process's, and its full collections (~50-80 ms each, 5 in 5,000 parks) were
        # a tenth of the parking's CPU here, where the worker process makes none.
        freeze_startup_heap()
    first = None
    count, done = 0, started
    while len(worker.parked) < args.parked and time.perf_counter() - started < args.timeout:
        if first is None and worker.parked:
            first, cpu0 = time.perf_counter(), time.process_time()
        if len(worker.parked) != count:
            # The last park so far: runs that fail instead of parking (the stale pooled
            # connection after stop(grace=0), see docs/benchmarks.md) do not stretch the rate.
            count, done, cpu1 = len(worker.parked), time.perf_counter(), time.process_time()
        await asyncio.sleep(0.005)
    if len(worker.parked) != count:
        count, done, cpu1 = len(worker.parked), time.perf_counter(), time.process_time()
    parked = len(worker.parked)
    after = rss_kb()
    result["parked"] = parked
    result["park_all_s"] = round(done - started, 2)
    # The rate from the first parked run to the last: worker start and registration (which
    # can wait for locks the previous worker's abrupt stop left) are not parking.
    span = done - first if first is not None else 0.0
    result["parks_per_s"] = round((parked - 1) / span, 1) if span > 0 else None
    # CPU of this process (engine + worker + bench) per parked run: less sensitive to load.
    result["park_cpu_us_per_run"] = (
        round(1e6 * (cpu1 - cpu0) / parked, 1) if first is not None else None
    )
    result["rss_before_kb"] = before
    result["rss_after_kb"] = after
    result["rss_per_parked_kb"] = round((after - before) / max(1, len(worker.parked)), 2)
    result["worker_heap"] = args.worker_heap
    # -- a token's completion with every other run still parked ----------------------------
    # It used to re-check every WAITING run of the environment (O(parked) per completion).
    spent = []
    for run_id in list(worker.parked)[:50]:
        token = tokens.get(run_id)
        if token is None:
            continue
        t0 = time.perf_counter()
        await engine.complete_token(token, {"ok": True})
        spent.append(time.perf_counter() - t0)
    if spent:
        result["complete_token_ms_p50_parked"] = round(pct(spent, 50) * 1000, 2)
    await worker.stop(grace=0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parked", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument(
        "--parts",
        default="resume,round-trip,park",
        help="which parts to run (comma-separated): resume, round-trip, park",
    )
    ap.add_argument(
        "--no-worker-heap",
        dest="worker_heap",
        action="store_false",
        help="leave the collector as it is (CPython's defaults, as before), instead of setting "
        "it up as `shipyard worker` does once its worker has started",
    )
    add_backend_arg(ap)
    args = ap.parse_args()
    env = Env("waits", args.backend)
    try:
        result = asyncio.run(run(args, env))
    finally:
        env.cleanup(args.keep)
    emit(
        result,
        f"resume p50 {result.get('resume_ms_p50')} ms p99 {result.get('resume_ms_p99')} ms; "
        f"trigger_and_wait p50 {result.get('trigger_and_wait_ms_p50')} ms "
        f"p99 {result.get('trigger_and_wait_ms_p99')} ms; "
        f"{result.get('rss_per_parked_kb')} KB RSS per parked run ({result.get('parked')} "
        f"parked, {result.get('parks_per_s')} parks/s, {result.get('park_cpu_us_per_run')} us "
        f"CPU each); a token's completion with them parked p50 "
        f"{result.get('complete_token_ms_p50_parked')} ms",
    )


if __name__ == "__main__":
    main()
