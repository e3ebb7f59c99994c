"""Dev server tools: start_dev_server, stop_dev_server, dev_server_status.

``start_dev_server`` runs ``shipyard dev`` (engine server, a worker with hot reload, the app
API and functions) in the background, its output in ``.shipyard/dev-server.log`` (never on this
server's stdout, which is the MCP transport), and waits up to ``timeout_seconds`` for the
engine server's ``/healthz`` and a worker to register. Its pid is kept in
``.shipyard/dev-server.json`` so a restarted MCP server can still report and stop it. When
this MCP server exits it stops the dev server it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from pydantic import Field

from shipyard.errors import ShipyardError
from shipyard.mcp import engine_reads
from shipyard.mcp.context import ToolContext
from shipyard.mcp.tasks import NoArguments
from shipyard.mcp.tool import Arguments, Output, Tool, iso
from shipyard.processes import alive

STATE_FILE = "dev-server.json"
LOG_FILE = "dev-server.log"
STOP_GRACE_SECONDS = 20.0
BANNER_START = "Shipyard dev is running"
BANNER_END = "Press Ctrl-C"


def _is_shipyard_dev(pid: int) -> bool:
    """Whether ``pid`` still runs ``shipyard dev`` (a pid can be reused by another program)."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return alive(pid)  # no /proc (macOS): trust the pid file
    parts = cmdline.read_bytes().split(b"\0")
    return b"shipyard" in b" ".join(parts) and b"dev" in parts


