"""The faults ``chaos.py`` injects, and what they need: worker processes, a private server, a
small filesystem.

Each fault has ``begin()`` (inject it; may block, e.g. while a server restarts), ``tick()``
(called every loop pass while it lasts) and ``end()`` (clear it); ``hold`` is how long it lasts
between the two (0: over when ``begin`` returns). ``windows`` records each [began, cleared]
(``time.time()``), from which ``chaos.py`` computes how long the work took to resume.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import BENCH_DIR, Env


class Supervisor:
    """Worker processes, each in its own session; a killed or exited one is replaced at once."""

    def __init__(self, env: Env, count: int, concurrency: int, heartbeat: float) -> None:
        self.cmd = [sys.executable, "-m", "shipyard", "worker", "--concurrency", str(concurrency)]
        self.heartbeat = heartbeat
        self.log = open(env.dir / "workers.log", "ab")  # noqa: SIM115
        self.procs = [self._start() for _ in range(count)]
        self.kills = 0
        self.exits: list[int] = []  # exit codes of workers that ended by themselves

    def _start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.cmd,
            cwd=BENCH_DIR,
            env={**os.environ, "SHIPYARD_HEARTBEAT_INTERVAL": str(self.heartbeat)},
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
        """A worker that exited by itself is replaced too (its exit code is kept)."""
        for i, proc in enumerate(self.procs):
            if proc.poll() is not None:
                self.exits.append(int(proc.returncode))
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


class Fault:
    """A fault that ``chaos.py`` injects ``--faults`` times, every ``--every`` seconds."""

    hold = 0.0

    def __init__(self) -> None:
        self.windows: list[list[float]] = []
        self.detail: dict[str, Any] = {}

    def begin(self) -> None:
        raise NotImplementedError

    def tick(self) -> None:
        """Called every loop pass while the fault lasts."""

    def end(self) -> None:
        """Clear the fault (after ``hold`` seconds)."""

    def close(self) -> None:
        """Undo whatever the fault left (called once, at the end)."""


class Kill(Fault):
    """SIGKILL one worker's process group (round robin); its replacement starts at once."""

    def __init__(self, workers: Supervisor) -> None:
        super().__init__()
        self.workers = workers

    def begin(self) -> None:
        self.workers.kill_one()


def terminate_backends(conn: Any, keep: tuple[int, ...] = ()) -> int:
    """End every connection to this bench's own database but ours (and ``keep``); how many."""
    found = conn.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> ALL(%s)",
        (list(keep),),
    ).fetchone()
    return int(found[0])


class Terminate(Fault):
    """``pg_terminate_backend`` of every connection to the bench's database but the driver's."""

    def __init__(self, conn: Any) -> None:
        super().__init__()
        self.conn = conn
        self.detail["connections_terminated"] = 0

    def begin(self) -> None:
        self.detail["connections_terminated"] += terminate_backends(self.conn)


class PrivateServer:
    """A PostgreSQL server of the bench's own (``PrivatePostgres``), so it may be restarted or
    filled: ``SHIPYARD_TEST_POSTGRES_URL`` points ``Env`` at it (a fresh migrated database)."""

    def __init__(self, max_connections: int) -> None:
        from shipyard.testing.pg_server import PrivatePostgres

        # fsync stays off (the class's default): a crash-style stop kills processes, not the
        # machine, so what PostgreSQL wrote is in the page cache; only the speed differs.
        self.server = PrivatePostgres(max_connections=max_connections).start()
        os.environ["SHIPYARD_TEST_POSTGRES_URL"] = self.server.url

    def stop(self) -> None:
        os.environ.pop("SHIPYARD_TEST_POSTGRES_URL", None)
        self.server.stop()


class Restart(Fault):
    """Restart the private server: ``pg_ctl restart -m fast``, every other one ``-m immediate``
    (a crash: no checkpoint, connections cut, WAL replayed on start). With a ``hold``, the
    server stays down that long before it starts again (an outage, not a blip)."""

    def __init__(self, server: PrivateServer, modes: list[str], hold: float) -> None:
        super().__init__()
        self.server = server
        self.hold = hold
        self.modes = modes
        self.detail["restarts"] = []

    def begin(self) -> None:
        mode = self.modes[(len(self.windows) - 1) % len(self.modes)]  # windows has this one
        server = self.server.server
        if self.hold <= 0:
            took = server.restart(mode)
        else:
            # Down for ``hold`` seconds: stopped, then started (a crash recovery after
            # ``immediate``). chaos.py calls ``end`` when the hold is over.
            began = time.monotonic()
            server.halt(mode)
            took = time.monotonic() - began
        self.detail["restarts"].append({"mode": mode, "s": round(took, 2)})

    def end(self) -> None:
        if self.hold > 0:
            self.server.server.start()


