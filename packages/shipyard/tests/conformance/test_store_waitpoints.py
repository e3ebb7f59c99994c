"""Store conformance: waitpoints — suspending a run (slot released), resolving due
waitpoints, tokens (first output wins, timeouts), idempotency keys, and resuming."""

from __future__ import annotations

import json

from test_store_flow_control import running
from test_store_runs import ENV, claim, register, run_params

from shipyard.ids import new_id
from shipyard.store.protocol import (
    RunClaimParams,
    RunFinishParams,
    Store,
    WaitpointBlockParams,
    WaitpointCompleteParams,
    WaitpointCreateParams,
    WaitpointListParams,
    WaitpointResolveParams,
)

TIMEOUT = json.dumps({"name": "WaitpointTimeoutError", "message": "timed out"})


def datetime_wp(completes_at: int, now: int = 2_000, **kw: object) -> WaitpointCreateParams:
    return WaitpointCreateParams(
        id=new_id("waitpoint"),
        environment=ENV,
        kind="DATETIME",
        now=now,
        completes_at=completes_at,
        **kw,  # type: ignore[arg-type]
    )


def block(
    run_id: str, attempt: int, seq: int, now: int = 2_000, **kw: object
) -> WaitpointBlockParams:
    return WaitpointBlockParams(
        run_id=run_id,
        attempt_number=attempt,
        worker_id="w1",
        seq=seq,
        call="wait.for",
        now=now,
        **kw,  # type: ignore[arg-type]
    )


async def claimed_run(store: Store) -> str:
    await register(store)
    run = (await store.run_insert(run_params())).run
    (got,) = await store.run_claim(claim(store))
    assert got.id == run.id and got.attempt_number == 1
    return run.id


async def test_suspend_releases_the_slot_and_resume_keeps_the_attempt(store: Store) -> None:
    run_id = await claimed_run(store)
    assert await running(store, "task/t") == 1
    result = await store.waitpoint_block(block(run_id, 1, 0, create=datetime_wp(10_000)))
    assert (result.suspended, result.owned, result.waitpoint.status) == (True, True, "PENDING")
    run = await store.run_get(ENV, run_id)
    assert run is not None and run.status == "WAITING"
    assert await running(store, "task/t") == 0
    # Not due yet: nothing changes.
    assert await store.waitpoint_resolve_due(WaitpointResolveParams(ENV, 5_000, TIMEOUT)) == []
    assert await store.run_claim(claim(store, now=5_000)) == []
    assert await store.waitpoint_resolve_due(WaitpointResolveParams(ENV, 10_000, TIMEOUT)) == [
        run_id
    ]
    (resumed,) = await store.run_claim(claim(store, worker="w2", now=10_001))
    assert (resumed.id, resumed.attempt_number, resumed.resume_state) == (run_id, 1, "RESUMED")
    assert await running(store, "task/t") == 1
    recorded = await store.waitpoint_recorded(run_id, 1, 0)
    assert recorded is not None and recorded.call == "wait.for"
    assert recorded.waitpoint.status == "COMPLETED"
    attempts = await store.attempt_list(run_id)
    assert [(a.number, a.worker_id) for a in attempts] == [(1, "w2")]
    done = await store.run_finish_many(
        [RunFinishParams(run_id, 1, "w2", "COMPLETED", "COMPLETED", 10_002, output="1")]
    )
    assert done == [True]
    assert await running(store, "task/t") == 0


async def test_a_due_waitpoint_does_not_suspend(store: Store) -> None:
    run_id = await claimed_run(store)
    result = await store.waitpoint_block(block(run_id, 1, 0, create=datetime_wp(1_000)))
    assert (result.suspended, result.waitpoint.status) == (False, "COMPLETED")
    run = await store.run_get(ENV, run_id)
    assert run is not None and run.status == "EXECUTING"


async def test_suspend_is_fenced_by_attempt_and_owner(store: Store) -> None:
    run_id = await claimed_run(store)
    stale = await store.waitpoint_block(block(run_id, 2, 0, create=datetime_wp(10_000)))
    assert (stale.suspended, stale.owned) == (False, False)
    run = await store.run_get(ENV, run_id)
    assert run is not None and run.status == "EXECUTING"


