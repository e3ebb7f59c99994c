"""Depth scaling: does a deep backlog on one queue slow the claims of every other queue?

For each scenario and each depth (10³ and ``--depth``, in that order, each in a fresh
database), one ``shipyard worker`` process (concurrency 100) starts, then ``DEPTH`` runs are
queued through the public API (``batch_trigger``, 1,000 per call) where no claim may take them:

* ``paused`` — on a paused queue (``depth-paused``);
* ``limited`` — behind a queue with concurrency limit 1 (``depth-limited``) whose one slot is
  held by a long run.

The runs table is analyzed once before the backlog, after one warm-up run (statistics as
autovacuum leaves them when it last ran on a short queue: no run queued; ``--no-prior-analyze``
skips it). Right after the insert (no ANALYZE, no VACUUM: the claim path must not need them),
on another queue (``depth-drain``):

* **drain** — ``--drain`` no-op runs queued while that queue is paused, then resumed; drain/s =
  (runs − 1) / (last task start − first task start), from the task-side records;
* **latency** — ``--rate`` runs/s triggered one at a time for ``--duration`` s; p50 / p99 of
  trigger → task start (``ts`` taken just before ``trigger``).

One JSON line per (backend, scenario, depth), then a table with the ratio deep ÷ shallow.

    uv run python bench/depth.py --backend postgres
    uv run python bench/depth.py --backend sqlite --depth 1000000 --drain 5000
    uv run python bench/depth.py --backend postgres --scenarios paused --depth 100000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from _common import Env, Workers, add_backend_arg, emit, make_payload, pct
from claim_cycle import server_cpu

SHALLOW = 1_000
BATCH = 1_000
DRAIN_BASE = 1_000_000  # record index of the first drain run (latency runs count from 0)
HOLD_S = 3_600.0  # the limited scenario's slot holder sleeps this long (killed at the end)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=1_000_000)
    ap.add_argument("--drain", type=int, default=5_000)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--scenarios", default="paused,limited")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument(
        "--no-prior-analyze",
        dest="prior_analyze",
        action="store_false",
        help="never ANALYZE (default: once after the warm-up run, before the backlog)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the databases (prints their URL)")
    add_backend_arg(ap)
    a = ap.parse_args()
    results = []
    for scenario in a.scenarios.split(","):
        for depth in (SHALLOW, a.depth):
            env = Env(f"depth-{scenario}", a.backend)
            try:
                results.append(run(a, env, scenario, depth))
            finally:
                if a.keep:
                    print(f"kept {env.url}", flush=True)
                env.cleanup(keep=a.keep)
    table(results)


def run(a: argparse.Namespace, env: Env, scenario: str, depth: int) -> dict[str, Any]:
    engine = env.engine()
    import tasks.depth  # noqa: F401  (defines the tasks and queues in this process)

    conn = env.connect()
    workers = Workers(env, 1, 100)
    worker_pid = workers.procs[0].pid

    async def drive() -> dict[str, Any]:
        deadline = time.time() + a.timeout + depth / 2_000
        await engine.start()
        # Warm-up: the worker has registered the tasks and queues, and claims.
        warm = await engine.trigger("depth-drain", make_payload(-1), {})
        await engine.wait_for_final(warm.id, timeout=a.timeout)
        if a.prior_analyze:
            # Statistics as autovacuum leaves them when it last ran on a short queue: they say
            # no run is queued. The backlog then arrives with no ANALYZE after it.
            conn.execute("ANALYZE runs")
            if a.backend == "sqlite":
                conn.commit()
        if scenario == "paused":
            await engine.pause_queue("depth-paused")
            task_id = "depth-paused"
        else:
            held = await engine.trigger("depth-limited", {"hold_s": HOLD_S}, {})
            while (await engine.retrieve_run(held.id)).status != "EXECUTING":
                if time.time() > deadline:
                    raise RuntimeError("the slot holder never started:\n" + workers.log_tail())
                await asyncio.sleep(0.02)
            task_id = "depth-limited"
        t = time.perf_counter()
        for start in range(0, depth, BATCH):
            entries = [
                {"task": task_id, "payload": {"i": i, "pad": "x" * 60}, "options": {}}
                for i in range(start, min(start + BATCH, depth))
            ]
            await engine.batch_trigger(entries, {})
        insert_s = time.perf_counter() - t

        # Drain: queue every run first (the queue paused), then let them go at once.
        await engine.pause_queue("depth-drain")
        ts = time.time()
        for start in range(0, a.drain, BATCH):
            entries = [
                {"task": "depth-drain", "payload": make_payload(DRAIN_BASE + i, ts), "options": {}}
                for i in range(start, min(start + BATCH, a.drain))
            ]
            await engine.batch_trigger(entries, {})
        cpu0 = (proc_cpu(worker_pid), server_cpu(env, conn))
        await engine.resume_queue("depth-drain")
        # A collapsed claim path drains slowly: give up after --timeout (what drained counts).
        drain_end = time.time() + a.timeout
        while count_drained(env) < a.drain and time.time() < drain_end:
            if not workers.alive():
                raise RuntimeError(f"the worker exited at depth {depth}:\n" + workers.log_tail())
            await asyncio.sleep(0.05)
        drained = count_drained(env)
        cpu1 = (proc_cpu(worker_pid), server_cpu(env, conn))

        # Latency at a steady rate.
        count = int(a.rate * a.duration)
        t0 = time.time() + 0.1
        for k in range(count):
            await asyncio.sleep(max(0.0, t0 + k / a.rate - time.time()))
            await engine.trigger("depth-drain", make_payload(k), {})
        latency_end = time.time() + a.timeout
        while len([r for r in env.records() if 0 <= r[0] < DRAIN_BASE]) < count:
            if time.time() > latency_end or not workers.alive():
                break  # reported as latency_runs < rate × duration
            await asyncio.sleep(0.05)
        await engine.close()
        # CPU per drained run (less sensitive to a shared machine than wall time): the worker
        # process, and the PostgreSQL backends serving this database (None for SQLite).
        server = None if cpu0[1] is None or cpu1[1] is None else cpu1[1] - cpu0[1]
        return {
            "insert_s": insert_s,
            "drained": drained,
            "worker_cpu_us_per_run": 1e6 * (cpu1[0] - cpu0[0]) / max(drained, 1),
            "server_cpu_us_per_run": None if server is None else 1e6 * server / max(drained, 1),
        }

    try:
        info = asyncio.run(drive())
    finally:
        workers.stop()
    recs = env.records()
    drain_starts = sorted(r[1] for r in recs if r[0] >= DRAIN_BASE)
    span = drain_starts[-1] - drain_starts[0] if len(drain_starts) > 1 else 0.0
    lats = [r[2] for r in recs if 0 <= r[0] < DRAIN_BASE]
    backlog = conn.execute(
        "SELECT count(*) FROM runs WHERE task_id IN ('depth-paused', 'depth-limited') "
        "AND status = 'QUEUED'"
    ).fetchone()[0]
    conn.close()
    result = {
        "bench": "depth",
        "backend": a.backend,
        "scenario": scenario,
        "depth": depth,
        "backlog_queued": backlog,
        "insert_s": round(info["insert_s"], 2),
        "insert_per_s": round(depth / info["insert_s"], 1),
        "drain": a.drain,
        "drained": info["drained"],
        "drain_per_s": round((len(drain_starts) - 1) / span, 1) if span else None,
        "worker_cpu_us_per_run": round(info["worker_cpu_us_per_run"]),
        "server_cpu_us_per_run": (
            None if info["server_cpu_us_per_run"] is None else round(info["server_cpu_us_per_run"])
        ),
        "rate": a.rate,
        "latency_runs": len(lats),
        "p50_ms": round(1000 * (pct(lats, 0.5) or 0.0), 2),
        "p99_ms": round(1000 * (pct(lats, 0.99) or 0.0), 2),
    }
    emit(
        result,
        f"depth [{a.backend}] {scenario} {depth:,} queued (inserted in {result['insert_s']} s, "
        f"{result['insert_per_s']:,.0f}/s): drain {result['drain_per_s']}/s, "
        f"trigger→start p50 {result['p50_ms']} ms p99 {result['p99_ms']} ms",
    )
    return result


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count_drained(env: Env) -> int:
    return sum(1 for r in env.records() if r[0] >= DRAIN_BASE)


def table(results: list[dict[str, Any]]) -> None:
    """Deep vs shallow per (backend, scenario): drain/s and p50/p99 with ratios."""
    print()
    print(
        "| backend | scenario | depth | insert | drain/s | p50 ms | p99 ms "
        "| worker / server CPU µs per run | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    shallow: dict[tuple[str, str], dict[str, Any]] = {}
    for r in results:
        key = (r["backend"], r["scenario"])
        ratio = ""
        if r["depth"] == SHALLOW:
            shallow[key] = r
        elif key in shallow and shallow[key]["drain_per_s"] and r["drain_per_s"]:
            s = shallow[key]
            ratio = (
                f" (÷{s['drain_per_s'] / r['drain_per_s']:.2f} drain, "
                f"×{r['p50_ms'] / max(s['p50_ms'], 0.01):.2f} p50)"
            )
        print(
            f"| {r['backend']} | {r['scenario']} | {r['depth']:,} | {r['insert_s']} s | "
            f"{r['drain_per_s']}{ratio} | {r['p50_ms']} | {r['p99_ms']} | "
            f"{r['worker_cpu_us_per_run']} / {r['server_cpu_us_per_run']} | {r['loadavg_1m']} |"
        )


if __name__ == "__main__":
    main()
