"""Idempotency key hashing, shared by the engine and the remote client (a neutral module).

A key is the SHA-256 (64 hex characters) of its parts joined with ``-`` plus its scope's parts:
``run`` adds the current run's id, ``attempt`` the run id and attempt number, ``global`` nothing.
Outside a run every scope behaves as global. The engine (in-process) and the remote client
(before it sends a trigger) hash with these same functions, so a key used locally and over
HTTP deduplicates the same runs; Trigger.dev's TypeScript SDK hashes the same way.

Example::

    >>> str(hash_key(["order-1"], "global", None, None))[:12]
    '0bafe22156d2'
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal

from shipyard.errors import IdempotencyKeyError

__all__ = [
    "MAX_KEY_LENGTH",
    "IdempotencyKey",
    "Scope",
    "hash_key",
    "key_parts",
    "outside_run_key",
]

Scope = Literal["run", "attempt", "global"]
MAX_KEY_LENGTH = 2048


class IdempotencyKey(str):
    """A hashed idempotency key (what ``idempotency_keys.create`` returns)."""

    __slots__ = ()


def key_parts(key: str | Sequence[str]) -> list[str]:
    """The key's parts (a string is one part); empty or over 2,048 characters is an error."""
    parts = [key] if isinstance(key, str) else [str(p) for p in key]
    total = sum(len(p) for p in parts)
    if total == 0:
        raise IdempotencyKeyError("An idempotency key cannot be empty.")
    if total > MAX_KEY_LENGTH:
        raise IdempotencyKeyError(
            f"An idempotency key can be at most {MAX_KEY_LENGTH} characters; got {total}.",
            limit=MAX_KEY_LENGTH,
            size=total,
        )
    return parts


def hash_key(
    parts: Sequence[str], scope: Scope, run_id: str | None, attempt: int | None
) -> IdempotencyKey:
    """SHA-256 hex of the parts plus the scope's parts."""
    if scope not in ("run", "attempt", "global"):
        raise IdempotencyKeyError(
            f"Unknown idempotency key scope {scope!r}; one of run, attempt, global."
        )
    scope_parts: list[str] = []
    if scope == "run" and run_id:
        scope_parts = [run_id]
    elif scope == "attempt" and run_id:
        scope_parts = [run_id, str(attempt)]
    return IdempotencyKey(hashlib.sha256("-".join([*parts, *scope_parts]).encode()).hexdigest())


def outside_run_key(key: object) -> IdempotencyKey:
    """The stored form of a key given to a trigger outside any run: an
    :class:`IdempotencyKey` as it is; a string or a list of parts hashed (no run to scope it).

    Example::

        >>> outside_run_key("a") == hash_key(["a"], "run", None, None)
        True
    """
    if isinstance(key, IdempotencyKey):
        return key
    if isinstance(key, str):
        return hash_key(key_parts(key), "run", None, None)
    if isinstance(key, Sequence) and all(isinstance(p, str | int) for p in key):
        return hash_key(key_parts([str(p) for p in key]), "run", None, None)
    raise IdempotencyKeyError(
        f"An idempotency key must be a string or a list of strings; got {type(key).__name__}."
    )
