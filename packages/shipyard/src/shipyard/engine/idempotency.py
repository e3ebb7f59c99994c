"""Idempotency keys: hashing with a scope (``docs/runs.md``).

A key is the SHA-256 (64 hex characters) of its parts joined with ``-`` plus its scope's parts:
``run`` adds the current run's id, ``attempt`` the run id and attempt number, ``global`` nothing.
Outside a run every scope behaves as global. Every key a user passes to a trigger is hashed in
the ``run`` scope — whatever its length — unless it is an :class:`IdempotencyKey` (what
``idempotency_keys.create`` returns), which is already final.
"""

from __future__ import annotations

from collections.abc import Sequence

from shipyard.engine.scope import current_scope
from shipyard.errors import IdempotencyKeyError
from shipyard.idempotency import MAX_KEY_LENGTH, IdempotencyKey, Scope, hash_key, key_parts

__all__ = ["MAX_KEY_LENGTH", "IdempotencyKey", "Scope", "hash_key", "key_parts", "normalize"]


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
