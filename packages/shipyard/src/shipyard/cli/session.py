"""How a CLI command reaches the engine: settings, one event loop, the engine's lifetime, and
every :class:`~shipyard.errors.ShipyardError` turned into one line and an exit code.

Example::

    settings = load_cli_settings()
    run = run_async(lambda: with_engine(settings, lambda: runs.retrieve(run_id)))
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import typer

from shipyard.cli.output import fail
from shipyard.config import Settings, load_settings
from shipyard.errors import ShipyardError

__all__ = ["load_cli_settings", "require_extra", "run_async", "with_engine"]

T = TypeVar("T")

INTERRUPTED = 130
"""The exit code of a command stopped with Ctrl-C (128 + SIGINT), as shells report it."""


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


async def with_engine(settings: Settings, body: Callable[[], Awaitable[T]]) -> T:
    """Run ``body`` with an engine on ``settings`` as the process's default (what the SDK
    calls use), then close it."""
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


def require_extra(extra: str, what: str, modules: tuple[str, ...] | None = None) -> None:
    """Stop with one line naming ``extra`` unless the modules it installs are here."""
    from shipyard.extras import require

    try:
        require(extra, what, modules)
    except ShipyardError as exc:
        fail(exc)
