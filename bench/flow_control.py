"""Flow-control burn-down: 10,000 no-op runs through concurrency limits, vs. the unlimited drain.

Scenarios (each on a fresh database, workers started after the runs are queued, as
``burndown.py`` does):

* ``unlimited`` — the task's own default queue ``task/noop`` (no limit of its own: capped at
  the environment limit, 100 by default — a single queue never runs more than the base
  environment limit, whatever ``burst_factor`` says).
* ``queue50`` — the same task routed with ``queue="fc-limit-50"``, a queue defined with
  ``concurrency_limit=50``.
* ``keys100`` — ``concurrency_key=f"k{i % 100}"`` on ``fc-keys-1`` (``concurrency_limit=1``):
  100 sub-queues of one slot each, so at most 100 at once.
* ``keys100_default`` — the same 100 keys on the task's default queue (each key capped at
  the environment limit): the cost of 100 groups per claim without a tight per-key limit.

The named queues are registered in the database before the runs are triggered
(``store.queue_upsert``, exactly what a worker whose code defines ``queue(name=...,
concurrency_limit=...)`` does at start); the benchmark's task folder stays ``bench/tasks``.

Drain = (N − 1) / (last − first ``attempts.started_at``) like ``burndown.py`` (and from the
task-side records). Ratios are to the median ``unlimited`` drain of the same invocation.

Checks per run: every run COMPLETED exactly once (runs, attempts, task records); limits held —
(1) sampled every ~10 ms during the drain in one statement (one snapshot): the most runs in
DEQUEUED/EXECUTING in any (queue, key) group and in total, next to the slot counters of the
same snapshot (they must agree); (2) afterwards from ``attempts`` [started_at, finished_at]
intervals (ms, a finish sorted before a start at the same ms). The interval sweep is a bound
from the worker's clock readings, not from the slot transactions: a claim's ``now`` is read
before it waits for the lock, so a sweep can show one run more than ever held a slot.

    uv run python bench/flow_control.py                       # sqlite, 1 worker, 3 reps
    uv run python bench/flow_control.py --backend postgres --workers 2
    uv run python bench/flow_control.py --scenarios unlimited,keys100 --reps 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

from _common import Env, Workers, add_backend_arg, emit, make_payload, pct


@dataclass(frozen=True)
class Scenario:
    name: str
    queue: str | None  # None: the task's default queue task/noop
    limit: int | None  # the named queue's concurrency_limit
    keys: int  # 0: no concurrency key


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("unlimited", None, None, 0),
        Scenario("queue50", "fc-limit-50", 50, 0),
        Scenario("keys100", "fc-keys-1", 1, 100),
        Scenario("keys100_default", None, None, 100),
    )
}

ENV_BURST = 200  # environment_concurrency_limit 100 x burst_factor 2.0 (defaults)

# One statement, hence one snapshot on both backends.
SAMPLE_SQL = """
SELECT
  (SELECT COALESCE(max(n), 0) FROM (
     SELECT count(*) AS n FROM runs WHERE status IN ('DEQUEUED', 'EXECUTING')
     GROUP BY queue, COALESCE(concurrency_key, '')) AS g),
  (SELECT count(*) FROM runs WHERE status IN ('DEQUEUED', 'EXECUTING')),
  (SELECT COALESCE(max(running), 0) FROM concurrency_slots),
  (SELECT COALESCE(sum(running), 0) FROM environment_slots)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument(
        "--sample-ms",
        type=float,
        default=10.0,
        help="limit sampling period; 0 = no sampling (interval sweep only)",
    )
    ap.add_argument("--timeout", type=float, default=180.0)
    add_backend_arg(ap)
    a = ap.parse_args()
    names = [n.strip() for n in a.scenarios.split(",") if n.strip()]
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")

    results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for rep in range(a.reps):
        for name in names:  # interleaved, so machine load hits every scenario alike
            env = Env(f"flow-{name}", a.backend)
            try:
                r = run_one(a, env, SCENARIOS[name], rep)
            finally:
                env.cleanup()
            results[name].append(r)
    summarize(a, names, results)


