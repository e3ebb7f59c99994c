"""Chaos: drain runs while faults hit the workers; count what was lost or done twice.

Queues ``--runs`` runs of the ``chaos`` task (``tasks/chaos.py``: sleeps ``--task-ms``, records
each execution's start and end with its run id and attempt number), starts ``--workers``
worker processes (heartbeat 1 s, so a lost lease is reaped after 3 s) and injects a fault every
``--every`` seconds until ``--faults`` were injected or the runs are done:

* ``kill``: SIGKILL one worker's process group (round robin); a supervisor-like loop starts a
  replacement at once;
* ``terminate``: ``pg_terminate_backend`` of every connection to the bench's own PostgreSQL
  database except the driver's (the workers' pools, LISTEN and heartbeat connections). The
  shared server is never restarted and nobody else's connection is touched.

Then it waits for every run to reach a final status and checks:

* ``lost``: runs not COMPLETED (a run killed more often than its 50 attempts would be CRASHED);
* ``duplicated``: (run, attempt) pairs whose body started more than once: an attempt executed
  twice (must be 0; a killed attempt is retried as a *new* attempt, which is not a duplicate);
* ``attempts_ok``: every run's attempt rows are numbered 1..n with n = its attempt number, the
  last COMPLETED and the others CRASHED or FAILED, and every recorded execution has its row;
* ``recovery_s``: from the last fault to the last run completed.

    uv run python bench/chaos.py --fault kill --backend postgres
    uv run python bench/chaos.py --fault terminate --backend postgres
    uv run python bench/chaos.py --fault kill --backend sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import glob
import os
import signal
import subprocess
import sys
import time
from typing import Any

from _common import BENCH_DIR, Env, add_backend_arg, emit

FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELED", "EXPIRED", "TIMED_OUT", "SYSTEM_FAILURE")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--task-ms", type=float, default=20.0, help="how long each run sleeps")
    ap.add_argument("--fault", choices=["kill", "terminate"], default="kill")
    ap.add_argument("--every", type=float, default=2.0, help="seconds between faults")
    ap.add_argument("--faults", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=180.0)
    ap.add_argument("--keep", action="store_true", help="keep the temp folder / database")
    add_backend_arg(ap)
    a = ap.parse_args()
    if a.fault == "terminate" and a.backend != "postgres":
        ap.error("--fault terminate needs --backend postgres")
    env = Env("chaos", a.backend)
    try:
        run(a, env)
    finally:
        env.cleanup(keep=a.keep)


class Supervisor:
    """Worker processes, each in its own session; a killed one is replaced at once."""

    def __init__(self, env: Env, count: int, concurrency: int) -> None:
        self.cmd = [sys.executable, "-m", "shipyard", "worker", "--concurrency", str(concurrency)]
        self.log = open(env.dir / "workers.log", "ab")  # noqa: SIM115
        self.procs = [self._start() for _ in range(count)]
        self.kills = 0

    def _start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.cmd,
            cwd=BENCH_DIR,
            env={**os.environ, "SHIPYARD_HEARTBEAT_INTERVAL": "1"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill_one(self) -> None:
        """SIGKILL the next worker (its whole process group) and start its replacement."""
        index = self.kills % len(self.procs)
        proc = self.procs[index]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        self.procs[index] = self._start()
        self.kills += 1

    def replace_dead(self) -> None:
        """A worker that exited by itself is replaced too (and counted in the log)."""
        for i, proc in enumerate(self.procs):
            if proc.poll() is not None:
                self.procs[i] = self._start()

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for proc in self.procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
            end = time.time() + 5
            while time.time() < end and any(p.poll() is None for p in self.procs):
                time.sleep(0.02)
        self.log.close()


def terminate_backends(conn: Any) -> int:
    """End every connection to this bench's own database but ours; how many."""
    found = conn.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchone()
    return int(found[0])


def executions(env: Env) -> list[tuple[str, int, str, float]]:
    rows = []
    for path in glob.glob(str(env.rec / "chaos-*.txt")):
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) == 4:
                    rows.append((p[0], int(p[1]), p[2], float(p[3])))
    return rows


