"""Helpers the HTTP API tests import (fixtures are in ``conftest.py``)."""

from __future__ import annotations


def bearer(key: str) -> dict[str, str]:
    """The Authorization header for ``key``."""
    return {"Authorization": f"Bearer {key}"}
