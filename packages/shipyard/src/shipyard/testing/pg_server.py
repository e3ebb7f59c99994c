"""A private PostgreSQL server for tests that must stop, restart or break the database.

Tests never restart or reconfigure the machine's shared PostgreSQL: other test runs (and other
people) use it. :class:`PrivatePostgres` ``initdb``-s a cluster into a temporary folder and runs
it on a free port on 127.0.0.1 with trust authentication, so a test can restart it, stop it or
terminate its backends at will. Running as root, the cluster is created and run as the
``postgres`` system user (PostgreSQL refuses to run as root).

Example::

    with PrivatePostgres() as server:
        url = server.create_database("app")
        ...
        server.restart()
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["PrivatePostgres", "postgres_bin_dir"]


def postgres_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (None when PostgreSQL is not installed)."""
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
        candidate = Path(out.stdout.strip())
        if (candidate / "initdb").exists():
            return candidate
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return versions[0].parent if versions else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivatePostgres:
    """A throwaway PostgreSQL cluster of the test's own; ``stop()`` removes it."""

    def __init__(self, *, fsync: bool = False, max_connections: int = 200) -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) are not installed.")
        self.bin_dir = bin_dir
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="shipyard-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.fsync = fsync
        self.max_connections = max_connections
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "postgres"
            entry = pwd.getpwnam(self._user)
            os.chmod(self.root, 0o755)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    @property
    def url(self) -> str:
        """The maintenance database's URL (user ``postgres``, trust auth)."""
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        """The URL of database ``name`` on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        # Output to a file, not a pipe: a server that pg_ctl starts keeps its inherited output
        # open, and reading a pipe until EOF would wait for the server to exit.
        with tempfile.TemporaryFile("w+") as out:
            result = subprocess.run(
                command, stdout=out, stderr=subprocess.STDOUT, text=True, timeout=timeout
            )
            out.seek(0)
            result.stderr = out.read()
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{args[0]} failed ({result.returncode}): {result.stderr.strip()}\n{log}"
            )
        return result

    def start(self) -> PrivatePostgres:
        """``initdb`` (first time) and start the server; returns once it accepts connections."""
        if not (self.data / "PG_VERSION").exists():
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            )
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            f"-c fsync={'on' if self.fsync else 'off'} -c max_connections={self.max_connections}"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def restart(self, mode: str = "fast") -> float:
        """Restart the server; seconds it took until it accepts connections again.

        ``mode`` is ``pg_ctl``'s shutdown mode: ``fast`` (every connection is dropped, a clean
        checkpoint) or ``immediate`` (the server is killed like a crash: the start replays
        the WAL).
        """
        began = time.monotonic()
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-m",
            mode,
            "-w",
            "-t",
            "60",
            "restart",
        )
        return time.monotonic() - began

    def halt(self, mode: str = "immediate") -> None:
        """Stop the server but keep its files (``mode`` as in :meth:`restart`); ``start()``
        brings it back: an outage of any length."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def stop(self) -> None:
        """Stop the server and delete its files (safe to call twice)."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name: str) -> str:
        """Create database ``name``; its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def __enter__(self) -> PrivatePostgres:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
