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

import datetime
from collections.abc import AsyncIterator, Sequence
from typing import Any

from shipyard.engine.scope import RunScope
from shipyard.engine.waitpoints import token_error
from shipyard.engine.waits import (
    IN_PROCESS_WAIT_MS,
    require_durable_scope,
    wait_for_token,
    wait_until,
)
from shipyard.errors import ValidationError
from shipyard.jsonutil import loads
from shipyard.models.tokens import WaitToken, WaitTokenInfo, WaitTokenResult
from shipyard.sdk.backend import current_backend
from shipyard.sdk.pages import epoch_ms, every_item

__all__ = ["wait"]

_UNIT_MS = {
    "seconds": 1_000,
    "minutes": 60_000,
    "hours": 3_600_000,
    "days": 86_400_000,
    "weeks": 7 * 86_400_000,
    "months": 30 * 86_400_000,  # as in Trigger.dev: a month is 30 days
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
        total = 0.0
        for unit, amount in amounts.items():
            if not isinstance(amount, int | float) or isinstance(amount, bool):
                raise ValidationError(f"wait.for_: {unit} must be a number.")
            total += amount * _UNIT_MS[unit]
        if total != total or total > 100 * 365 * 86_400_000:
            raise ValidationError("wait.for_: the duration must be finite and at most 100 years.")
        scope = require_durable_scope("wait.for_")
        await self._wait_ms(scope, int(total), None, idempotency_key, idempotency_key_ttl)

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
        remaining = at_ms - scope.engine.now()
        if remaining <= 0 and throw_if_in_the_past:
            raise ValidationError(f"wait.until: the date {date.isoformat()} is in the past.")
        await self._wait_ms(scope, remaining, at_ms, idempotency_key, idempotency_key_ttl)

    async def _wait_ms(
        self,
        scope: RunScope,
        total_ms: int,
        at_ms: int | None,
        idempotency_key: str | None,
        idempotency_key_ttl: str | int | None,
    ) -> None:
        if total_ms <= 0:
            return
        engine = scope.engine
        if total_ms <= IN_PROCESS_WAIT_MS:
            await engine.clock.sleep(total_ms / 1000)
            return
        completes_at = at_ms if at_ms is not None else engine.now() + total_ms
        await wait_until(scope, completes_at, idempotency_key, idempotency_key_ttl)

    # -- tokens ---------------------------------------------------------------------------

    async def create_token(
        self,
        *,
        timeout: Any = None,
        idempotency_key: str | None = None,
        idempotency_key_ttl: str | int | None = None,
        tags: Sequence[str] | str | None = None,
    ) -> WaitToken:
        """Create a wait token (anywhere). ``timeout``: a duration or a datetime; none by
        default (the token waits until completed). At most 10 ``tags``."""
        return await current_backend().create_token(
            timeout=timeout,
            idempotency_key=idempotency_key,
            idempotency_key_ttl=idempotency_key_ttl,
            tags=tags,
        )

    async def complete_token(
        self, token: WaitToken | WaitTokenInfo | str, data: Any = None
    ) -> bool:
        """Complete a token with ``data`` (anywhere). Idempotent: the first data is kept."""
        await current_backend().complete_token(_token_id(token), data)
        return True

    async def for_token(self, token: WaitToken | WaitTokenInfo | str) -> WaitTokenResult:
        """Wait until the token is completed (``ok``, ``output``) or times out (not ``ok``,
        ``error`` a :class:`WaitpointTimeoutError`). Only inside a task; durable."""
        scope = require_durable_scope("wait.for_token")
        token_id = _token_id(token)
        waitpoint = await wait_for_token(scope, token_id)
        if waitpoint.status == "COMPLETED":
            return WaitTokenResult(ok=True, output=loads(waitpoint.output))
        return WaitTokenResult(ok=False, error=token_error(waitpoint))

    async def retrieve_token(self, token: WaitToken | WaitTokenInfo | str) -> WaitTokenInfo:
        """A token's status, output and times (anywhere)."""
        return await current_backend().retrieve_token(_token_id(token))

    async def list_tokens(
        self,
        *,
        status: str | Sequence[str] | None = None,
        tags: Sequence[str] | str | None = None,
        idempotency_key: str | None = None,
        from_: datetime.datetime | int | None = None,
        to: datetime.datetime | int | None = None,
        limit: int = 100,
    ) -> AsyncIterator[WaitTokenInfo]:
        """Tokens newest first, fetched ``limit`` at a time as you iterate (without output):
        ``status`` WAITING, COMPLETED or TIMED_OUT; ``tags`` (all of); ``from_``/``to`` bound
        their creation (datetime or epoch ms).

        Example::

            async for token in wait.list_tokens(status="WAITING", tags=["approval"]):
                print(token.id)
        """
        engine = current_backend()
        statuses = [status] if isinstance(status, str) else list(status or [])
        wanted = [tags] if isinstance(tags, str) else list(tags or [])
        async for item in every_item(
            lambda cursor: engine.list_tokens(
                statuses=statuses,
                tags=wanted,
                idempotency_key=idempotency_key,
                created_from=epoch_ms(from_),
                created_to=epoch_ms(to),
                limit=limit,
                cursor=cursor,
            )
        ):
            yield item


def _token_id(token: WaitToken | WaitTokenInfo | str) -> str:
    return token if isinstance(token, str) else token.id


wait = _Wait()
