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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shipyard.durations import parse_duration_ms
from shipyard.engine.waits import IN_PROCESS_WAIT_MS, durable_call, require_durable_scope
from shipyard.errors import ValidationError, WaitpointTimeoutError
from shipyard.ids import new_id
from shipyard.jsonutil import loads
from shipyard.records import WaitpointRecord
from shipyard.sdk.context import current_scope
from shipyard.sdk.tokens import WaitToken, WaitTokenInfo, WaitTokenResult
from shipyard.store.protocol import WaitpointCreateParams, WaitpointListParams

if TYPE_CHECKING:
    from shipyard.engine.engine import Engine

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
        engine = _engine()
        record, cached = await engine.create_token(
            timeout=timeout,
            idempotency_key=idempotency_key,
            idempotency_key_ttl=idempotency_key_ttl,
            tags=tags,
        )
        return WaitToken(
            id=record.id,
            url=engine.token_url(record.id),
            is_cached=cached,
            public_access_token=engine.public_token(
                [f"write:waitpoints:{record.id}"], TOKEN_PAT_TTL_S
            ),
        )

    async def complete_token(self, token: WaitToken | str, data: Any = None) -> bool:
        """Complete a token with ``data`` (anywhere). Idempotent: the first data is kept."""
        await _engine().complete_token(_token_id(token), data)
        return True

    async def for_token(self, token: WaitToken | str) -> WaitTokenResult:
        """Wait until the token is completed (``ok``, ``output``) or times out (not ``ok``,
        ``error`` a :class:`WaitpointTimeoutError`). Only inside a task; durable."""
        scope = require_durable_scope("wait.for_token")
        token_id = _token_id(token)
        engine = scope.engine
        await engine.get_token(token_id)  # fails fast on an unknown token

        async def create() -> str:
            return token_id

        waitpoint = await durable_call(
            scope,
            f"wait.for_token({token_id})",
            create,
            lambda wp: {"type": "token", "token": {"id": wp.id}},
        )
        if waitpoint.status == "COMPLETED":
            return WaitTokenResult(ok=True, output=loads(waitpoint.output))
        return WaitTokenResult(ok=False, error=_timeout_error(waitpoint))

    async def retrieve_token(self, token: WaitToken | str) -> WaitTokenInfo:
        """A token's status, output and times (anywhere)."""
        engine = _engine()
        return _info(engine, await engine.get_token(_token_id(token)))

    async def list_tokens(
        self,
        *,
        status: str | Sequence[str] | None = None,
        tags: Sequence[str] | str | None = None,
        limit: int = 100,
    ) -> list[WaitTokenInfo]:
        """Tokens newest first; ``status`` WAITING, COMPLETED or TIMED_OUT; ``tags`` (all of)."""
        engine = _engine()
        await engine.start()
        statuses = [status] if isinstance(status, str) else list(status or [])
        page = await engine.store.waitpoint_list(
            WaitpointListParams(
                environment=engine.environment,
                statuses=["PENDING" if s == "WAITING" else s for s in statuses],
                tags=[tags] if isinstance(tags, str) else list(tags or []),
                limit=limit,
            )
        )
        return [_info(engine, w) for w in page.items]


TOKEN_PAT_TTL_S = 24 * 3600


def _engine() -> Engine:
    from shipyard.engine.registry import get_engine

    scope = current_scope()
    return scope.engine if scope is not None else get_engine()


def _token_id(token: WaitToken | WaitTokenInfo | str) -> str:
    return token if isinstance(token, str) else token.id


def _timeout_error(waitpoint: WaitpointRecord) -> WaitpointTimeoutError:
    data = loads(waitpoint.output) or {}
    message = data.get("message") if isinstance(data, dict) else None
    return WaitpointTimeoutError(
        str(message or f"Wait token {waitpoint.id} timed out."), waitpoint_id=waitpoint.id
    )


def _info(engine: Engine, w: WaitpointRecord) -> WaitTokenInfo:
    timed_out = w.status == "TIMED_OUT"
    return WaitTokenInfo(
        id=w.id,
        url=engine.token_url(w.id),
        status="WAITING" if w.status == "PENDING" else w.status,
        completed_at=w.completed_at,
        timeout_at=w.timeout_at,
        idempotency_key=w.idempotency_key,
        idempotency_key_expires_at=w.idempotency_key_expires_at,
        tags=tuple(loads(w.tags) or ()),
        created_at=w.created_at,
        output=None if timed_out else loads(w.output),
        error=_timeout_error(w) if timed_out else None,
    )


wait = _Wait()
