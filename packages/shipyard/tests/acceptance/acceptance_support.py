"""Helpers for the acceptance tests: temp projects, child processes, and bounded waits.

Every child process is started in its own session (so its process group id is its pid) and
is killed with its whole group at teardown by the ``procs`` fixture. Waits poll the database
or the child's output with a deadline; nothing sleeps for long unconditionally.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[4]

# Fast heartbeats: a lease is 3 × 0.2 s, the reaper looks every ~0.2 s.
HEARTBEAT = 0.2
POLL = 0.1

# A task module helper shared by the test projects: markers live in <project>/markers.
MARKERS_PRELUDE = '''
import asyncio
import os
import time
from pathlib import Path

MARKERS = Path(__file__).resolve().parent.parent / "markers"


def mark(name: str, text: str = "") -> None:
    MARKERS.mkdir(exist_ok=True)
    tmp = MARKERS / (name + ".tmp")
    tmp.write_text(text or str(os.getpid()))
    tmp.replace(MARKERS / name)


async def wait_for_file(name: str, seconds: float = 30.0) -> bool:
    """Sleep until MARKERS/name exists (True) or ``seconds`` pass (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (MARKERS / name).exists():
            return True
        await asyncio.sleep(0.05)
    return False
'''


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the socket listening on TCP ``port`` (Linux ``/proc``).

    ``free_port`` only says the port was free when asked: a test running beside this one may
    start its server on the same port first. This one's server then cannot bind it, and until
    it exits the port answers with the other test's server, healthy but on another database.
    """
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # LISTEN
                    inodes.add(f"socket:[{inode}]")
    with contextlib.suppress(OSError):
        return any(os.readlink(fd) in inodes for fd in Path(f"/proc/{pid}/fd").iterdir())
    return False


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any SHIPYARD_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class Child:
    """A child process in its own process group, its output in a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the child's whole process group."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def kill_group(self) -> None:
        """SIGKILL the whole group and reap the child."""
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)

    async def wait_exit(self, timeout: float) -> int:
        """The exit code, waiting at most ``timeout`` seconds (AssertionError otherwise)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.popen.poll()
            if code is not None:
                return code
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"{self.name} (pid {self.pid}) did not exit within {timeout} s; output:\n"
            + self.output()[-4000:]
        )


class Procs:
    """Starts children and guarantees they (and their groups) die at teardown."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []

    def spawn(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        name: str = "child",
    ) -> Child:
        log_path = self.log_dir / f"{name}-{len(self.children)}.log"
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(
                list(args),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = Child(name=name, popen=popen, log_path=log_path)
        self.children.append(child)
        return child

    def kill_all(self) -> None:
        for child in self.children:
            # Kill the group even when the leader already exited (its children may live on).
            child.kill_group()

    def dump(self) -> str:
        """Every child's output, for failure messages."""
        return "\n".join(
            f"----- {c.name} (pid {c.pid}, rc {c.popen.poll()}) -----\n{c.output()[-3000:]}"
            for c in self.children
        )


async def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    context: Callable[[], str] | None = None,
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            details = context() if context else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{details}")
        await asyncio.sleep(interval)


@dataclass
class Project:
    """A temp Shipyard project: pyproject.toml, trigger/ task modules and a SQLite file."""

    root: Path
    procs: Procs

    @property
    def db(self) -> Path:
        return self.root / "shipyard.db"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.db}"  # absolute path → sqlite:////abs/file.db

    @property
    def markers(self) -> Path:
        return self.root / "markers"

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(
            SHIPYARD_PROJECT_ROOT=str(self.root),
            SHIPYARD_DATABASE_URL=self.database_url,
            SHIPYARD_LOG_LEVEL="info",
            **extra,
        )

    def write_tasks(self, module: str, source: str) -> None:
        (self.root / "trigger" / f"{module}.py").write_text(MARKERS_PRELUDE + source)

    # -- processes --------------------------------------------------------------------------

    def spawn_shipyard(self, *args: str, name: str, **env: str) -> Child:
        return self.procs.spawn(
            [sys.executable, "-m", "shipyard", *args],
            env=self.env(**env),
            cwd=self.root,
            name=name,
        )

    def spawn_worker(self, *extra: str, name: str = "worker") -> Child:
        return self.spawn_shipyard(
            "worker",
            "--heartbeat",
            str(HEARTBEAT),
            "--poll",
            str(POLL),
            "--concurrency",
            "4",
            *extra,
            name=name,
        )

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``python -m shipyard ARGS`` to completion (bounded), capturing its output."""
        return subprocess.run(
            [sys.executable, "-m", "shipyard", *args],
            env=self.env(COLUMNS="200"),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
        )

    # -- database ---------------------------------------------------------------------------

    def query(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[dict[str, Any]]:
        """Rows as dicts; [] while the database or its tables do not exist yet."""
        if not self.db.exists():
            return []
        conn = sqlite3.connect(self.db, timeout=10)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(sql, params).fetchall()]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        finally:
            conn.close()

    def run_row(self, run_id: str) -> dict[str, Any]:
        rows = self.query("SELECT * FROM runs WHERE id = ?", (run_id,))
        assert rows, f"run {run_id} not in the runs table"
        return rows[0]

    def attempts(self, run_id: str) -> list[tuple[int, str]]:
        rows = self.query(
            "SELECT number, status FROM attempts WHERE run_id = ? ORDER BY id", (run_id,)
        )
        return [(r["number"], r["status"]) for r in rows]

    def attempt_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM attempts WHERE run_id = ? ORDER BY id", (run_id,))

    def worker_row(self, pid: int) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM workers WHERE pid = ? ORDER BY started_at DESC", (pid,))
        return rows[0] if rows else None

    async def wait_registered(self, child: Child, timeout: float = 30) -> str:
        """Wait until the worker process ``child`` registered itself; returns its worker id."""

        def probe() -> str | None:
            if not child.alive():
                raise AssertionError(f"{child.name} exited early:\n{child.output()[-4000:]}")
            row = self.worker_row(child.pid)
            return row["id"] if row else None

        return await wait_until(
            probe, timeout=timeout, what=f"{child.name} to register", context=self.procs.dump
        )

    async def wait_marker(self, name: str, timeout: float = 20) -> str:
        path = self.markers / name
        return await wait_until(
            lambda: path.read_text() if path.exists() else None,
            timeout=timeout,
            what=f"marker {name}",
            context=self.procs.dump,
        )

    async def wait_status(
        self, run_id: str, statuses: str | Sequence[str], timeout: float = 20
    ) -> dict[str, Any]:
        wanted = {statuses} if isinstance(statuses, str) else set(statuses)

        def probe() -> dict[str, Any] | None:
            rows = self.query("SELECT * FROM runs WHERE id = ?", (run_id,))
            return rows[0] if rows and rows[0]["status"] in wanted else None

        def context() -> str:
            rows = self.query("SELECT * FROM runs WHERE id = ?", (run_id,))
            return f"run row: {rows}\nattempts: {self.attempts(run_id)}\n{self.procs.dump()}"

        return await wait_until(
            probe, timeout=timeout, what=f"{run_id} to be {sorted(wanted)}", context=context
        )


@dataclass
class CliResult:
    """A finished ``shipyard`` command: exit code, stdout, stderr."""

    code: int
    stdout: str
    stderr: str

    @property
    def err(self) -> str:
        """stderr with rich's line wrapping undone."""
        return " ".join(self.stderr.split())

    def json(self) -> Any:
        return json.loads(self.stdout)

    def json_lines(self) -> list[Any]:
        """stdout as JSON Lines (one object per line)."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


async def run_cli(project: Project, *args: str, timeout: float = 60) -> CliResult:
    """Run ``python -m shipyard ARGS`` in the project, bounded by ``timeout``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shipyard",
        *args,
        cwd=project.root,
        env=project.env(COLUMNS="200"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"shipyard {' '.join(args)} did not finish in {timeout} s") from None
    assert process.returncode is not None
    return CliResult(process.returncode, out.decode(), err.decode())


def make_project(root: Path, procs: Procs) -> Project:
    """A fresh project folder under ``root`` with an empty trigger/ package."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "acceptance-project"\nversion = "0"\n\n'
        '[tool.shipyard]\ndirs = ["trigger"]\n'
    )
    (root / "trigger").mkdir(exist_ok=True)
    (root / "trigger" / "__init__.py").write_text("")
    (root / "markers").mkdir(exist_ok=True)
    return Project(root=root, procs=procs)


@dataclass
class PgProject(Project):
    """A temp project whose database is a fresh PostgreSQL database (``url``).

    ``query`` takes the same ``?`` placeholders as :class:`Project` (translated to ``%s``),
    so the helpers above (``run_row``, ``attempts``, ``wait_registered``…) work unchanged.
    """

    url: str = ""

    @property
    def database_url(self) -> str:
        return self.url

    def query(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[dict[str, Any]]:
        import psycopg
        from psycopg.rows import dict_row

        from shipyard.testing.postgres import ENGINE_OPTIONS

        if not isinstance(params, Mapping):
            sql = sql.replace("?", "%s")
        with psycopg.connect(
            self.url, autocommit=True, connect_timeout=5, options=ENGINE_OPTIONS
        ) as conn:
            cursor = conn.cursor(row_factory=dict_row)
            cursor.execute(sql, params or None)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def scalar(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Any:
        """The first column of the first row."""
        rows = self.query(sql, params)
        return next(iter(rows[0].values())) if rows else None