async def test_wait_idempotency_key_keeps_the_original_deadline(store: Store) -> None:
    first, cached = await store.waitpoint_create(datetime_wp(10_000, idempotency_key="k"))
    assert not cached
    again, cached = await store.waitpoint_create(datetime_wp(50_000, idempotency_key="k"))
    assert cached and again.id == first.id and again.completes_at == 10_000
    # An expired key makes a new waitpoint.
    ttl, _ = await store.waitpoint_create(
        datetime_wp(10_000, idempotency_key="t", idempotency_key_expires_at=3_000)
    )
    later, cached = await store.waitpoint_create(
        datetime_wp(60_000, now=4_000, idempotency_key="t")
    )
    assert not cached and later.id != ttl.id and later.completes_at == 60_000


async def test_token_completion_first_output_wins_and_wakes_the_run(store: Store) -> None:
    run_id = await claimed_run(store)
    token, _ = await store.waitpoint_create(
        WaitpointCreateParams(
            id=new_id("waitpoint"), environment=ENV, kind="MANUAL", now=2_000, tags=["a", "b"]
        )
    )
    result = await store.waitpoint_block(block(run_id, 1, 0, waitpoint_id=token.id))
    assert result.suspended
    done = await store.waitpoint_complete(WaitpointCompleteParams(ENV, token.id, '{"x":1}', 3_000))
    assert done is not None and (done.status, done.output) == ("COMPLETED", '{"x":1}')
    again = await store.waitpoint_complete(WaitpointCompleteParams(ENV, token.id, '{"x":2}', 3_001))
    assert again is not None and again.output == '{"x":1}'
    run = await store.run_get(ENV, run_id)
    assert run is not None and (run.status, run.resume_state) == ("QUEUED", "RESUMING")
    listed = await store.waitpoint_list(
        WaitpointListParams(ENV, statuses=["COMPLETED"], tags=["a"])
    )
    assert [w.id for w in listed] == [token.id]
    assert await store.waitpoint_list(WaitpointListParams(ENV, tags=["c"])) == []


async def test_token_timeout(store: Store) -> None:
    run_id = await claimed_run(store)
    token, _ = await store.waitpoint_create(
        WaitpointCreateParams(
            id=new_id("waitpoint"), environment=ENV, kind="MANUAL", now=2_000, timeout_at=4_000
        )
    )
    assert (await store.waitpoint_block(block(run_id, 1, 0, waitpoint_id=token.id))).suspended
    assert await store.waitpoint_resolve_due(WaitpointResolveParams(ENV, 4_000, TIMEOUT)) == [
        run_id
    ]
    found = await store.waitpoint_get(ENV, token.id)
    assert found is not None and (found.status, found.output_is_error) == ("TIMED_OUT", 1)
    assert found.output == TIMEOUT


async def test_run_waitpoint_resolves_when_the_child_is_final(store: Store) -> None:
    run_id = await claimed_run(store)
    child = (await store.run_insert(run_params())).run
    wp = WaitpointCreateParams(
        id=new_id("waitpoint"), environment=ENV, kind="RUN", now=2_000, target_id=child.id
    )
    assert (await store.waitpoint_block(block(run_id, 1, 0, create=wp))).suspended
    assert await store.waitpoint_resolve_due(WaitpointResolveParams(ENV, 2_100, TIMEOUT)) == []
    # The child claims the slot the parent gave back, and finishes.
    (got,) = await store.run_claim(claim(store, now=2_200))
    assert got.id == child.id
    await store.run_finish_many(
        [RunFinishParams(child.id, 1, "w1", "COMPLETED", "COMPLETED", 2_300, output="7")]
    )
    assert await store.waitpoint_resolve_due(WaitpointResolveParams(ENV, 2_400, TIMEOUT)) == [
        run_id
    ]


async def test_claim_params_unchanged_for_fresh_runs(store: Store) -> None:
    await register(store)
    await store.run_insert(run_params())
    (got,) = await store.run_claim(RunClaimParams(ENV, "w1", ["t"], 1, 2_000, 3_000))
    assert got.resume_state is None and got.attempt_number == 1
