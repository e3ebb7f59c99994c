"""Helpers the HTTP API tests import (fixtures are in ``conftest.py``)."""

from __future__ import annotations

from typing import Any

from shipyard.engine.engine import Engine
from shipyard.testing.servers import Serve as Serve

"""``url = await serve(app)`` (the ``serve`` fixture)."""


def bearer(key: str) -> dict[str, str]:
    """The Authorization header for ``key``."""
    return {"Authorization": f"Bearer {key}"}


def engine_with(engine: Engine, **settings: Any) -> Engine:
    """Another engine over ``engine``'s store with some settings changed (the store stays
    ``engine``'s to close)."""
    other = Engine(
        engine.settings.model_copy(update=settings),
        engine.store,
        clock=engine.clock,
        definitions=engine.definitions,
    )
    other._borrowed_store = True
    other._started = True
    return other