def run_one(a: argparse.Namespace, env: Env, sc: Scenario, rep: int) -> dict[str, Any]:
    engine = env.engine()

    async def enqueue() -> float:
        from shipyard.store.protocol import QueueDefinition, QueueUpsertParams

        await engine.start()
        if sc.queue is not None:
            # What a worker whose code says queue(name=..., concurrency_limit=...) registers.
            await engine.store.queue_upsert(
                QueueUpsertParams(
                    engine.environment, [QueueDefinition(sc.queue, sc.limit)], engine.clock()
                )
            )
        t0 = time.perf_counter()
        for start in range(0, a.runs, 1000):
            entries = []
            for i in range(start, min(start + 1000, a.runs)):
                options: dict[str, Any] = {}
                if sc.queue is not None:
                    options["queue"] = sc.queue
                if sc.keys:
                    options["concurrency_key"] = f"k{i % sc.keys}"
                entries.append({"task": "noop", "payload": make_payload(i), "options": options})
            await engine.batch_trigger(entries, {})
        took = time.perf_counter() - t0
        await engine.close()
        return took

    enqueue_s = asyncio.run(enqueue())
    conn = env.connect()
    limit = sc.limit if sc.limit is not None else 100  # per group; the environment limit
    samples = 0
    max_group = max_total = max_group_counter = max_env_counter = 0
    counter_mismatch = 0
    workers = Workers(env, a.workers, a.concurrency)
    try:
        t_launch = time.time()
        deadline = t_launch + a.timeout
        done = 0
        next_count = 0.0
        while time.time() < deadline:
            if a.sample_ms > 0:
                g, total, gc, ec = (int(v) for v in conn.execute(SAMPLE_SQL).fetchone())
                samples += 1
                max_group, max_total = max(max_group, g), max(max_total, total)
                max_group_counter = max(max_group_counter, gc)
                max_env_counter = max(max_env_counter, ec)
                counter_mismatch += ec != total
            now = time.time()
            if now >= next_count:
                next_count = now + 0.05
                done = env.count_completed(conn)
                if done >= a.runs:
                    break
                if not workers.alive():
                    raise RuntimeError("a worker exited:\n" + workers.log_tail())
            time.sleep(a.sample_ms / 1000 if a.sample_ms > 0 else 0.05)
        t_done = time.time()
    finally:
        workers.stop()

    starts = sorted(r[1] for r in env.records())
    span = starts[-1] - starts[0] if len(starts) > 1 else 0.0
    intervals = conn.execute(
        "SELECT r.queue, COALESCE(r.concurrency_key, ''), a.started_at, a.finished_at "
        "FROM attempts a JOIN runs r ON r.id = a.run_id"
    ).fetchall()
    db_first = min(row[2] for row in intervals)
    db_last = max(row[2] for row in intervals)
    db_span = (db_last - db_first) / 1000
    sweep_total, sweep_group = sweep(intervals)
    # Slot hold = claim -> finish as the worker stamped them (ms); Little's law: running ~=
    # drain x hold, so a limit L caps the drain near L / hold.
    holds = [row[3] - row[2] for row in intervals if row[3] is not None]
    leftover = conn.execute(
        "SELECT (SELECT COALESCE(sum(running), 0) FROM concurrency_slots), "
        "(SELECT COALESCE(sum(running), 0) FROM environment_slots)"
    ).fetchone()
    check = env.verify_once(conn, a.runs)
    conn.close()
    cap_total = min(limit * max(sc.keys, 1), ENV_BURST)
    limits_held = (
        max_group <= limit
        and max_total <= cap_total
        and sweep_group <= limit
        and sweep_total <= cap_total
        and counter_mismatch == 0
        and max_group_counter <= limit
        and int(leftover[0]) == 0
        and int(leftover[1]) == 0
    )
    result = {
        "bench": "flow_control",
        "scenario": sc.name,
        "rep": rep,
        "backend": a.backend,
        "runs": a.runs,
        "workers": a.workers,
        "concurrency": a.concurrency,
        "queue": sc.queue or "task/noop",
        "group_limit": limit,
        "keys": sc.keys,
        "enqueue_s": round(enqueue_s, 3),
        "complete": done >= a.runs,
        "drain_db_per_s": round((a.runs - 1) / db_span, 1) if db_span else None,
        "drain_per_s": round((len(starts) - 1) / span, 1) if span else None,
        "drain_wall_per_s": round(done / (t_done - t_launch), 1),
        "hold_ms_mean": round(statistics.fmean(holds), 1) if holds else None,
        "hold_ms_p50": pct(holds, 0.5),
        "hold_ms_p95": pct(holds, 0.95),
        "samples": samples,
        "sampled_max_group": max_group,
        "sampled_max_total": max_total,
        "sampled_max_group_counter": max_group_counter,
        "sampled_max_env_counter": max_env_counter,
        "counter_mismatch_samples": counter_mismatch,
        "leftover_slots": [int(leftover[0]), int(leftover[1])],
        "sweep_max_total": sweep_total,
        "sweep_max_group": sweep_group,
        "limits_held": limits_held,
        **check,
    }
    emit(
        result,
        f"flow_control [{a.backend}] {sc.name} rep {rep}: drain {result['drain_db_per_s']}/s "
        f"(records {result['drain_per_s']}/s); max running per group {max_group} (limit "
        f"{limit}), total {max_total} over {samples} samples; sweep {sweep_group}/"
        f"{sweep_total}; slot hold mean {result['hold_ms_mean']} ms; "
        f"exactly once: {check['exactly_once']}, limits held: {limits_held}",
    )
    return result


