"""Idempotency keys: hashing with a scope (``docs/runs.md``).

A key is the SHA-256 (64 hex characters) of its parts joined with ``-`` plus its scope's parts:
``run`` adds the current run's id, ``attempt`` the run id and attempt number, ``global`` nothing.
Outside a run every scope behaves as global. Every key a user passes to a trigger is hashed in
the ``run`` scope — whatever its length — unless it is an :class:`IdempotencyKey` (what
``idempotency_keys.create`` returns), which is already final.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal

from shipyard.engine.scope import current_scope
from shipyard.errors import IdempotencyKeyError

__all__ = ["MAX_KEY_LENGTH", "IdempotencyKey", "Scope", "hash_key", "key_parts", "normalize"]

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


def create(key: str | Sequence[str], scope: Scope = "run") -> IdempotencyKey:
    """Hash ``key`` with the current run's context (none outside a run)."""
    parts = key_parts(key)
    run_scope = current_scope()
    run_id = run_scope.ctx.run.id if run_scope else None
    attempt = run_scope.ctx.attempt.number if run_scope else None
    return hash_key(parts, scope, run_id, attempt)


def normalize(key: object) -> str:
    """The stored form of a key passed to a trigger: hashed in run scope unless already final."""
    if isinstance(key, IdempotencyKey):
        return str(key)
    if isinstance(key, str) or (
        isinstance(key, Sequence) and all(isinstance(p, str | int) for p in key)
    ):
        return str(create(key if isinstance(key, str) else [str(p) for p in key], scope="run"))
    raise IdempotencyKeyError(
        f"An idempotency key must be a string or a list of strings; got {type(key).__name__}."
    )
