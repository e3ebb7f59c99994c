"""Serving the template's apps locally: the API (``apps/api``) and the functions (``functions/``).

``shipyard dev`` uses this to serve, next to the engine server,

* the API app (``apps/api/src/app/main.py``, its ASGI ``app``) on ``api_port`` (8787, where
  ``wrangler dev`` serves a worker), and
* every folder ``functions/<name>/main.py`` that exposes an ASGI ``app``, on
  ``functions_port`` at ``/functions/v1/<name>`` (54321, the URL shape of
  ``supabase functions serve``).

Before importing them, the values of the project's ``.env`` are added to the environment
(variables already set win; placeholder values are skipped with one warning line), as
``wrangler dev`` does with ``.dev.vars``, and ``APP_ENV`` defaults to the Shipyard environment
(``development`` under ``shipyard dev``). A port of 0 turns
that server off; a project without ``apps/api`` or ``functions/`` simply has
nothing to serve. A port already in use is reported and skipped, never fatal: the engine and
worker still start.

Example::

    app = load_api_app(Path("."))                 # None when the project has no apps/api
    host = FunctionsHost(load_functions(Path(".")))
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import json
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shipyard.config import Settings
from shipyard.extras import missing_extra

if TYPE_CHECKING:
    import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_SOURCE = Path("apps/api/src")
API_MODULE = "app.main"
FUNCTIONS_DIR = Path("functions")
FUNCTIONS_PREFIX = "/functions/v1/"
log = logging.getLogger("shipyard.dev")


def load_api_app(root: Path) -> ASGIApp | None:
    """The API's ASGI app (``app.main:app`` under ``apps/api/src``), or None if absent."""
    source = (root / API_SOURCE).resolve()
    if not (source / "app" / "main.py").is_file():
        return None
    if str(source) not in sys.path:
        sys.path.insert(0, str(source))
    module = importlib.import_module(API_MODULE)
    app: ASGIApp = module.app
    return app


def load_functions(root: Path) -> dict[str, ASGIApp]:
    """``{name: app}`` for each ``functions/<name>/main.py`` defining an ASGI ``app``."""
    found: dict[str, ASGIApp] = {}
    folder = root / FUNCTIONS_DIR
    if not folder.is_dir():
        return found
    for main in sorted(folder.glob("*/main.py")):
        name = main.parent.name
        if name.startswith((".", "_")):
            continue
        module_name = "shipyard_functions." + name.replace("-", "_")
        spec = importlib.util.spec_from_file_location(module_name, main)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        app = getattr(module, "app", None)
        if callable(app):
            found[name] = app
    return found


