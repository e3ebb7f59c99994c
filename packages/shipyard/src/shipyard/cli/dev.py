"""``shipyard dev``: the whole local stack in one command.

The engine server runs in this process; the worker runs as a child process that is restarted
when a file under the task folders changes (new attempts use new code; queued runs stay
queued; running attempts get a short grace and are then released back to the queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

import uvicorn

from shipyard.config import Settings
from shipyard.discovery import discover
from shipyard.engine.definitions import default_definitions
from shipyard.engine.engine import Engine
from shipyard.engine.registry import set_engine
from shipyard.server.app import create_app
from shipyard.tooling.apphost import start_app_servers

log = logging.getLogger("shipyard.dev")
RELOAD_GRACE_SECONDS = 5.0


async def _start_worker(settings: Settings, concurrency: int | None) -> asyncio.subprocess.Process:
    env = dict(os.environ)
    env["SHIPYARD_PROJECT_ROOT"] = str(settings.project_root)
    env["SHIPYARD_DATABASE_URL"] = settings.database_url
    env["SHIPYARD_ENVIRONMENT"] = settings.environment
    args = [sys.executable, "-m", "shipyard", "worker", "--grace", str(RELOAD_GRACE_SECONDS)]
    if concurrency:
        args += ["--concurrency", str(concurrency)]
    return await asyncio.create_subprocess_exec(*args, env=env)


async def _stop_worker(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), RELOAD_GRACE_SECONDS + 10)
    except TimeoutError:
        process.kill()
        await process.wait()


async def run_dev(settings: Settings, *, concurrency: int | None, reload: bool) -> None:
    """Run engine server + worker (+ reload) until Ctrl-C or SIGTERM."""
    engine = Engine(settings)
    await engine.start()
    discover(settings)  # fail fast on a broken task module, and list what was found
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(engine),
            host=settings.server_host,
            port=settings.server_port,
            log_level="warning",
            lifespan="off",
        )
    )
    # This process handles SIGINT/SIGTERM itself, to stop the worker before the server.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    server_task = asyncio.create_task(server.serve())
    while not server.started:
        if server_task.done():
            await server_task
            raise SystemExit(f"Engine server could not start on port {settings.server_port}.")
        await asyncio.sleep(0.05)
    set_engine(engine)  # the app API in this process triggers runs through this engine
    app_servers = await start_app_servers(settings)
    worker = await _start_worker(settings, concurrency)
    base = f"http://{settings.server_host}:{settings.server_port}"
    print(
        "\nShipyard dev is running\n"
        f"  environment    {settings.environment}\n"
        f"  database       {settings.database_url}\n"
        f"  engine server  {base}  (health: {base}/healthz)\n"
        f"  worker         pid {worker.pid}, {len(default_definitions().task_ids())} task(s): "
        f"{', '.join(default_definitions().task_ids()) or '-'}\n"
        f"  hot reload     {'on' if reload else 'off'} ({', '.join(settings.dirs)})\n"
        + "".join(f"  {s.label:<13}  {s.line}\n" for s in app_servers)
        + "Press Ctrl-C to stop.\n",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def watch() -> None:
        nonlocal worker
        from watchfiles import PythonFilter, awatch

        folders = [str(settings.project_root / d) for d in settings.dirs]
        async for changes in awatch(*folders, watch_filter=PythonFilter(), stop_event=stop):
            names = sorted({os.path.relpath(p, settings.project_root) for _, p in changes})
            print(f"Task code changed ({', '.join(names)}); restarting the worker…", flush=True)
            await _stop_worker(worker)
            worker = await _start_worker(settings, concurrency)

    watcher = asyncio.create_task(watch()) if reload else None
    await stop.wait()
    print("Stopping…", flush=True)
    if watcher is not None:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    await _stop_worker(worker)
    for app_server in app_servers:
        await app_server.stop()
    server.should_exit = True
    await server_task
    await engine.close()
