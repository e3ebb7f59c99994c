"""Shared plumbing of the Shipyard benchmarks (the peer baselines' methodology).

Each benchmark gets a fresh temp folder holding the task-side records and, with
``--backend sqlite`` (the default), the SQLite file; with ``--backend postgres`` a fresh
migrated database on the local server (``shipyard.testing.postgres.databases``, dropped at
cleanup; ``SHIPYARD_TEST_POSTGRES_URL`` names another server).
The benchmark process imports ``tasks.noop`` itself (so ``noop`` is known before any worker
registered it) and drives the default engine; workers are ``python -m shipyard worker``
processes, each in its own session, killed by process group with bounded waits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
PAD = "x" * 60  # payload JSON ~= 100 bytes, as in peers-bench


def make_payload(i: int, ts: float | None = None) -> dict[str, Any]:
    return {"i": i, "ts": time.time() if ts is None else ts, "pad": PAD}


def add_backend_arg(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--backend",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="sqlite: fresh temp file; postgres: fresh database on the local server, dropped after",
    )


class Env:
    """A fresh temp dir (task records, worker logs) and a fresh database; sets SHIPYARD_*."""

    def __init__(self, name: str, backend: str = "sqlite") -> None:
        self.backend = backend
        self.dir = Path(tempfile.mkdtemp(prefix=f"shipyard-bench-{name}-"))
        self.db = self.dir / "shipyard.db"
        self.rec = self.dir / "rec"
        self.rec.mkdir()
        if backend == "postgres":
            from shipyard.testing.postgres import databases

            self.url = asyncio.run(databases.create())
        else:
            self.url = f"sqlite:///{self.db}"
        self._conns: list[Any] = []
        os.environ.update(
            SHIPYARD_PROJECT_ROOT=str(BENCH_DIR),
            SHIPYARD_DIRS="tasks",
            SHIPYARD_DATABASE_URL=self.url,
            SHIPYARD_SECRET_KEY="bench-secret-key-bench-secret-key",
            SHIPYARD_LOG_LEVEL="warning",
            BENCH_REC=str(self.rec),
        )
        if str(BENCH_DIR) not in sys.path:
            sys.path.insert(0, str(BENCH_DIR))

    def engine(self) -> Any:
        import tasks.noop  # noqa: F401  (defines "noop" in this process)

        import shipyard
        from shipyard.engine.registry import get_engine

        shipyard.configure(database_url=self.url, project_root=str(BENCH_DIR))
        return get_engine()

    def records(self) -> list[tuple[int, float, float]]:
        rows = []
        for path in glob.glob(str(self.rec / "rec-*.txt")):
            with open(path) as f:
                for line in f:
                    p = line.split()
                    if len(p) == 3:
                        rows.append((int(p[0]), float(p[1]), float(p[2])))
        return rows

    def connect(self) -> Any:
        """A read connection (sqlite3, or psycopg in autocommit); ``conn.execute(sql)`` works."""
        if self.backend == "postgres":
            import psycopg

            # The engine's tables are in the shipyard schema (SHIPYARD_DATABASE_SCHEMA).
            conn: Any = psycopg.connect(
                self.url, autocommit=True, options="-c search_path=shipyard,public"
            )
        else:
            conn = sqlite3.connect(self.db, timeout=5)
            conn.execute("PRAGMA busy_timeout = 5000")
        self._conns.append(conn)
        return conn

    def count_completed(self, conn: Any) -> int:
        row = conn.execute("SELECT count(*) FROM runs WHERE status = 'COMPLETED'").fetchone()
        return int(row[0])

    def verify_once(self, conn: Any, expected: int) -> dict[str, Any]:
        """Every run COMPLETED, with exactly one attempt, executed exactly once (task records)."""
        if self.backend == "postgres":
            runs = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE status = 'COMPLETED') FROM runs"
            ).fetchone()
        else:
            runs = conn.execute("SELECT count(*), sum(status = 'COMPLETED') FROM runs").fetchone()
        multi = conn.execute(
            "SELECT count(*) FROM "
            "(SELECT run_id FROM attempts GROUP BY run_id HAVING count(*) != 1) AS m"
        ).fetchone()[0]
        attempts = conn.execute("SELECT count(*) FROM attempts").fetchone()[0]
        recs = [r[0] for r in self.records()]
        return {
            "runs": runs[0],
            "completed": runs[1] or 0,
            "attempts": attempts,
            "runs_with_attempts_ne_1": multi,
            "executions": len(recs),
            "distinct_executions": len(set(recs)),
            "exactly_once": runs[0] == expected
            and (runs[1] or 0) == expected
            and attempts == expected
            and multi == 0
            and len(recs) == expected
            and len(set(recs)) == expected,
        }

    def cleanup(self, keep: bool = False) -> None:
        """Close our connections; drop the PostgreSQL database and the temp dir (unless keep)."""
        for conn in self._conns:
            with contextlib.suppress(Exception):
                conn.close()
        self._conns.clear()
        if keep:
            return
        if self.backend == "postgres":
            from shipyard.testing.postgres import databases

            for attempt in range(5):  # the server may be restarting (someone else's test)
                try:
                    asyncio.run(databases.drop(self.url))
                    break
                except Exception as exc:
                    if attempt == 4:
                        print(f"could not drop {self.url}: {exc}", file=sys.stderr)
                    time.sleep(1)
        shutil.rmtree(self.dir, ignore_errors=True)


class Workers:
    """Worker processes, each in its own session so the whole tree can be killed by PGID."""

    def __init__(self, env: Env, count: int, concurrency: int, extra: list[str] | None = None):
        cmd = [sys.executable, "-m", "shipyard", "worker", "--concurrency", str(concurrency)]
        cmd += extra or []
        # Profiling hook, e.g. BENCH_WORKER_WRAP="py-spy record -f raw -o /tmp/w-{i}.txt --"
        wrap = os.environ.get("BENCH_WORKER_WRAP", "").split()
        self.log = open(env.dir / "workers.log", "ab")  # noqa: SIM115
        self.procs = [
            subprocess.Popen(
                [w.replace("{i}", str(i)) for w in wrap] + cmd,
                cwd=BENCH_DIR,
                env=dict(os.environ),
                stdout=self.log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            for i in range(count)
        ]
        self.env = env

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            for p in self.procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, sig)
            end = time.time() + wait
            while time.time() < end and any(p.poll() is None for p in self.procs):
                time.sleep(0.02)
            if all(p.poll() is not None for p in self.procs):
                break
        self.log.close()

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) the worker processes used so far (from /proc)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for p in self.procs:
            with contextlib.suppress(OSError):
                with open(f"/proc/{p.pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / ticks
        return total

    def log_tail(self) -> str:
        try:
            return (self.env.dir / "workers.log").read_text()[-2000:]
        except OSError:
            return ""


def server_cpu(env: Env, conn: Any) -> float | None:
    """CPU seconds (user + system) of the PostgreSQL backends serving the bench's database, read
    from /proc (a server on this machine only; None otherwise, and for SQLite). The bench's own
    connection (``conn``, which polls the completed count) is left out: its count walks the whole
    table every 50 ms, a cost that grows with the table and is not the workers'."""
    if env.backend != "postgres":
        return None
    pids = [
        r[0]
        for r in conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    ]
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def emit(result: dict[str, Any], human: str) -> None:
    # Other work on the machine skews every number: keep the load next to the result.
    result["loadavg_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result), flush=True)
    print(human, flush=True)
