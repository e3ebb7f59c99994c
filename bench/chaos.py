"""Chaos: drain runs while faults hit the workers; count what was lost or done twice.

An application (``chaos_load.py``, a thread with its own engine) queues half of ``--runs`` runs
of the ``chaos`` task (``tasks/chaos.py``: sleeps ``--task-ms``, records each execution's start
and end with its run id and attempt number) and triggers the other half in batches of 50 at a
steady rate while ``--workers`` worker processes (heartbeat 1 s, so a lost lease is reaped after
3 s) drain them; a fault is injected every ``--every`` seconds until ``--faults`` were
(``chaos_faults.py``):

* ``kill``: SIGKILL one worker's process group (round robin); a supervisor-like loop starts a
  replacement at once;
* ``terminate``: ``pg_terminate_backend`` of every connection to the bench's own PostgreSQL
  database except the driver's (the workers' pools, LISTEN and heartbeat connections, the
  application's pool). The shared server is never restarted; nobody else's connection is
  touched;
* ``pg-restart``: a PostgreSQL server of the bench's own (``PrivatePostgres``, never the
  machine's shared one) restarted with ``pg_ctl restart -m fast``, every other time ``-m
  immediate`` (a crash: WAL replayed on start);
* ``pool``: the private server's connection slots exhausted by other clients for ``--hold``
  seconds: a hog opens connections until the server refuses more ("too many clients"), the
  workers' and the application's connections are terminated, and the hog takes every slot they
  free, so nobody of the engine's can connect until the hog lets go (``max_connections`` 60);
* ``disk-full`` (SQLite): the database lives on a small filesystem of its own (a tmpfs of
  ``--disk-mb``, or a loop-mounted ext4 image where a tmpfs cannot be mounted); a filler file
  fills it up while runs are triggered and written, and is deleted ``--hold`` seconds later.

Then it waits for every run to reach a final status and checks:

* ``lost``: runs not COMPLETED, plus runs the application never got accepted (a run killed more
  often than its 50 attempts would be CRASHED);
* ``duplicated``: (run, attempt) pairs whose body started more than once: an attempt executed
  twice (must be 0; a killed attempt is retried as a *new* attempt, which is not a duplicate),
  plus payloads (``i``) with more than one run (a batch created twice);
* ``attempts_ok``: every run's attempt rows are numbered 1..n with n = its attempt number, the
  last COMPLETED and the others CRASHED or FAILED, and every recorded execution has its row;
* ``resume_s``: the longest time from a fault's end to the next run completed (how long the
  work stood still); ``recovery_s``: from the last fault's end to the last run final;
* what the application and the workers said: errors by type with their first message, worker
  log lines at ERROR, tracebacks, workers that exited by themselves.

    uv run python bench/chaos.py --fault kill --backend postgres
    uv run python bench/chaos.py --fault terminate --backend postgres
    uv run python bench/chaos.py --fault pg-restart
    uv run python bench/chaos.py --fault pool
    uv run python bench/chaos.py --fault disk-full
    uv run python bench/chaos.py --fault kill --backend sqlite
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import time
from pathlib import Path
from typing import Any

from _common import Env, add_backend_arg, emit
from chaos_faults import (
    DiskFull,
    Exhaust,
    Fault,
    Kill,
    PrivateServer,
    Restart,
    SmallDisk,
    Supervisor,
    Terminate,
)
from chaos_load import TriggerLoad

FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELED", "EXPIRED", "TIMED_OUT", "SYSTEM_FAILURE")
# Seconds between faults and how long one lasts, per fault, unless --every / --hold say.
EVERY = {"kill": 2.0, "terminate": 2.0, "pg-restart": 3.0, "pool": 4.0, "disk-full": 4.0}
HOLD = {"pool": 2.0, "disk-full": 2.0}
# The private server of pg-restart and pool: few slots, so a hog can take them all.
PRIVATE_MAX_CONNECTIONS = 60


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--task-ms", type=float, default=20.0, help="how long each run sleeps")
    ap.add_argument(
        "--fault", choices=["kill", "terminate", "pg-restart", "pool", "disk-full"], default="kill"
    )
    ap.add_argument("--every", type=float, help="seconds between faults (default per fault)")
    ap.add_argument(
        "--hold",
        type=float,
        help="seconds a pool / disk-full fault lasts (2); pg-restart: the server stays down "
        "that long (default 0: a plain restart)",
    )
    ap.add_argument("--faults", type=int, default=5)
    ap.add_argument("--preload", type=float, default=0.5, help="share of runs queued up front")
    ap.add_argument("--disk-mb", type=int, default=64, help="disk-full: the filesystem's size")
    ap.add_argument("--heartbeat", type=float, default=1.0, help="workers' heartbeat (s)")
    ap.add_argument("--timeout", type=float, default=240.0)
    ap.add_argument(
        "--keep",
        action="store_true",
        help="keep the temp folder / database (disk-full: the tmpfs stays mounted)",
    )
    add_backend_arg(ap)
    a = ap.parse_args()
    if a.fault in ("terminate", "pg-restart", "pool"):
        a.backend = "postgres"
    if a.fault == "disk-full":
        a.backend = "sqlite"
    a.every = EVERY[a.fault] if a.every is None else a.every
    a.hold = HOLD.get(a.fault, 0.0) if a.hold is None else a.hold
    server = PrivateServer(PRIVATE_MAX_CONNECTIONS) if a.fault in ("pg-restart", "pool") else None
    env: Env | None = None
    disk: SmallDisk | None = None
    try:
        env = Env("chaos", a.backend)
        if a.fault == "disk-full":
            disk = SmallDisk(env.dir / "disk", a.disk_mb)
            env.db = env.dir / "disk" / "shipyard.db"
            env.url = f"sqlite:///{env.db}"
            os.environ["SHIPYARD_DATABASE_URL"] = env.url
        run(a, env, server, disk)
    finally:
        if disk is not None and env is not None and not a.keep:
            for conn in env._conns:
                conn.close()
            env._conns.clear()
            disk.unmount()
        if env is not None:
            env.cleanup(keep=a.keep)
        if server is not None:
            server.stop()


def executions(env: Env) -> list[tuple[str, int, str, float]]:
    rows = []
    for path in glob.glob(str(env.rec / "chaos-*.txt")):
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) == 4:
                    rows.append((p[0], int(p[1]), p[2], float(p[3])))
    return rows


class Driver:
    """The bench's own reading connection, reopened when the fault broke it."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.conn = env.connect()

    def query(self, sql: str) -> list[Any]:
        for attempt in range(600):
            try:
                return list(self.conn.execute(sql).fetchall())
            except Exception:
                if attempt == 599:
                    raise
                time.sleep(0.1)
                try:
                    self.conn = self.env.connect()
                except Exception:
                    continue
        raise AssertionError("unreachable")


