"""The process's default engine: what ``my_task.trigger`` and friends use.

``shipyard.configure(...)`` replaces it; otherwise it is built on first use from the project's
settings (``[tool.shipyard]``, ``SHIPYARD_*``).
"""

from __future__ import annotations

from typing import Any

from shipyard.config import Settings, load_settings
from shipyard.engine.engine import Engine


class _EngineRegistry:
    def __init__(self) -> None:
        self.engine: Engine | None = None


_registry = _EngineRegistry()


def get_engine() -> Engine:
    """The engine of this process, created from settings on first use."""
    if _registry.engine is None:
        _registry.engine = Engine(load_settings())
    return _registry.engine


def set_engine(engine: Engine | None) -> None:
    """Make ``engine`` the process's default (the worker and tests do this)."""
    _registry.engine = engine


async def aclose() -> None:
    """Close the process's default engine (its database connections and threads).

    Call it before a script that triggered runs exits (or in a FastAPI lifespan's shutdown)."""
    engine, _registry.engine = _registry.engine, None
    if engine is not None:
        await engine.close()


def configure(**settings: Any) -> Settings:
    """Configure Shipyard in code (highest precedence); returns the settings in force.

    Example::

        shipyard.configure(database_url="sqlite:///data/app.db", environment="staging")
    """
    resolved = load_settings(**settings)
    _registry.engine = Engine(resolved)
    return resolved