class DevServer:
    """The ``shipyard dev`` process of the project, started and stopped by MCP tools."""

    def __init__(self, context: ToolContext) -> None:
        self.context = context
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def state_dir(self) -> Path:
        """``.shipyard/`` of the project."""
        return self.context.project_root / ".shipyard"

    @property
    def log_path(self) -> Path:
        """Where the dev server's output goes."""
        return self.state_dir / LOG_FILE

    def _read_state(self) -> dict[str, Any] | None:
        try:
            state = json.loads((self.state_dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return None
        return state if isinstance(state, dict) and isinstance(state.get("pid"), int) else None

    def _lives(self, pid: int) -> bool:
        if self._process is not None and self._process.pid == pid:
            return self._process.poll() is None  # our child: poll() also reaps it
        return alive(pid)

    def running_pid(self) -> int | None:
        """The pid of the dev server started through MCP, if it still runs."""
        if self._process is not None:
            if self._process.poll() is None:
                return self._process.pid
            return None
        state = self._read_state()
        if state and alive(state["pid"]) and _is_shipyard_dev(state["pid"]):
            return int(state["pid"])
        return None

    def urls(self) -> dict[str, str]:
        """The engine server's URLs, from the project's settings."""
        settings = self.context.settings()
        base = f"http://{settings.server_host}:{settings.server_port}"
        return {"engine_server": base, "healthz": f"{base}/healthz"}

    async def healthz(self) -> dict[str, Any] | None:
        """The engine server's health report, or None when nothing answers."""
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                response = await client.get(self.urls()["healthz"])
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        try:
            body = response.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def log_tail(self, lines: int) -> list[str]:
        """The last ``lines`` lines of the dev server's output."""
        if lines <= 0:
            return []
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        return text.splitlines()[-lines:]

    def banner(self) -> list[str]:
        """What ``shipyard dev`` printed it started (its URLs), once it has."""
        lines = self.log_tail(400)
        for index in range(len(lines) - 1, -1, -1):
            if lines[index].strip() == BANNER_START:
                block = []
                for line in lines[index + 1 :]:
                    if line.startswith(BANNER_END):
                        break
                    block.append(line.strip())
                return block
        return []

    async def start(self, timeout: float) -> dict[str, Any]:
        """Start ``shipyard dev`` (unless running) and wait for its server and a worker."""
        engine = await self.context.local_engine()
        pid = self.running_pid()
        if pid is None and await self.healthz() is not None:
            raise ShipyardError(
                f"An engine server already answers on {self.urls()['engine_server']}, started "
                "outside this MCP server (a `shipyard dev` in a terminal?). Use it as it is, or "
                "stop it there first."
            )
        started_here = pid is None
        since = engine.now()
        if pid is None:
            pid = self._spawn()
        deadline = time.monotonic() + timeout
        while True:
            if self.running_pid() is None:
                tail = "\n".join(self.log_tail(30))
                self._forget()
                raise ShipyardError(
                    f"shipyard dev exited before it was ready; its output ({self.log_path}):\n"
                    + tail
                )
            health = await self.healthz()
            workers = [
                w
                for w in await engine_reads.live_workers(engine) or []
                if not started_here or w.started_at >= since - 1000
            ]
            if health is not None and workers:
                status = await self.status(20)
                status["message"] = "The dev server is running" + (
                    " (it was already)." if not started_here else "."
                )
                return status
            if time.monotonic() >= deadline:
                status = await self.status(30)
                status["message"] = (
                    f"shipyard dev (pid {pid}) is still starting after {timeout:g} s "
                    f"(engine server {'up' if health else 'not answering yet'}, "
                    f"{'a' if workers else 'no'} worker registered). Call dev_server_status "
                    "in a moment; its log is in log_tail."
                )
                return status
            await asyncio.sleep(0.2)

    def _spawn(self) -> int:
        root = self.context.project_root
        settings = self.context.settings()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        # The stack serves the engine these tools use: same project, database, environment
        # and server address (as shipyard dev passes them on to its worker).
        env.update(
            SHIPYARD_PROJECT_ROOT=str(root),
            SHIPYARD_DATABASE_URL=settings.database_url,
            SHIPYARD_ENVIRONMENT=settings.environment,
            SHIPYARD_SERVER_HOST=settings.server_host,
            SHIPYARD_SERVER_PORT=str(settings.server_port),
            PYTHONUNBUFFERED="1",
        )
        with open(self.log_path, "wb") as log:
            # Its own session: stop_dev_server can end it with its worker, and signals meant
            # for this MCP server do not reach it.
            self._process = subprocess.Popen(
                [sys.executable, "-m", "shipyard", "dev"],
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        state = {
            "pid": self._process.pid,
            "started_at": iso(int(time.time() * 1000)),
            "log": str(self.log_path),
        }
        (self.state_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
        return self._process.pid

    def _forget(self) -> None:
        self._process = None
        with contextlib.suppress(OSError):
            (self.state_dir / STATE_FILE).unlink()

    async def stop(self) -> dict[str, Any]:
        """Stop the dev server started through MCP (SIGTERM, then SIGKILL after 20 s)."""
        pid = self.running_pid()
        if pid is None:
            self._forget()
            if await self.healthz() is not None:
                raise ShipyardError(
                    f"The engine server on {self.urls()['engine_server']} was not started by "
                    "shipyard mcp; stop it where it was started (Ctrl-C in its terminal)."
                )
            return {"stopped": False, "message": "No dev server is running."}
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # shipyard dev stops its worker, then itself
        forced = not await self._wait_exit(pid, STOP_GRACE_SECONDS)
        if forced:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
        self._forget()
        return {
            "stopped": True,
            "pid": pid,
            "message": f"Stopped the dev server (pid {pid})"
            + (" with SIGKILL after 20 s." if forced else "."),
        }

    async def _wait_exit(self, pid: int, seconds: float) -> bool:
        """Poll until ``pid`` is gone (True) or ``seconds`` pass (False)."""
        deadline = time.monotonic() + seconds
        while True:
            if not self._lives(pid):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.1)

    async def stop_if_started_here(self) -> None:
        """Stop the dev server if this process started it (when the MCP server exits)."""
        if self._process is not None and self._process.poll() is None:
            await self.stop()

    async def status(self, log_lines: int) -> dict[str, Any]:
        """Whether the dev server runs, its URLs, health, workers and last log lines."""
        pid = self.running_pid()
        health = await self.healthz()
        workers: list[dict[str, Any]] | None = None
        with contextlib.suppress(ShipyardError):
            engine = await self.context.local_engine()
            workers = [
                {"id": w.id, "pid": w.pid, "started_at": iso(w.started_at)}
                for w in await engine_reads.live_workers(engine) or []
            ]
        return {
            "running": pid is not None or health is not None,
            "started_by_mcp": pid is not None,
            "pid": pid,
            "urls": self.urls(),
            "started": self.banner() if pid is not None else [],
            "healthz": health,
            "workers": workers,
            "log_file": str(self.log_path) if self.log_path.exists() else None,
            "log_tail": self.log_tail(log_lines),
        }


class StartDevServerArguments(Arguments):
    """Arguments of start_dev_server."""

    timeout_seconds: float = Field(
        default=30,
        ge=1,
        le=120,
        description="Wait at most this long for the engine server and a worker.",
    )


async def start_dev_server(context: ToolContext, args: StartDevServerArguments) -> Output:
    """Start ``shipyard dev`` in the background and wait for it."""
    return Output(await context.dev_server.start(args.timeout_seconds))


async def stop_dev_server(context: ToolContext, args: NoArguments) -> Output:
    """Stop the dev server that start_dev_server started."""
    return Output(await context.dev_server.stop())


class DevServerStatusArguments(Arguments):
    """Arguments of dev_server_status."""

    log_lines: int = Field(
        default=20, ge=0, le=200, description="How many of the last log lines to return."
    )


async def dev_server_status(context: ToolContext, args: DevServerStatusArguments) -> Output:
    """Whether the dev server runs, with its URLs, workers and recent output."""
    return Output(await context.dev_server.status(args.log_lines))


TOOLS = [
    Tool(
        "start_dev_server",
        "Start the local stack (`shipyard dev`: engine server, a worker that reloads trigger/ "
        "on change, the app API and functions) in the background and wait up to "
        "timeout_seconds (default 30) for the engine server and a worker. Returns its URLs "
        "and log tail. Use it when runs stay QUEUED or PENDING_VERSION because no worker runs.",
        StartDevServerArguments,
        start_dev_server,
        changes=True,
        title="Start the dev server",
    ),
    Tool(
        "stop_dev_server",
        "Stop the dev server that start_dev_server started (its worker finishes or releases "
        "running attempts).",
        NoArguments,
        stop_dev_server,
        changes=True,
        engine=False,
        title="Stop the dev server",
    ),
    Tool(
        "dev_server_status",
        "Tell whether the dev server is running: its URLs, /healthz, the workers alive and the "
        "last lines of its log (errors in task modules show there).",
        DevServerStatusArguments,
        dev_server_status,
        engine=False,
        title="Dev server status",
    ),
]