def run(a: argparse.Namespace, env: Env) -> None:
    engine = env.engine()
    import tasks.chaos  # noqa: F401  (defines "chaos" in this process)

    async def enqueue() -> None:
        await engine.start()
        for start in range(0, a.runs, 1000):
            entries = [
                {"task": "chaos", "payload": {"i": i, "ms": a.task_ms}, "options": {}}
                for i in range(start, min(start + 1000, a.runs))
            ]
            await engine.batch_trigger(entries, {})
        await engine.close()

    asyncio.run(enqueue())
    conn = env.connect()
    final_list = ", ".join(f"'{s}'" for s in FINAL)

    def final_count() -> int:
        row = conn.execute(f"SELECT count(*) FROM runs WHERE status IN ({final_list})").fetchone()
        return int(row[0])

    workers = Supervisor(env, a.workers, a.concurrency)
    faults = 0
    terminated = 0
    last_fault = time.time()
    t0 = time.time()
    try:
        next_fault = t0 + a.every
        deadline = t0 + a.timeout
        while time.time() < deadline:
            done = final_count()
            if done >= a.runs:
                break
            if faults < a.faults and time.time() >= next_fault:
                if a.fault == "kill":
                    workers.kill_one()
                else:
                    terminated += terminate_backends(conn)
                faults += 1
                last_fault = time.time()
                next_fault = last_fault + a.every
            workers.replace_dead()
            time.sleep(0.05)
        t_done = time.time()
    finally:
        workers.stop()
    result = check(a, env, conn)
    conn.close()
    result.update(
        {
            "fault": a.fault,
            "faults": faults,
            "connections_terminated": terminated,
            "drain_wall_s": round(t_done - t0, 2),
            "recovery_s": round(t_done - last_fault, 2) if faults else None,
        }
    )
    emit(
        result,
        f"chaos [{a.backend}] {a.fault} x{faults}: {a.runs} runs, lost {result['lost']}, "
        f"duplicated {result['duplicated']}, attempts ok {result['attempts_ok']}, "
        f"retried {result['runs_retried']}, recovery {result['recovery_s']} s, "
        f"wall {result['drain_wall_s']} s",
    )


def check(a: argparse.Namespace, env: Env, conn: Any) -> dict[str, Any]:
    statuses = dict(conn.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
    runs = {r[0]: (r[1], r[2]) for r in conn.execute("SELECT id, status, attempt_number FROM runs")}
    attempts: dict[str, list[tuple[int, str]]] = collections.defaultdict(list)
    for run_id, number, status in conn.execute(
        "SELECT run_id, number, status FROM attempts ORDER BY run_id, number"
    ):
        attempts[run_id].append((int(number), status))
    starts = collections.Counter(
        (run_id, attempt) for run_id, attempt, what, _ in executions(env) if what == "start"
    )
    duplicated = sum(1 for n in starts.values() if n > 1)
    bad_attempts = 0
    for run_id, (status, number) in runs.items():
        rows = attempts.get(run_id, [])
        numbers = [n for n, _ in rows]
        ok = numbers == list(range(1, int(number or 0) + 1))
        if status == "COMPLETED":
            ok = ok and rows[-1][1] == "COMPLETED"
            ok = ok and all(s in ("CRASHED", "FAILED") for _, s in rows[:-1])
        if not ok:
            bad_attempts += 1
    unrecorded = sum(
        1 for run_id, attempt in starts if attempt not in {n for n, _ in attempts.get(run_id, [])}
    )
    return {
        "bench": "chaos",
        "backend": a.backend,
        "runs": a.runs,
        "workers": a.workers,
        "statuses": statuses,
        "lost": a.runs - int(statuses.get("COMPLETED", 0)),
        "duplicated": duplicated,
        "runs_retried": sum(1 for _, number in runs.values() if int(number or 0) > 1),
        "attempts_ok": bad_attempts == 0 and unrecorded == 0,
        "runs_with_bad_attempts": bad_attempts,
        "executions_without_attempt_row": unrecorded,
    }


if __name__ == "__main__":
    main()
