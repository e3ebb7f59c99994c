"""Durable calls: the sequence number, the waitpoint, suspending and resuming (``docs/waits.md``).

Every durable call of an attempt (``wait.for_`` over 5 s, ``wait.until``,
``trigger_and_wait``, ``batch_trigger_and_wait``) takes the next sequence number of its
attempt. If the attempt already recorded a call at that number (a replay after a worker loss
or eviction), the recorded call must be the same one — else :class:`NonDeterminismError` — and
its result is returned at once when resolved. Otherwise the call creates its waitpoint and
blocks on it: a pending waitpoint sets the run WAITING (its slot goes back) and the coroutine
parks in its worker until the run is claimed again.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from typing import Any

from shipyard.durations import parse_duration_ms
from shipyard.engine.hooks import call_hook
from shipyard.engine.idempotency import normalize
from shipyard.engine.metadata import flush_scope
from shipyard.engine.scope import RunScope, current_scope
from shipyard.errors import NonDeterminismError, NotInRunError, ParallelWaitError
from shipyard.ids import new_id
from shipyard.records import WaitpointRecord
from shipyard.statuses import RunStatus
from shipyard.store.params import (
    WaitpointBlockParams,
    WaitpointCreateParams,
    WaitpointGetParams,
    WaitpointRecordedParams,
)

# Waits up to this long sleep in process and keep the slot (Trigger.dev's checkpoint threshold).
IN_PROCESS_WAIT_MS = 5_000

Create = Callable[[], Awaitable[WaitpointCreateParams | str]]


def require_durable_scope(what: str) -> RunScope:
    """The current attempt, if it runs on a worker that can suspend it."""
    scope = current_scope()
    if scope is None or scope.waits is None:
        raise NotInRunError(f"{what} can only be called inside a task executed by a worker.")
    return scope


WaitInfo = Callable[[WaitpointRecord], dict[str, Any]]


async def durable_call(
    scope: RunScope,
    call: str,
    create: Create,
    wait: WaitInfo,
    *,
    check: Callable[[], Awaitable[object]] | None = None,
    reread: bool = True,
) -> WaitpointRecord:
    """Run one durable call; returns its waitpoint once resolved.

    ``call`` names the call and its target (compared on replay); ``create`` makes the
    waitpoint (or returns an existing waitpoint's id) the first time only; ``wait`` builds
    the object ``on_wait``/``on_resume`` receive from the waitpoint. ``check`` (queues a read,
    when called, whose awaitable raises when the call cannot be made, e.g. an unknown token)
    goes with the recorded-call lookup: one round trip for both. ``reread=False``: the caller
    needs only what the waitpoint was blocked with (a run or batch waitpoint's target), not
    its row after the resume.
    """
    driver = scope.waits
    assert driver is not None
    if scope.in_durable_call:
        error = ParallelWaitError(
            f"{call} was awaited while another durable call of run {scope.ctx.run.id} was in "
            "progress (asyncio.gather over waits). Durable calls must be awaited one at a "
            "time; use batch_trigger_and_wait to wait for many runs at once.",
            run_id=scope.ctx.run.id,
        )
        scope.parallel_error = error
        raise error
    scope.in_durable_call = True
    try:
        return await _durable_call(scope, call, create, wait, check, reread)
    finally:
        scope.in_durable_call = False


def _check_parallel(scope: RunScope) -> None:
    if scope.parallel_error is not None:
        raise scope.parallel_error


async def _durable_call(
    scope: RunScope,
    call: str,
    create: Create,
    wait: WaitInfo,
    check: Callable[[], Awaitable[object]] | None,
    reread: bool,
) -> WaitpointRecord:
    driver = scope.waits
    assert driver is not None
    engine = scope.engine
    run_id = scope.ctx.run.id
    attempt = driver.attempt_number()
    # The run's own metadata must be readable while it waits, and must land before anything
    # the children this call creates write to it (metadata.parent): flush first.
    await flush_scope(scope)
    seq = scope.wait_seq
    scope.wait_seq += 1
    recorded = None
    if scope.recorded_through is None or seq <= scope.recorded_through:
        # The check's read is queued first, the lookup's right after, in this turn of the
        # loop: one batch, one round trip, and no task of its own (a parked run's CPU is
        # mostly such per-call overhead).
        checked = check() if check is not None else None
        lookup = engine.recorded_call(
            WaitpointRecordedParams(
                environment=engine.environment, run_id=run_id, attempt_number=attempt, seq=seq
            )
        )
        try:
            recorded = await lookup
        finally:
            if checked is not None:
                await checked
        if recorded is None:
            # Calls are recorded in order, and only by the coroutine executing the attempt:
            # none is recorded past this one, so later calls of this coroutine skip the read.
            scope.recorded_through = seq - 1
    elif check is not None:
        await check()
    _check_parallel(scope)
    params = WaitpointBlockParams(
        environment=engine.environment,
        run_id=run_id,
        attempt_number=attempt,
        worker_id=driver.worker_id,
        seq=seq,
        call=call,
        now=engine.now(),
    )
    if recorded is not None:
        if recorded.call != call:
            raise NonDeterminismError(
                f"Run {run_id} is not deterministic: durable call #{seq + 1} was "
                f"{recorded.call} when first executed, but the replay reached {call}. Durable "
                "calls must happen in the same order on every execution of an attempt.",
                run_id=run_id,
                seq=seq,
                recorded=recorded.call,
                reached=call,
            )
        if recorded.waitpoint.status != "PENDING":
            return recorded.waitpoint
        params.waitpoint_id = recorded.waitpoint.id
    else:
        target = await create()
        _check_parallel(scope)
        if isinstance(target, str):
            params.waitpoint_id = target
        else:
            params.create = target
    params.now = engine.now()
    # EXECUTING → WAITING if the waitpoint is still pending (the store decides atomically).
    engine.transitions.check([RunStatus.EXECUTING], RunStatus.WAITING, "suspend", [run_id])
    blocked = await driver.suspend(params)
    if not blocked.owned:
        raise driver.lost()
    if not blocked.suspended:
        return blocked.waitpoint
    info = wait(blocked.waitpoint)
    await _hooks(scope, "on_wait", info)
    await driver.park()
    await _hooks(scope, "on_resume", info)
    if not reread:
        return blocked.waitpoint
    found = await engine.read_waitpoint(
        WaitpointGetParams(environment=engine.environment, waitpoint_id=blocked.waitpoint.id)
    )
    assert found is not None
    return found


async def _hooks(scope: RunScope, name: str, wait: dict[str, Any]) -> None:
    """Global hooks, then the task's; an error in them propagates (it fails the attempt)."""
    own = scope.task.hook(name)
    hooks = [*scope.engine.definitions.hooks.get(name), *([own] if own is not None else [])]
    for hook in hooks:
        await call_hook(hook, **scope.hook_args, wait=wait)


async def wait_until(
    scope: RunScope,
    completes_at: int,
    idempotency_key: str | None = None,
    idempotency_key_ttl: str | int | None = None,
) -> WaitpointRecord:
    """A durable wait until ``completes_at`` (epoch ms): a DATETIME waitpoint.

    With ``idempotency_key`` a retried attempt reuses the first attempt's waitpoint and so keeps
    its original deadline.
    """
    engine = scope.engine
    now = engine.now()
    # Raw keys are scoped to the run, as trigger keys are: two runs waiting with the same raw
    # key must not share one deadline (pass idempotency_keys.create(..., scope="global") to).
    key = normalize(idempotency_key) if idempotency_key is not None else None
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
        return {
            "type": "duration",
            "date": datetime.datetime.fromtimestamp(at / 1000, datetime.UTC),
        }

    return await durable_call(scope, "wait", create, info)


async def wait_for_token(scope: RunScope, token_id: str) -> WaitpointRecord:
    """A durable wait for a token (a MANUAL waitpoint) to be completed or to time out."""

    async def create() -> str:
        return token_id

    return await durable_call(
        scope,
        f"wait.for_token({token_id})",
        create,
        lambda wp: {"type": "token", "token": {"id": wp.id}},
        # Fails fast on an unknown token (read with the recorded-call lookup).
        check=lambda: scope.engine.token_check(token_id),
    )