def make_fault(
    a: argparse.Namespace,
    env: Env,
    workers: Supervisor,
    driver: Driver,
    server: PrivateServer | None,
    disk: SmallDisk | None,
) -> Fault:
    if a.fault == "kill":
        return Kill(workers)
    if a.fault == "terminate":
        return Terminate(driver.conn)
    if a.fault == "pg-restart":
        assert server is not None
        return Restart(server, ["fast", "immediate"], a.hold)
    if a.fault == "pool":
        return Exhaust(env.url, driver.conn, a.hold)
    assert disk is not None
    return DiskFull(disk, a.hold)


def run(
    a: argparse.Namespace, env: Env, server: PrivateServer | None, disk: SmallDisk | None
) -> None:
    preload = int(a.runs * a.preload)
    # The rest is triggered over the faults' span (and a bit more), so every fault meets it.
    span = a.faults * a.every + 1.0
    load = TriggerLoad(env, a.runs, preload, max(1.0, (a.runs - preload) / span), a.task_ms)
    load.start()
    load.preloaded.wait()
    if load.failure is not None:
        raise RuntimeError(f"the application could not queue the runs: {load.failure!r}")
    driver = Driver(env)
    final_list = ", ".join(f"'{s}'" for s in FINAL)

    def final_count() -> int:
        return int(driver.query(f"SELECT count(*) FROM runs WHERE status IN ({final_list})")[0][0])

    workers = Supervisor(env, a.workers, a.concurrency, a.heartbeat)
    fault = make_fault(a, env, workers, driver, server, disk)
    t_done = t0 = time.time()
    try:
        # Faults and the steady triggering start once the workers drain (booting two workers
        # takes seconds on a loaded machine: a fault then would hit nothing).
        while final_count() == 0 and time.time() < t0 + a.timeout:
            workers.replace_dead()
            time.sleep(0.05)
        boot_s = time.time() - t0
        load.go.set()
        t0 = time.time()
        next_fault = t0 + a.every
        deadline = t0 + a.timeout
        active: list[float] | None = None
        while time.time() < deadline:
            now = time.time()
            if active is not None:
                fault.tick()
                if now >= active[0] + a.hold:
                    fault.end()
                    active[1] = time.time()
                    next_fault = max(active[0] + a.every, active[1] + 0.5)
                    active = None
            elif len(fault.windows) < a.faults and now >= next_fault:
                window = [time.time(), 0.0]
                fault.windows.append(window)
                fault.begin()
                if a.hold > 0:
                    active = window
                else:
                    window[1] = time.time()
                    next_fault = window[0] + a.every
            elif load.done.is_set() and final_count() >= a.runs:
                break
            workers.replace_dead()
            time.sleep(0.05)
        t_done = time.time()
    finally:
        fault.close()
        workers.stop()
        load.join(10)
    result = check(a, env, driver, load)
    ends = [w[1] for w in fault.windows if w[1]]
    result.update(
        {
            "fault": a.fault,
            "faults": len(fault.windows),
            "every_s": a.every,
            **fault.detail,
            **load.report(),
            **worker_log(env),
            "workers_exited": workers.exits,
            "workers_boot_s": round(boot_s, 2),
            "drain_wall_s": round(t_done - t0, 2),
            "resume_s": resume_after(driver, ends),
            "recovery_s": round(t_done - ends[-1], 2) if ends else None,
        }
    )
    emit(
        result,
        f"chaos [{a.backend}] {a.fault} x{result['faults']}: {a.runs} runs, lost "
        f"{result['lost']}, duplicated {result['duplicated']}, attempts ok "
        f"{result['attempts_ok']}, retried {result['runs_retried']}, resume "
        f"{result['resume_s']} s, recovery {result['recovery_s']} s, wall "
        f"{result['drain_wall_s']} s; application errors {result['trigger_errors']}; worker "
        f"errors {result['worker_error_lines']} lines, {result['worker_tracebacks']} tracebacks",
    )