class FunctionsHost:
    """One ASGI app routing ``/functions/v1/<name>[/rest]`` to each function's own app.

    The function sees ``root_path`` ``/functions/v1/<name>`` and a path of ``/`` or ``/rest``,
    as it would when deployed on its own.
    """

    def __init__(self, functions: dict[str, ASGIApp]) -> None:
        self.functions = dict(functions)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            while message["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
                message = await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        path: str = scope.get("path", "/")
        name, _, rest = path.removeprefix(FUNCTIONS_PREFIX).partition("/")
        app = self.functions.get(name) if path.startswith(FUNCTIONS_PREFIX) else None
        if app is None or scope["type"] not in ("http", "websocket"):
            await _not_found(send, sorted(self.functions))
            return
        inner = dict(scope)
        inner["root_path"] = scope.get("root_path", "") + FUNCTIONS_PREFIX + name
        inner["path"] = "/" + rest
        inner["raw_path"] = inner["path"].encode()
        await app(inner, receive, send)


async def _not_found(send: Send, names: list[str]) -> None:
    body = json.dumps(
        {
            "error": "Function not found",
            "functions": [FUNCTIONS_PREFIX + n for n in names],
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


@dataclass
class AppServer:
    """A uvicorn server started by :func:`start_app_servers`, and the line that announces it."""

    label: str
    line: str
    server: uvicorn.Server | None = None
    task: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        if self.server is None or self.task is None:
            return
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def bind_listener(host: str, port: int) -> socket.socket:
    """A non-blocking socket listening on ``host:port``, for ``uvicorn.Server.serve(sockets=)``.

    Binding first, before anything starts, turns a taken port into an answer the caller can
    report in one line (uvicorn would exit the process from inside its task).

    Raises:
        OSError: the port is in use (``errno.EADDRINUSE``) or cannot be bound.
    """
    # IPPROTO_TCP, not 0: accepted sockets inherit the proto, and asyncio turns Nagle off
    # (TCP_NODELAY) only on sockets that say TCP. With Nagle on, every response written in two
    # sends (headers, then body) waits for the client's delayed ACK: ~40 ms per request.
    sock = socket.socket(
        socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def server_config(app: ASGIApp, *, lifespan: Literal["auto", "on", "off"]) -> uvicorn.Config:
    """uvicorn settings of every server ``shipyard dev`` runs: quiet, our log handler.

    Raises:
        MissingExtraError: uvicorn is not installed (the ``engine`` extra). The loaders above
            need no server, so ``shipyard deps`` can import them in any install.
    """
    try:
        import uvicorn
    except ImportError as exc:
        raise missing_extra(exc, "engine", "Serving apps (shipyard dev, server)") from None
    # log_config=None: uvicorn's own lines go through the process's handler (text or JSON).
    return uvicorn.Config(app, log_level="warning", lifespan=lifespan, log_config=None)


async def _serve(label: str, app: ASGIApp, host: str, port: int, url: str) -> AppServer:
    config = server_config(app, lifespan="on")  # first: says which extra when uvicorn is absent
    try:
        sock = bind_listener(host, port)
    except OSError as exc:
        return AppServer(label, f"not started: port {port}: {exc.strerror} (set another port)")
    import uvicorn

    server = uvicorn.Server(config)
    # shipyard dev handles SIGINT/SIGTERM itself and stops these servers in order.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(1000):  # uvicorn exposes no start event; poll for up to 20 s
        if server.started or task.done():
            break
        await asyncio.sleep(0.02)
    if task.done() or not server.started:
        server.should_exit = True
        sock.close()
        detail = repr(task.exception()) if task.done() else "did not start in time"
        return AppServer(label, f"not started on port {port}: {detail}")
    return AppServer(label, url, server, task)


async def start_app_servers(settings: Settings) -> list[AppServer]:
    """Start the API and functions servers that the project has and the settings enable."""
    root = settings.project_root
    host = settings.server_host
    started: list[AppServer] = []
    # The apps read their configuration from the environment, which `shipyard dev` filled from
    # the project's .env before reading its settings (placeholders left out). Say which
    # environment this is: the template API runs unauthenticated only when APP_ENV is
    # explicitly "development".
    os.environ.setdefault("APP_ENV", settings.environment)
    try:
        api = load_api_app(root) if settings.api_port else None
    except Exception as exc:  # a broken app must not stop the engine and worker
        log.exception("could not import the API app")
        started.append(AppServer("app api", f"not started: importing apps/api failed: {exc!r}"))
    else:
        if api is not None:
            base = f"http://{host}:{settings.api_port}  (apps/api)"
            started.append(await _serve("app api", api, host, settings.api_port, base))
    try:
        functions = load_functions(root) if settings.functions_port else {}
    except Exception as exc:
        log.exception("could not import the functions")
        started.append(AppServer("functions", f"not started: importing failed: {exc!r}"))
        functions = {}
    if functions:
        base = f"http://{host}:{settings.functions_port}{FUNCTIONS_PREFIX}"
        urls = ", ".join(base + name for name in functions)
        started.append(
            await _serve("functions", FunctionsHost(functions), host, settings.functions_port, urls)
        )
    return started
