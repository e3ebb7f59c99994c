"""Idempotency keys: ``idempotency_keys.create`` and ``idempotency_keys.reset``.

A key is a SHA-256 (64 hex chars) of its parts plus its scope: ``run`` adds the current run's
id, ``attempt`` adds the run id and attempt number, ``global`` adds nothing. Outside a run every
scope behaves as global. A raw string given as ``idempotency_key=`` is hashed with the ``run``
scope; a 64-character string is taken as already hashed. Keys are unique per (environment,
task): the same key on another task does not deduplicate.

Example::

    key = idempotency_keys.create(["charge", order_id], scope="global")
    await charge.trigger({"order_id": order_id}, idempotency_key=key)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal

from shipyard.errors import IdempotencyKeyError
from shipyard.sdk.context import current_scope
from shipyard.store.protocol import IdempotencyKeyResetParams

Scope = Literal["run", "attempt", "global"]
MAX_KEY_LENGTH = 2048


class IdempotencyKey(str):
    """A hashed idempotency key (what :func:`create` returns)."""

    __slots__ = ()


def _hash(parts: Sequence[str], scope: Scope, run_id: str | None, attempt: int | None) -> str:
    scope_parts: list[str] = []
    if scope == "run" and run_id:
        scope_parts = [run_id]
    elif scope == "attempt" and run_id:
        scope_parts = [run_id, str(attempt)]
    return hashlib.sha256("-".join([*parts, *scope_parts]).encode()).hexdigest()


def _parts(key: str | Sequence[str]) -> list[str]:
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


def normalize(key: str | Sequence[str]) -> str:
    """The stored form of a key passed to trigger: hashed in run scope unless already hashed."""
    if isinstance(key, IdempotencyKey):
        return str(key)
    if isinstance(key, str) and len(key) == 64:
        return key
    return str(_IdempotencyKeys().create(key, scope="run"))


class _IdempotencyKeys:
    """Create and reset idempotency keys."""

    def create(self, key: str | Sequence[str], *, scope: Scope = "run") -> IdempotencyKey:
        """Hash ``key`` (a string or list of parts) with the scope's context."""
        parts = _parts(key)
        run_scope = current_scope()
        run_id = run_scope.ctx.run.id if run_scope else None
        attempt = run_scope.ctx.attempt.number if run_scope else None
        return IdempotencyKey(_hash(parts, scope, run_id, attempt))

    async def reset(
        self,
        task_id: str,
        key: str | Sequence[str],
        *,
        scope: Scope = "run",
        parent_run_id: str | None = None,
        attempt_number: int | None = None,
    ) -> int:
        """Clear the key on every run of ``task_id`` holding it; return how many runs.

        Outside a run, a ``run``/``attempt``-scoped raw key needs ``parent_run_id`` (and
        ``attempt_number``) to rebuild the hash.
        """
        from shipyard.engine.registry import get_engine

        if isinstance(key, IdempotencyKey) or (isinstance(key, str) and len(key) == 64):
            hashed = str(key)
        else:
            run_scope = current_scope()
            run_id = parent_run_id or (run_scope.ctx.run.id if run_scope else None)
            attempt = attempt_number or (run_scope.ctx.attempt.number if run_scope else None)
            if scope in ("run", "attempt") and run_id is None:
                raise IdempotencyKeyError(
                    f"Resetting a {scope}-scoped key outside a run needs parent_run_id"
                    + (" and attempt_number" if scope == "attempt" else "")
                    + " to rebuild the key."
                )
            if scope == "attempt" and attempt is None:
                raise IdempotencyKeyError("Resetting an attempt-scoped key needs attempt_number.")
            hashed = _hash(_parts(key), scope, run_id, attempt)
        engine = get_engine()
        return await engine.store.idempotency_key_reset(
            IdempotencyKeyResetParams(engine.environment, task_id, hashed, engine.clock())
        )


idempotency_keys = _IdempotencyKeys()
