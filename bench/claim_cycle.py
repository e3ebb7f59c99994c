"""Claim → finish cycle cost: the store's two hot statements timed alone, no worker.

Queues N runs with ``batch_trigger``, then repeats: claim ``--batch`` runs (``run_claim``),
finish them (``run_finish_many``), timing each call. Prints the median and p90 time of a claim
and of a finish of a full batch, and the µs per run of the cycle: what a worker's slot costs
in the database alone (a worker adds its Python time and the wake-ups on top).

    uv run python bench/claim_cycle.py --backend postgres --runs 10000 --batch 100
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from _common import Env, add_backend_arg, emit, make_payload, server_cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--keep", action="store_true", help="keep the temp folder / database")
    add_backend_arg(ap)
    a = ap.parse_args()
    env = Env("claim-cycle", a.backend)
    try:
        asyncio.run(run(a, env))
    finally:
        env.cleanup(keep=a.keep)


async def run(a: argparse.Namespace, env: Env) -> None:
    from tasks.noop import noop

    from shipyard.engine.claims import AttemptResult, awaitable
    from shipyard.statuses import RunStatus

    engine = env.engine()
    await engine.start()
    # Registers a worker and its tasks like `shipyard worker` does, without starting one.
    worker_id = "bench-cycle"
    registration = await engine.register_worker(worker_id, doorbell_port=None, version="bench")
    for k in range(0, a.runs, 1000):
        await noop.batch_trigger([make_payload(i) for i in range(k, min(a.runs, k + 1000))])
    claims: list[float] = []
    finishes: list[float] = []
    done = 0
    reader = env.connect()
    server_cpu0 = server_cpu(env, reader)
    client_cpu0 = time.process_time()
    t0 = time.perf_counter()
    while done < a.runs:
        t = time.perf_counter()
        claimed = await engine.claim_runs(
            worker_id, registration.task_ids, a.batch, 60_000, "bench"
        )
        claims.append(time.perf_counter() - t)
        if not claimed:
            break
        results = [
            AttemptResult(
                run_id=r.id,
                attempt_number=r.attempt_number,
                status=RunStatus.COMPLETED,
                attempt_status="COMPLETED",
                output=r.payload,
                awaitable=awaitable(r),  # as the worker says it
            )
            for r in claimed
        ]
        t = time.perf_counter()
        accepted = await engine.finish_attempts(worker_id, results)
        finishes.append(time.perf_counter() - t)
        done += sum(accepted)
    elapsed = time.perf_counter() - t0
    client_cpu = time.process_time() - client_cpu0
    server_cpu1 = server_cpu(env, reader)
    server_cpu_s = None if server_cpu0 is None or server_cpu1 is None else server_cpu1 - server_cpu0
    await engine.stop_worker(worker_id)
    await engine.close()

    def ms(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    emit(
        {
            "bench": "claim_cycle",
            "backend": a.backend,
            "runs": done,
            "batch": a.batch,
            "claim_ms_p50": ms(claims, 0.5),
            "claim_ms_p90": ms(claims, 0.9),
            "finish_ms_p50": ms(finishes, 0.5),
            "finish_ms_p90": ms(finishes, 0.9),
            "cycle_us_per_run": round(1e6 * elapsed / max(done, 1), 1),
            "runs_per_s": round(done / elapsed),
            "mean_claim_ms": round(1000 * statistics.mean(claims), 2),
            # CPU time, less sensitive to a loaded machine than the wall clock: the bench
            # process (Python side of the store) and the database server's backends.
            "client_cpu_us_per_run": round(1e6 * client_cpu / max(done, 1), 1),
            "server_cpu_us_per_run": None
            if server_cpu_s is None
            else round(1e6 * server_cpu_s / max(done, 1), 1),
        },
        f"claim_cycle [{a.backend}] {done} runs in batches of {a.batch}: claim p50 "
        f"{ms(claims, 0.5)} ms, finish p50 {ms(finishes, 0.5)} ms, "
        f"{1e6 * elapsed / max(done, 1):.0f} µs/run ({done / elapsed:,.0f} runs/s, one "
        "connection); "
        f"CPU per run: client {1e6 * client_cpu / max(done, 1):.0f} µs, server "
        + ("n/a" if server_cpu_s is None else f"{1e6 * server_cpu_s / max(done, 1):.0f} µs"),
    )


if __name__ == "__main__":
    main()
