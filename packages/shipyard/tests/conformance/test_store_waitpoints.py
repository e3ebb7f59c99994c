"""Store conformance: waitpoints — suspending a run (slot released), resolving due
waitpoints, tokens (first output wins, timeouts), idempotency keys, and resuming."""

from __future__ import annotations

import json

import pytest
from test_store_flow_control import running
from test_store_runs import ENV, attempts, claim, events, finish_many, get, register, run_params

from shipyard.errors import ShipyardError
from shipyard.ids import new_id
from shipyard.store.protocol import (
    RunClaimParams,
    RunFinishManyParams,
    RunFinishParams,
    Store,
    WaitpointBlockParams,
    WaitpointCompleteParams,
    WaitpointCreateParams,
    WaitpointGetParams,
    WaitpointListParams,
    WaitpointRecordedParams,
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
        environment=ENV,
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
    run = await get(store, run_id)
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
    recorded = await store.waitpoint_recorded(WaitpointRecordedParams(ENV, run_id, 1, 0))
    assert recorded is not None and recorded.call == "wait.for"
    assert recorded.waitpoint.status == "COMPLETED"
    assert [(a.number, a.worker_id) for a in await attempts(store, run_id)] == [(1, "w2")]
    done = await finish_many(
        store, RunFinishParams(run_id, 1, "w2", "COMPLETED", "COMPLETED", 10_002, output="1")
    )
    assert done == [True]
    assert await running(store, "task/t") == 0


async def test_a_due_waitpoint_does_not_suspend(store: Store) -> None:
    run_id = await claimed_run(store)
    result = await store.waitpoint_block(block(run_id, 1, 0, create=datetime_wp(1_000)))
    assert (result.suspended, result.waitpoint.status) == (False, "COMPLETED")
    run = await get(store, run_id)
    assert run is not None and run.status == "EXECUTING"


async def test_suspend_is_fenced_by_attempt_and_owner(store: Store) -> None:
    run_id = await claimed_run(store)
    stale = await store.waitpoint_block(block(run_id, 2, 0, create=datetime_wp(10_000)))
    assert (stale.suspended, stale.owned) == (False, False)
    run = await get(store, run_id)
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
    run = await get(store, run_id)
    assert run is not None and (run.status, run.resume_state) == ("QUEUED", "RESUMING")
    listed = await store.waitpoint_list(
        WaitpointListParams(ENV, statuses=["COMPLETED"], tags=["a"])
    )
    assert [w.id for w in listed.items] == [token.id]
    assert (await store.waitpoint_list(WaitpointListParams(ENV, tags=["c"]))).items == []


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
    found = await store.waitpoint_get(WaitpointGetParams(ENV, token.id))
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
    await finish_many(
        store, RunFinishParams(child.id, 1, "w1", "COMPLETED", "COMPLETED", 2_300, output="7")
    )
    # The child's finish settles the waitpoint and wakes the parent in its own transaction:
    # the resolver finds nothing left to do.
    parent = await get(store, run_id)
    assert parent is not None and (parent.status, parent.resume_state) == ("QUEUED", "RESUMING")
    assert await store.waitpoint_resolve_due(WaitpointResolveParams(ENV, 2_400, TIMEOUT)) == []


async def parent_waiting_for_child(store: Store) -> tuple[str, str]:
    """A parent WAITING on a RUN waitpoint for its child, and the child claimed in the slot the
    parent gave back: (parent id, child id)."""
    run_id = await claimed_run(store)
    child = (await store.run_insert(run_params())).run
    wp = WaitpointCreateParams(
        id=new_id("waitpoint"), environment=ENV, kind="RUN", now=2_000, target_id=child.id
    )
    assert (await store.waitpoint_block(block(run_id, 1, 0, create=wp))).suspended
    (got,) = await store.run_claim(claim(store, now=2_200))
    assert got.id == child.id
    return run_id, child.id


async def test_a_finish_of_runs_nothing_may_wait_for_settles_no_waitpoint(store: Store) -> None:
    """``awaitable=False`` (engine.claims.awaitable: no parent, no idempotency or debounce key)
    skips the finish's waitpoint statements; a waitpoint that targets such a run anyway is
    left to the resolver, which settles it as before."""
    run_id, child_id = await parent_waiting_for_child(store)
    done = RunFinishParams(child_id, 1, "w1", "COMPLETED", "COMPLETED", 2_300, awaitable=False)
    assert await finish_many(store, done) == [True]
    parent = await get(store, run_id)
    assert parent is not None and parent.status == "WAITING"
    assert await store.waitpoint_resolve_due(WaitpointResolveParams(ENV, 2_400, TIMEOUT)) == [
        run_id
    ]


async def test_a_finish_that_wakes_and_claims_the_parent_records_every_change(
    store: Store,
) -> None:
    """One transaction finishes the child, wakes the parent (WAITING → QUEUED) and claims it
    again: each status change has its event and each slot is counted once. On PostgreSQL the
    finish and the claim write their own events and slot changes and the wake leaves its own
    to the runs trigger (0016): a flag that outlived its statement would lose the wake's."""
    run_id, child_id = await parent_waiting_for_child(store)
    assert await running(store, "task/t") == 1
    done = RunFinishParams(child_id, 1, "w1", "COMPLETED", "COMPLETED", 2_300, output="7")
    accepted, again = await store.run_finish_and_claim(
        RunFinishManyParams(ENV, [done]), claim(store, now=2_300)
    )
    assert accepted == [True] and [r.id for r in again] == [run_id]
    assert (again[0].status, again[0].resume_state) == ("EXECUTING", "RESUMED")
    assert await events(store, run_id) == [
        ("status", "EXECUTING"),
        ("status", "WAITING"),
        ("status", "QUEUED"),
        ("status", "EXECUTING"),
    ]
    assert await events(store, child_id) == [("status", "EXECUTING"), ("status", "COMPLETED")]
    assert await running(store, "task/t") == 1  # the parent's slot, once
    # Slot changes after that transaction are counted as before.
    await finish_many(
        store, RunFinishParams(run_id, 1, "w1", "COMPLETED", "COMPLETED", 2_400, output="1")
    )
    assert await running(store, "task/t") == 0


async def test_claim_params_unchanged_for_fresh_runs(store: Store) -> None:
    await register(store)
    await store.run_insert(run_params())
    (got,) = await store.run_claim(RunClaimParams(ENV, "w1", ["t"], 1, 2_000, 3_000))
    assert got.resume_state is None and got.attempt_number == 1


async def test_suspend_and_wake_each_append_one_status_event(store: Store) -> None:
    run_id = await claimed_run(store)
    await store.waitpoint_block(block(run_id, 1, 0, create=datetime_wp(10_000)))
    assert await store.waitpoint_resolve_due(WaitpointResolveParams(ENV, 10_000, TIMEOUT)) == [
        run_id
    ]
    assert await store.waitpoint_resolve_due(WaitpointResolveParams(ENV, 10_001, TIMEOUT)) == []
    await store.run_claim(claim(store, now=10_002))
    assert await events(store, run_id) == [
        ("status", "EXECUTING"),
        ("status", "WAITING"),
        ("status", "QUEUED"),
        ("status", "EXECUTING"),
    ]


async def test_token_completion_wakes_with_one_status_event(store: Store) -> None:
    run_id = await claimed_run(store)
    token, _ = await store.waitpoint_create(token_params())
    await store.waitpoint_block(block(run_id, 1, 0, waitpoint_id=token.id))
    await store.waitpoint_complete(WaitpointCompleteParams(ENV, token.id, "1", 3_000))
    await store.waitpoint_complete(WaitpointCompleteParams(ENV, token.id, "2", 3_001))
    assert await events(store, run_id) == [
        ("status", "EXECUTING"),
        ("status", "WAITING"),
        ("status", "QUEUED"),
    ]


async def status(store: Store, run_id: str) -> str:
    run = await get(store, run_id)
    assert run is not None
    return run.status


async def test_waits_after_a_resume_still_hold_the_run(store: Store) -> None:
    # A wake checks the attempt's links from where its last wake left off (0019): the links
    # made after it, including one made while the run already waited, still hold it.
    run_id = await claimed_run(store)
    first, second, third = [(await store.waitpoint_create(token_params()))[0] for _ in "abc"]
    assert (await store.waitpoint_block(block(run_id, 1, 0, waitpoint_id=first.id))).suspended
    await store.waitpoint_complete(WaitpointCompleteParams(ENV, first.id, "1", 3_000))
    (resumed,) = await store.run_claim(claim(store, now=3_001))
    assert (resumed.id, resumed.attempt_number) == (run_id, 1)
    assert (await store.waitpoint_block(block(run_id, 1, 1, waitpoint_id=second.id))).suspended
    linked = await store.waitpoint_block(block(run_id, 1, 2, waitpoint_id=third.id))
    assert not linked.suspended  # already WAITING: linked only
    await store.waitpoint_complete(WaitpointCompleteParams(ENV, third.id, "3", 4_000))
    assert await status(store, run_id) == "WAITING"  # the call right after the resume holds it
    await store.waitpoint_complete(WaitpointCompleteParams(ENV, second.id, "2", 4_001))
    assert await status(store, run_id) == "QUEUED"


async def test_a_retry_checks_its_own_waits_from_the_first(store: Store) -> None:
    # The first attempt was woken past its third call; the retry's first calls count again.
    run_id = await claimed_run(store)
    for seq in range(3):
        made, _ = await store.waitpoint_create(token_params())
        assert (await store.waitpoint_block(block(run_id, 1, seq, waitpoint_id=made.id))).suspended
        await store.waitpoint_complete(WaitpointCompleteParams(ENV, made.id, "1", 3_000 + seq))
        (again,) = await store.run_claim(claim(store, now=3_010 + seq))
        assert again.attempt_number == 1
    failed = RunFinishParams(run_id, 1, "w1", "QUEUED", "FAILED", 3_100, error="{}", retry_at=3_200)
    assert await finish_many(store, failed) == [True]
    (retry,) = await store.run_claim(claim(store, now=3_300))
    assert retry.attempt_number == 2
    held, later = [(await store.waitpoint_create(token_params()))[0] for _ in "ab"]
    assert (await store.waitpoint_block(block(run_id, 2, 0, waitpoint_id=held.id))).suspended
    await store.waitpoint_block(block(run_id, 2, 1, waitpoint_id=later.id))
    await store.waitpoint_complete(WaitpointCompleteParams(ENV, later.id, "2", 3_400))
    assert await status(store, run_id) == "WAITING"
    await store.waitpoint_complete(WaitpointCompleteParams(ENV, held.id, "3", 3_401))
    assert await status(store, run_id) == "QUEUED"


def token_params(now: int = 2_000, **kw: object) -> WaitpointCreateParams:
    return WaitpointCreateParams(
        id=new_id("waitpoint"),
        environment=ENV,
        kind="MANUAL",
        now=now,
        **kw,  # type: ignore[arg-type]
    )


async def test_token_list_filters_and_pages_in_the_database(store: Store) -> None:
    # Issue 10 defect 8: filtered by status, tags (all of), key and creation time, paged
    # newest first by id, and the (possibly large) output is not loaded.
    made = []
    for i in range(7):
        token, _ = await store.waitpoint_create(
            token_params(
                now=1_000 + i,
                tags=["even" if i % 2 == 0 else "odd", "all"],
                idempotency_key=f"key-{i}",
            )
        )
        made.append(token.id)
    big = "[" + ",".join(["1"] * 50_000) + "]"
    await store.waitpoint_complete(WaitpointCompleteParams(ENV, made[0], big, 2_000))
    await store.waitpoint_complete(WaitpointCompleteParams(ENV, made[1], "1", 2_000))

    async def ids(**filters: object) -> list[str]:
        page = await store.waitpoint_list(WaitpointListParams(ENV, **filters))  # type: ignore[arg-type]
        assert all(w.output is None for w in page.items)
        return [w.id for w in page.items]

    newest_first = made[::-1]
    assert await ids() == newest_first
    assert await ids(statuses=["COMPLETED"]) == [made[1], made[0]]
    assert await ids(statuses=["PENDING", "TIMED_OUT"]) == newest_first[:5]
    assert await ids(tags=["even"]) == [made[6], made[4], made[2], made[0]]
    assert await ids(tags=["even", "all"]) == [made[6], made[4], made[2], made[0]]
    assert await ids(tags=["even", "odd"]) == []
    assert await ids(idempotency_key="key-3") == [made[3]]
    assert await ids(created_from=1_002, created_to=1_004) == [made[4], made[3], made[2]]
    assert await ids(statuses=["PENDING"], tags=["odd"], created_from=1_004) == [made[5]]

    pages, cursor = [], None
    while True:
        page = await store.waitpoint_list(WaitpointListParams(ENV, limit=3, cursor=cursor))
        pages.append([w.id for w in page.items])
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == [newest_first[:3], newest_first[3:6], newest_first[6:]]
    assert (await store.waitpoint_list(WaitpointListParams("other-env"))).items == []
    stored = await store.waitpoint_get(WaitpointGetParams(ENV, made[0]))
    assert stored is not None and stored.output == big  # the token itself keeps its output


async def test_token_list_leaves_out_waits_that_are_not_tokens(store: Store) -> None:
    await store.waitpoint_create(datetime_wp(10_000))
    token, _ = await store.waitpoint_create(token_params())
    page = await store.waitpoint_list(WaitpointListParams(ENV))
    assert [w.id for w in page.items] == [token.id]


async def test_waitpoints_are_scoped_by_environment(store: Store) -> None:
    run_id = await claimed_run(store)
    token, _ = await store.waitpoint_create(token_params())
    assert await store.waitpoint_get(WaitpointGetParams("other-env", token.id)) is None
    other = WaitpointCompleteParams("other-env", token.id, "1", 3_000)
    assert await store.waitpoint_complete(other) is None
    foreign = block(run_id, 1, 0, waitpoint_id=token.id)
    foreign.environment = "other-env"
    with pytest.raises(ShipyardError, match="not found"):
        await store.waitpoint_block(foreign)
    assert await store.waitpoint_recorded(WaitpointRecordedParams(ENV, run_id, 1, 0)) is None
    run = await get(store, run_id)
    assert run is not None and run.status == "EXECUTING"
    found = await store.waitpoint_get(WaitpointGetParams(ENV, token.id))
    assert found is not None and found.status == "PENDING"