class Exhaust(Fault):
    """Other clients take every connection slot of the private server for ``hold`` seconds.

    At the start of each hold the hog opens connections until the server refuses ("sorry, too
    many clients already"), then the workers' (and the triggering side's) connections are
    terminated — as a network blip, an idle timeout or a pooler restart would drop them — and
    the hog takes the slots they freed, and keeps taking any slot freed while it holds. So the
    workers must reconnect while the server admits nobody, until the hog lets go. A worker
    connection that won a freed slot in the race is terminated too (``intruders``), so for the
    whole hold the engine's processes have no connection at all.
    """

    def __init__(self, url: str, driver: Any, hold: float) -> None:
        super().__init__()
        self.url = url
        self.driver = driver
        self.hold = hold
        self.conns: list[Any] = []
        self.detail.update(
            hog_connections=0, connections_terminated=0, intruders_terminated=0, hold_s=hold
        )

    def _grab(self) -> None:
        import psycopg

        while True:
            try:
                self.conns.append(psycopg.connect(self.url, autocommit=True, connect_timeout=5))
            except psycopg.OperationalError as exc:
                if "too many clients" in str(exc) or "remaining connection slots" in str(exc):
                    return
                raise

    def _others(self) -> int:
        """Client connections to the server that are neither the hog's nor the driver's."""
        pids = [c.info.backend_pid for c in self.conns]
        row = self.driver.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            "AND pid <> pg_backend_pid() AND pid <> ALL(%s)",
            (pids,),
        ).fetchone()
        return int(row[0])

    def _evict(self) -> int:
        """Terminate the engine's connections and take their slots, until none is left
        (a terminated backend frees its slot a moment later: grab it before a reconnect)."""
        pids = tuple(c.info.backend_pid for c in self.conns)
        ended = terminate_backends(self.driver, pids)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            self._grab()
            if self._others() == 0:
                break
            time.sleep(0.005)
            ended += terminate_backends(self.driver, tuple(c.info.backend_pid for c in self.conns))
        return ended

    def begin(self) -> None:
        self._grab()
        self.detail["connections_terminated"] += self._evict()
        self.detail["hog_connections"] = max(self.detail["hog_connections"], len(self.conns))

    def tick(self) -> None:
        if self._others():
            self.detail["intruders_terminated"] += self._evict()

    def end(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(Exception):
                conn.close()
        self.conns.clear()

    close = end


class SmallDisk:
    """A small filesystem of the bench's own for the SQLite database: a tmpfs (``mount -t
    tmpfs -o size=…``), or where mounting a tmpfs is refused, a loop-mounted ext4 image."""

    def __init__(self, folder: Path, size_mb: int) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.image: Path | None = None
        tmpfs = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
        )
        if tmpfs.returncode == 0:
            self.kind = f"tmpfs {size_mb} MB"
            return
        self.image = folder.with_suffix(".img")
        with open(self.image, "wb") as f:
            f.truncate(size_mb * 1024 * 1024)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(self.image)], check=True)
        subprocess.run(["mount", "-o", "loop", str(self.image), str(folder)], check=True)
        self.kind = f"loop-mounted ext4 image {size_mb} MB (tmpfs refused: {tmpfs.stderr.strip()})"

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.folder).free

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.folder)], check=False)
        if self.image is not None:
            self.image.unlink(missing_ok=True)


class DiskFull(Fault):
    """A filler file grows until the database's filesystem is full, stays ``hold`` seconds,
    then is deleted."""

    def __init__(self, disk: SmallDisk, hold: float) -> None:
        super().__init__()
        self.disk = disk
        self.hold = hold
        self.path = disk.folder / "filler"
        self.detail.update(filesystem=disk.kind, filled_mb=[], hold_s=hold)

    def begin(self) -> None:
        chunk = b"\0" * (1 << 20)
        written = 0
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while True:
                try:
                    written += os.write(fd, chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    chunk = chunk[: len(chunk) // 2]  # fill the last bytes too
                    if len(chunk) < 512:
                        break
        finally:
            os.close(fd)
        self.detail["filled_mb"].append(round(written / (1 << 20), 1))

    def end(self) -> None:
        self.path.unlink(missing_ok=True)

    close = end
