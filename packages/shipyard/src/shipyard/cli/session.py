"""How a CLI command reaches the engine: settings, one event loop, the engine's lifetime, and
every :class:`~shipyard.errors.ShipyardError` turned into one line and an exit code.

Example::

    settings = load_cli_settings()
    run = run_async(lambda: with_engine(settings, lambda: runs.retrieve(run_id)))
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer

from shipyard.cli.output import fail
from shipyard.config import Settings, load_settings
from shipyard.errors import ConfigError, RunTimeoutError, ShipyardError

__all__ = [
    "ApiUrlOption",
    "load_cli_settings",
    "require_extra",
    "run_async",
    "wait_for_final",
    "with_engine",
]

T = TypeVar("T")

INTERRUPTED = 130
"""The exit code of a command stopped with Ctrl-C (128 + SIGINT), as shells report it."""


ApiUrlOption = Annotated[
    str | None,
    typer.Option(
        "--api-url",
        help="Act on a remote engine server over HTTP (SHIPYARD_API_URL; the key is "
        "SHIPYARD_SECRET_KEY) instead of opening the database here.",
        show_default=False,
    ),
]
"""``--api-url URL``: every command that reaches the engine through the SDK takes it."""


def load_cli_settings(**overrides: Any) -> Settings:
    """The project's settings (``overrides`` win); a bad setting is one line and exit 1."""
    try:
        return load_settings(**overrides)
    except ShipyardError as exc:
        fail(exc)


def run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine ``factory()`` makes; errors become one line, Ctrl-C exit 130."""
    try:
        return asyncio.run(factory())
    except ShipyardError as exc:
        fail(exc)
    except KeyboardInterrupt:
        raise typer.Exit(INTERRUPTED) from None


async def with_engine(
    settings: Settings,
    body: Callable[[], Awaitable[T]],
    *,
    local_only: str | None = None,
) -> T:
    """Run ``body`` with an engine on ``settings`` as the process's default (what the SDK
    calls use), then close it.

    With ``settings.api_url`` the default is a remote client of that engine server instead
    (nothing is opened here). ``local_only`` names a command that reads the engine's database
    itself (``"shipyard versions list"``): with an API URL it stops with a line saying so.
    """
    if settings.api_url is not None:
        if local_only is not None:
            raise ConfigError(
                f"{local_only} reads the engine's database directly and does not work over "
                "HTTP: unset SHIPYARD_API_URL and run it where the database is reachable."
            )
        return await _with_client(settings, body)
    from shipyard.engine.engine import Engine
    from shipyard.engine.registry import set_engine

    engine = Engine(settings)
    set_engine(engine)
    try:
        await engine.start()
        return await body()
    finally:
        await engine.close()
        set_engine(None)


async def _with_client(settings: Settings, body: Callable[[], Awaitable[T]]) -> T:
    from shipyard.client import RemoteClient
    from shipyard.sdk.backend import set_client

    client = RemoteClient.from_settings(settings)
    set_client(client)
    try:
        return await body()
    finally:
        set_client(None)
        await client.close()


async def wait_for_final(run_id: str, timeout: float) -> None:
    """Wait until the run is final, at most ``timeout`` seconds (:class:`RunTimeoutError`):
    woken in-process by the engine, or by polling a remote one."""
    from shipyard.engine.engine import Engine
    from shipyard.sdk.backend import default_backend

    backend = default_backend()
    if isinstance(backend, Engine):
        await backend.wait_for_final(run_id, timeout=timeout)
        return
    deadline = time.monotonic() + timeout
    interval = 0.05
    while True:
        run = await backend.retrieve_run(run_id)
        if run.is_completed:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RunTimeoutError(
                f"Run {run_id} did not finish within {timeout} s (status {run.status}).",
                run_id=run_id,
                status=str(run.status),
            )
        await asyncio.sleep(min(interval, remaining))
        interval = min(interval * 1.5, 0.5)


def require_extra(extra: str, what: str, modules: tuple[str, ...] | None = None) -> None:
    """Stop with one line naming ``extra`` unless the modules it installs are here."""
    from shipyard.extras import require

    try:
        require(extra, what, modules)
    except ShipyardError as exc:
        fail(exc)