def resume_after(driver: Driver, ends: list[float]) -> dict[str, Any]:
    """Per fault: seconds from its end to the next run completed; and the longest."""
    waits = []
    for end in ends:
        ms = int(end * 1000)
        row = driver.query(
            f"SELECT min(finished_at) FROM runs WHERE status = 'COMPLETED' AND finished_at >= {ms}"
        )[0]
        waits.append(None if row[0] is None else round((int(row[0]) - ms) / 1000, 2))
    known = [w for w in waits if w is not None]
    return {"max": max(known) if known else None, "each": waits}


def worker_log(env: Env) -> dict[str, Any]:
    """What the workers logged: lines at ERROR, tracebacks, and a sample of each."""
    try:
        text = (Path(env.dir) / "workers.log").read_text(errors="replace")
    except OSError:
        return {"worker_error_lines": None, "worker_tracebacks": None}
    lines = text.splitlines()
    errors = [line for line in lines if " ERROR " in line or line.startswith("ERROR")]
    sample: dict[str, str] = {}
    for line in errors:
        # Group by what follows the logger name, without run ids and numbers.
        key = " ".join(w for w in line.split()[3:9] if not any(c.isdigit() for c in w))
        sample.setdefault(key, line[:300])
    return {
        "worker_log_lines": len(lines),
        "worker_error_lines": len(errors),
        "worker_warning_lines": sum(1 for line in lines if " WARNING " in line),
        "worker_tracebacks": text.count("Traceback (most recent call last)"),
        "worker_error_samples": list(sample.values())[:12],
    }


def check(a: argparse.Namespace, env: Env, driver: Driver, load: TriggerLoad) -> dict[str, Any]:
    statuses = dict(driver.query("SELECT status, count(*) FROM runs GROUP BY status"))
    runs = {r[0]: (r[1], r[2]) for r in driver.query("SELECT id, status, attempt_number FROM runs")}
    attempts: dict[str, list[tuple[int, str]]] = collections.defaultdict(list)
    for run_id, number, status in driver.query(
        "SELECT run_id, number, status FROM attempts ORDER BY run_id, number"
    ):
        attempts[run_id].append((int(number), status))
    payload_i = (
        "(payload::json->>'i')::int" if a.backend == "postgres" else "json_extract(payload, '$.i')"
    )
    per_i = dict(
        driver.query(
            f"SELECT {payload_i}, count(*) FROM runs WHERE task_id = 'chaos' GROUP BY {payload_i}"
        )
    )
    starts = collections.Counter(
        (run_id, attempt) for run_id, attempt, what, _ in executions(env) if what == "start"
    )
    duplicated = sum(1 for n in starts.values() if n > 1)
    created_twice = sum(1 for n in per_i.values() if n > 1)
    never_created = sum(1 for i in range(a.runs) if i not in per_i)
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
    completed_distinct = int(
        driver.query(
            f"SELECT count(DISTINCT {payload_i}) FROM runs "
            "WHERE task_id = 'chaos' AND status = 'COMPLETED'"
        )[0][0]
    )
    return {
        "bench": "chaos",
        "backend": a.backend,
        "runs": a.runs,
        "workers": a.workers,
        "statuses": statuses,
        "lost": a.runs - completed_distinct,
        "never_created": never_created,
        "duplicated": duplicated + created_twice,
        "attempts_executed_twice": duplicated,
        "runs_created_twice": created_twice,
        "runs_retried": sum(1 for _, number in runs.values() if int(number or 0) > 1),
        "attempts_ok": bad_attempts == 0 and unrecorded == 0,
        "runs_with_bad_attempts": bad_attempts,
        "executions_without_attempt_row": unrecorded,
    }


if __name__ == "__main__":
    main()
