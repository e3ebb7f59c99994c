"""``shipyard dev``: the whole local stack in one command.

The engine server runs in this process; the worker runs as a child process that is restarted
when a file under the task folders changes (new attempts use new code; queued runs stay
queued; running attempts get a short grace and are then released back to the queue).

Every part sees the same settings: the project's ``.env`` is read before the settings are
(variables already set win), the secret key is resolved once, and the resulting settings are
exported as ``SHIPYARD_*`` variables to this process (the app API and functions it serves) and
to each worker it starts, so a worker signs wait token URLs for this server's port with this
server's key.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import re
import signal
import socket
import sys
from urllib.parse import urlsplit

import uvicorn

from shipyard.config import Settings, find_project_root
from shipyard.discovery import discover
from shipyard.engine.definitions import default_definitions
from shipyard.engine.engine import Engine
from shipyard.engine.registry import set_engine
from shipyard.errors import ConfigError, PortInUseError
from shipyard.server.app import create_app, dashboard_may_open
from shipyard.tooling.apphost import bind_listener, server_config, start_app_servers
from shipyard.tooling.dotenv import load_into_environ
from shipyard.tooling.envcheck import mask

log = logging.getLogger("shipyard.dev")
RELOAD_GRACE_SECONDS = 5.0


_QUERY_PASSWORD = re.compile(r"(?i)((?:^|&)(?:ssl)?password=)([^&]*)")


def load_project_dotenv() -> list[str]:
    """Add the project's ``.env`` to this process's environment (set variables win).

    Called before the settings are loaded, so ``SHIPYARD_*`` values in ``.env`` count for the
    engine server as they do for everything ``dev`` starts. Returns the names added.
    """
    return load_into_environ(find_project_root() / ".env", os.environ)


def masked_url(url: str) -> str:
    """``url`` with its password masked as check-envs masks secrets (prefix and length).

    Example::

        >>> masked_url("postgresql://app:correct-horse-battery@db:5432/app")
        'postgresql://app:corr… (21 chars)@db:5432/app'
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:{mask(parts.password)}@{hostinfo}"
    query = _QUERY_PASSWORD.sub(lambda m: m.group(1) + mask(m.group(2)), parts.query)
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # nothing secret (and sqlite:/// keeps its slashes)
    return parts._replace(netloc=netloc, query=query).geturl()


def share_settings(settings: Settings) -> Settings:
    """Fix the secret key and export ``settings`` to this process's environment.

    Returns the settings with the key filled in. Children started afterwards (the worker) and
    apps served in this process load exactly these settings.
    """
    settings = settings.model_copy(update={"secret_key": settings.resolved_secret_key()})
    for name, value in settings.to_environ().items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    return settings


def listen(settings: Settings) -> socket.socket:
    """The engine server's listening socket, or a one-line error naming the port."""
    host, port = settings.server_host, settings.server_port
    try:
        return bind_listener(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"Port {port} on {host} is already in use (another `shipyard dev` or "
                f"`shipyard server`?). Pick another one with --port {port + 1} or "
                f"SHIPYARD_SERVER_PORT={port + 1}.",
                port=port,
                host=host,
            ) from None
        raise ConfigError(
            f"The engine server cannot listen on {host}:{port}: {exc.strerror}. "
            "Set another port with --port or SHIPYARD_SERVER_PORT.",
            port=port,
            host=host,
        ) from None


async def _start_worker(settings: Settings, concurrency: int | None) -> asyncio.subprocess.Process:
    # The worker loads its settings from SHIPYARD_* (see share_settings): same port, key,
    # database, environment and .env values as this process.
    env = dict(os.environ)
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
    """Run engine server + worker (+ reload) until Ctrl-C or SIGTERM.

    Raises:
        PortInUseError: the engine server's port is taken (nothing was started).
        ConfigError: the settings or the secret key are not usable.
    """
    sock = listen(settings)  # first: a taken port is reported before anything starts
    settings = share_settings(settings)
    engine = Engine(settings)
    await engine.start()
    discover(settings)  # fail fast on a broken task module, and list what was found
    dashboard_open = dashboard_may_open(settings.environment, settings.server_host)
    app = create_app(engine, dashboard_open=dashboard_open)
    server = uvicorn.Server(server_config(app, lifespan="off"))
    # This process handles SIGINT/SIGTERM itself, to stop the worker before the server.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    server_task = asyncio.create_task(server.serve(sockets=[sock]))
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
        f"  database       {masked_url(settings.database_url)}\n"
        f"  engine server  {base}  (health: {base}/healthz)\n"
        f"  dashboard      {base}/dashboard"
        f"  ({'open: development on loopback' if dashboard_open else 'sign in: secret key'})\n"
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
    _forget_mcp_record(settings)


def _forget_mcp_record(settings: Settings) -> None:
    """Remove the record ``shipyard mcp`` keeps of the dev server it started
    (``.shipyard/dev-server.json``) when it names this process: a dev server that stops, however
    it was stopped, leaves no record of itself — even when the MCP server that asked it to stop
    was killed before it could remove the record."""
    path = settings.project_root / ".shipyard" / "dev-server.json"
    with contextlib.suppress(OSError, ValueError, AttributeError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