def sweep(rows: list[tuple[Any, ...]]) -> tuple[int, int]:
    """Max overlapping [started_at, finished_at] intervals: in total, and in any one group."""
    events: list[tuple[int, int, tuple[str, str]]] = []
    for queue, key, started, finished in rows:
        events.append((int(started), 1, (queue, key)))
        events.append((int(finished if finished is not None else started), -1, (queue, key)))
    events.sort(key=lambda e: (e[0], e[1]))  # a finish before a start at the same ms
    total = best_total = best_group = 0
    per: dict[tuple[str, str], int] = {}
    for _, delta, group in events:
        total += delta
        per[group] = per.get(group, 0) + delta
        best_total = max(best_total, total)
        best_group = max(best_group, per[group])
    return best_total, best_group


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} [{min(values):,.0f}–{max(values):,.0f}]"


def summarize(a: argparse.Namespace, names: list[str], results: dict[str, list[dict]]) -> None:
    base = results.get("unlimited")
    base_median = statistics.median(r["drain_db_per_s"] for r in base) if base else None
    print(
        f"\nflow_control [{a.backend}] {a.runs} runs, {a.workers} worker proc(s) x "
        f"{a.concurrency}, median of {a.reps} [min–max], drain from attempts.started_at:"
    )
    summary = []
    for name in names:
        rs = results[name]
        rates = [r["drain_db_per_s"] for r in rs]
        ratio = statistics.median(rates) / base_median if base_median else None
        # Per-rep ratios too: each rep's scenario against the same rep's unlimited drain.
        rep_ratios = (
            [r["drain_db_per_s"] / b["drain_db_per_s"] for r, b in zip(rs, base, strict=True)]
            if base
            else []
        )
        ok = all(r["exactly_once"] and r["limits_held"] for r in rs)
        line = {
            "bench": "flow_control_summary",
            "backend": a.backend,
            "workers": a.workers,
            "scenario": name,
            "drain_db_per_s": rates,
            "median": statistics.median(rates),
            "ratio": round(ratio, 3) if ratio else None,
            "rep_ratios": [round(x, 3) for x in rep_ratios],
            "hold_ms_mean": [r["hold_ms_mean"] for r in rs],
            "max_group": max(r["sampled_max_group"] for r in rs),
            "max_total": max(r["sampled_max_total"] for r in rs),
            "sweep_max_group": max(r["sweep_max_group"] for r in rs),
            "all_exactly_once_and_limits_held": ok,
        }
        summary.append(line)
        print(json.dumps(line))
        print(
            f"  {name:<16} {spread(rates):>26} runs/s  ratio {line['ratio']}  "
            f"hold {statistics.median(line['hold_ms_mean']):.0f} ms  "
            f"max running/group {line['max_group']} total {line['max_total']}  "
            f"ok={ok}",
            flush=True,
        )


if __name__ == "__main__":
    main()
