"""Secret keys as ``shipyard keys`` reports them."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

__all__ = ["AccessKey", "CreatedKey"]


def _iso(value: datetime.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True, slots=True)
class AccessKey:
    """A secret key of one environment, without the key itself (only a hash is stored).

    ``prefix`` is the key's first characters, enough to recognise it (``sk_prod_AbCd``).
    """

    id: str
    environment: str
    name: str | None
    prefix: str
    created_at: datetime.datetime
    revoked_at: datetime.datetime | None = None

    @property
    def revoked(self) -> bool:
        """Whether the key was revoked (it no longer authenticates)."""
        return self.revoked_at is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (ISO-8601 times), for ``--json`` output."""
        return {
            "id": self.id,
            "environment": self.environment,
            "name": self.name,
            "prefix": self.prefix,
            "created_at": _iso(self.created_at),
            "revoked_at": _iso(self.revoked_at),
        }


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A key just created: ``key`` is the secret itself, shown this once and never again."""

    info: AccessKey
    key: str

    def to_dict(self) -> dict[str, Any]:
        """The key's fields plus ``key``."""
        return {**self.info.to_dict(), "key": self.key}
