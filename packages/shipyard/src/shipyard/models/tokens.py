"""Wait tokens: what ``wait.create_token``, ``wait.retrieve_token`` and ``wait.for_token``
return."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import WaitpointTimeoutError
from shipyard.models.handles import lazy_token, signed_once


@dataclass(frozen=True, slots=True, init=False)
class WaitToken:
    """A created token: complete it with ``wait.complete_token(token.id, data)`` or by
    POSTing JSON to ``url`` (no other auth needed: the URL is signed).

    ``public_access_token`` is a JWT that can complete only this token; the engine signs it
    lazily, on first read, as a run handle's: most tokens made inside a run are only waited
    for, and signing cost a fifth of a run's park at a token (PyJWT, ~40 µs).
    """

    id: str
    url: str
    is_cached: bool
    _token: str | None = field(repr=False, compare=False)
    _mint: Callable[[], str] | None = field(repr=False, compare=False)

    def __init__(
        self,
        id: str,
        url: str,
        is_cached: bool,
        public_access_token: str = "",
        *,
        token_factory: Callable[[], str] | None = None,
    ) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "id", id)
        setattr_(self, "url", url)
        setattr_(self, "is_cached", is_cached)
        lazy_token(self, public_access_token, token_factory)

    @property
    def public_access_token(self) -> str:
        """A JWT that can complete only this token (signed on first access, then cached)."""
        return signed_once(self)


@dataclass(frozen=True, slots=True)
class WaitTokenInfo:
    """A token as ``wait.retrieve_token`` / ``wait.list_tokens`` report it.

    ``status`` is WAITING, COMPLETED or TIMED_OUT; times are epoch milliseconds.
    """

    id: str
    url: str
    status: str
    completed_at: int | None
    timeout_at: int | None
    idempotency_key: str | None
    idempotency_key_expires_at: int | None
    tags: tuple[str, ...]
    created_at: int
    output: Any = None
    error: WaitpointTimeoutError | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for the CLI and tools: the fields above, times as ISO 8601 strings
        (or null), ``error`` as ``{"name", "message"}`` (or null)."""
        return {
            "id": self.id,
            "url": self.url,
            "status": self.status,
            "completed_at": _iso(self.completed_at),
            "timeout_at": _iso(self.timeout_at),
            "idempotency_key": self.idempotency_key,
            "idempotency_key_expires_at": _iso(self.idempotency_key_expires_at),
            "tags": list(self.tags),
            "created_at": _iso(self.created_at),
            "output": self.output,
            "error": (
                None
                if self.error is None
                else {"name": type(self.error).__name__, "message": self.error.message}
            ),
        }


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).isoformat()


@dataclass(frozen=True, slots=True)
class WaitTokenResult:
    """What ``wait.for_token`` resolves to: ``ok`` with ``output``, or a timeout ``error``."""

    ok: bool
    output: Any = None
    error: WaitpointTimeoutError | None = None

    def unwrap(self) -> Any:
        """The output, or raise the :class:`WaitpointTimeoutError`."""
        if self.ok:
            return self.output
        assert self.error is not None
        raise self.error


@dataclass(frozen=True, slots=True)
class WaitTokenPage:
    """One page of tokens, newest first (without their output); pass ``next_cursor`` on."""

    items: tuple[WaitTokenInfo, ...] = ()
    next_cursor: str | None = None
