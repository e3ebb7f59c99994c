"""The process's default engine: what ``my_task.trigger`` and friends use.

``shipyard.configure(...)`` replaces it; otherwise it is built on first use from the project's
settings (``[tool.shipyard]``, ``SHIPYARD_*``). ``await shipyard.aclose()`` closes an engine
built either way. An engine installed with :func:`set_engine` (by ``shipyard dev`` for the app
API it serves, a worker, a test) belongs to whoever installed it: ``aclose()`` leaves it open,
so an app's shutdown hook cannot close the engine of the process that hosts the app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.config import Settings, load_settings

if TYPE_CHECKING:
    # Imported where an engine is built: a process that talks to a remote engine server (the
    # CLI with --api-url, the MCP server) never loads the engine and its store.
    from shipyard.engine.engine import Engine


class _EngineRegistry:
    def __init__(self) -> None:
        self.engine: Engine | None = None
        # True when the registry built the engine (and so aclose() closes it).
        self.owned = False


_registry = _EngineRegistry()


def get_engine() -> Engine:
    """The engine of this process, created from settings on first use."""
    if _registry.engine is None:
        from shipyard.engine.engine import Engine

        _registry.engine = Engine(load_settings())
        _registry.owned = True
    return _registry.engine


def installed_engine() -> Engine | None:
    """The process's default engine if one is installed or built already (never builds one)."""
    return _registry.engine


def set_engine(engine: Engine | None) -> None:
    """Make ``engine`` the process's default (the worker and tests do this); the caller
    closes it (:func:`aclose` does not)."""
    _registry.engine = engine
    _registry.owned = False


async def aclose() -> None:
    """Close the process's default engine (its database connections and threads).

    Call it before a script that triggered runs exits (or in a FastAPI lifespan's shutdown).
    An engine installed with :func:`set_engine` is left to its owner. Calling it again, or
    with no engine yet, does nothing; the next SDK call builds a new engine."""
    if _registry.engine is None or not _registry.owned:
        return
    engine, _registry.engine, _registry.owned = _registry.engine, None, False
    await engine.close()


def configure(**settings: Any) -> Settings:
    """Configure Shipyard in code (highest precedence); returns the settings in force.

    Example::

        shipyard.configure(database_url="sqlite:///data/app.db", environment="staging")
    """
    from shipyard.engine.engine import Engine

    resolved = load_settings(**settings)
    _registry.engine = Engine(resolved)
    _registry.owned = True
    return resolved
