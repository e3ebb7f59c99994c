"""Which engine an SDK call goes to: inside a run, the engine executing it; elsewhere the
process's default engine (``shipyard.configure`` / settings)."""

from __future__ import annotations

from shipyard.engine.engine import Engine
from shipyard.engine.registry import get_engine
from shipyard.engine.scope import current_scope

__all__ = ["current_engine"]


def current_engine() -> Engine:
    """The engine the current call should use."""
    scope = current_scope()
    return scope.engine if scope is not None else get_engine()
