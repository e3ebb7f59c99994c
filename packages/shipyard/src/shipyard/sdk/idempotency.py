"""Idempotency keys: ``idempotency_keys.create`` and ``idempotency_keys.reset``.

A key is a SHA-256 (64 hex chars) of its parts plus its scope: ``run`` adds the current run's
id, ``attempt`` adds the run id and attempt number, ``global`` adds nothing. Outside a run every
scope behaves as global. Every raw string given as ``idempotency_key=`` is hashed in the ``run``
scope, whatever its length; pass what ``create`` returns to choose another scope. Keys are unique
per (environment, task): the same key on another task does not deduplicate.

Example::

    key = idempotency_keys.create(["charge", order_id], scope="global")
    await charge.trigger({"order_id": order_id}, idempotency_key=key)
"""

from __future__ import annotations

from collections.abc import Sequence

from shipyard.engine.idempotency import IdempotencyKey, Scope, create, hash_key, key_parts
from shipyard.engine.scope import current_scope
from shipyard.errors import IdempotencyKeyError
from shipyard.sdk.backend import current_backend

__all__ = ["IdempotencyKey", "idempotency_keys"]


class _IdempotencyKeys:
    """Create and reset idempotency keys."""

    def create(self, key: str | Sequence[str], *, scope: Scope = "run") -> IdempotencyKey:
        """Hash ``key`` (a string or list of parts) with the scope's context."""
        return create(key, scope)

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

        ``key`` is what ``create`` returned, or the raw key: outside a run, a ``run``- or
        ``attempt``-scoped raw key needs ``parent_run_id`` (and ``attempt_number``) to rebuild
        the hash.
        """
        if isinstance(key, IdempotencyKey):
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
            hashed = str(hash_key(key_parts(key), scope, run_id, attempt))
        return await current_backend().reset_idempotency_key(task_id, hashed)


idempotency_keys = _IdempotencyKeys()
