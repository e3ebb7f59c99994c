"""``wait``: durable waits inside a task.

Example::

    from shipyard import task, wait

    @task(id="reminder")
    async def reminder(payload: dict) -> None:
        await wait.for_(minutes=5)      # over 5 s: the run suspends and gives its slot back
        await wait.until(payload["at"])  # a datetime or ISO-8601 string

Waits up to 5 s sleep in process and keep the slot. Longer waits are durable: the run is
WAITING (holding no concurrency slot) until the time comes, then re-queues for a slot and
continues; code before the wait runs once while its worker lives (``docs/waits.md``).
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from shipyard.durations import parse_duration_ms
from shipyard.engine.waits import IN_PROCESS_WAIT_MS, durable_call, require_durable_scope
from shipyard.errors import ValidationError
from shipyard.ids import new_id
from shipyard.store.protocol import WaitpointCreateParams
from shipyard.store.records import WaitpointRecord

UTC = datetime.UTC

_UNIT_MS = {
    "seconds": 1_000,
    "minutes": 60_000,
    "hours": 3_600_000,
    "days": 86_400_000,
    "weeks": 7 * 86_400_000,
    "months": 30 * 86_400_000,  # SEMANTICS §5: a month is 30 days
    "years": 365 * 86_400_000,
}


class _Wait:
    """The ``wait`` namespace."""

    async def for_(
        self,
        *,
        seconds: float = 0,
        minutes: float = 0,
        hours: float = 0,
        days: float = 0,
        weeks: float = 0,
        months: float = 0,
        years: float = 0,
        idempotency_key: str | None = None,
        idempotency_key_ttl: str | int | None = None,
    ) -> None:
        """Wait for a duration (units add up). Only inside a task.

        With ``idempotency_key`` a retried attempt reuses the first attempt's wait and so
        keeps its original deadline.
        """
        amounts = {
            "seconds": seconds,
            "minutes": minutes,
            "hours": hours,
            "days": days,
            "weeks": weeks,
            "months": months,
            "years": years,
        }
        total_ms = int(sum(amount * _UNIT_MS[unit] for unit, amount in amounts.items()))
        scope = require_durable_scope("wait.for_")
        await self._wait_ms(scope, total_ms, None, idempotency_key, idempotency_key_ttl)

    async def until(
        self,
        date: datetime.datetime | str,
        *,
        throw_if_in_the_past: bool = False,
        idempotency_key: str | None = None,
        idempotency_key_ttl: str | int | None = None,
    ) -> None:
        """Wait until ``date`` (a datetime, naive means UTC, or an ISO-8601 string).

        A date in the past returns at once, or raises :class:`ValidationError` with
        ``throw_if_in_the_past``.
        """
        if isinstance(date, str):
            text = date.strip()
            if text.endswith(("Z", "z")):
                text = text[:-1] + "+00:00"
            try:
                date = datetime.datetime.fromisoformat(text)
            except ValueError as exc:
                raise ValidationError(f"wait.until: {date!r} is not an ISO-8601 date.") from exc
        if date.tzinfo is None:
            date = date.replace(tzinfo=datetime.UTC)
        scope = require_durable_scope("wait.until")
        at_ms = int(date.timestamp() * 1000)
        remaining = at_ms - scope.engine.clock()
        if remaining <= 0 and throw_if_in_the_past:
            raise ValidationError(f"wait.until: the date {date.isoformat()} is in the past.")
        await self._wait_ms(scope, remaining, at_ms, idempotency_key, idempotency_key_ttl)

    async def _wait_ms(
        self,
        scope: Any,
        total_ms: int,
        at_ms: int | None,
        idempotency_key: str | None,
        idempotency_key_ttl: str | int | None,
    ) -> None:
        if total_ms <= 0:
            return
        if total_ms <= IN_PROCESS_WAIT_MS:
            await asyncio.sleep(total_ms / 1000)
            return
        engine = scope.engine
        now = engine.clock()
        completes_at = at_ms if at_ms is not None else now + total_ms
        key = str(idempotency_key) if idempotency_key is not None else None
        ttl_ms = parse_duration_ms(idempotency_key_ttl) if idempotency_key_ttl is not None else None

        async def create() -> WaitpointCreateParams:
            return WaitpointCreateParams(
                id=new_id("waitpoint"),
                environment=engine.environment,
                kind="DATETIME",
                now=now,
                completes_at=completes_at,
                idempotency_key=key,
                idempotency_key_expires_at=now + ttl_ms if key and ttl_ms else None,
            )

        def info(waitpoint: WaitpointRecord) -> dict[str, Any]:
            at = waitpoint.completes_at or completes_at
            return {"type": "duration", "date": datetime.datetime.fromtimestamp(at / 1000, UTC)}

        await durable_call(scope, "wait", create, info)


wait = _Wait()
