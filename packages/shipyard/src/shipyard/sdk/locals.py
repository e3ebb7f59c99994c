"""Attempt-local values shared by middleware, hooks and the task function.

Example::

    db_local = locals.create("db")

    async def db_middleware(payload, ctx, next):
        locals.set(db_local, await connect())
        await next()

    @task(id="report", middleware=db_middleware)
    async def report(payload):
        db = locals.get_or_throw(db_local)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from shipyard.engine.scope import require_scope
from shipyard.errors import ShipyardError

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class LocalKey(Generic[T]):
    """A typed key created by :meth:`_Locals.create`."""

    name: str


class _Locals:
    """Create keys and get/set attempt-local values."""

    def create(self, name: str) -> LocalKey[Any]:
        """A new key; each call makes a distinct key even for the same name."""
        return LocalKey(name)

    def set(self, key: LocalKey[T], value: T) -> T:
        """Store a value for the current attempt."""
        require_scope("locals.set").locals[key] = value
        return value

    def get(self, key: LocalKey[T]) -> T | None:
        """The value, or None if unset."""
        value: T | None = require_scope("locals.get").locals.get(key)
        return value

    def get_or_throw(self, key: LocalKey[T]) -> T:
        """The value, or an error naming the key if unset."""
        store = require_scope("locals.get_or_throw").locals
        if key not in store:
            raise ShipyardError(f"Local '{key.name}' is not set in this attempt.")
        value: T = store[key]
        return value


locals = _Locals()
