"""Store conformance: the batched waitpoint calls a worker makes when many runs reach durable
waits together (``waitpoint_create_many``, ``waitpoint_reads``, ``waitpoint_block_many``,
``waitpoint_block_and_claim``), and the resolver's peek, which must not sweep runs that only
wait."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from test_store_flow_control import running
from test_store_runs import ENV, claim, events, get, register, run_params
from test_store_waitpoints import TIMEOUT, block, datetime_wp

from shipyard.errors import ShipyardError
from shipyard.ids import new_id
from shipyard.store.params import (
    WaitpointBlockManyParams,
    WaitpointCreateManyParams,
    WaitpointReadsParams,
)
from shipyard.store.protocol import (
    Store,
    WaitpointCompleteParams,
    WaitpointCreateParams,
    WaitpointGetParams,
    WaitpointRecordedParams,
    WaitpointResolveParams,
)


def token(now: int = 2_000) -> WaitpointCreateParams:
    return WaitpointCreateParams(
        id=new_id("waitpoint"), environment=ENV, kind="MANUAL", now=now, tags=["t"]
    )


async def claimed_runs(store: Store, n: int) -> list[str]:
    await register(store)
    for _ in range(n):
        await store.run_insert(run_params())
    got = await store.run_claim(claim(store, limit=n))
    assert len(got) == n
    return sorted(r.id for r in got)


async def test_create_many_and_reads_answer_in_order(store: Store) -> None:
    creates = [token() for _ in range(3)]
    made = await store.waitpoint_create_many(WaitpointCreateManyParams(ENV, creates))
    assert [w.id for w in made] == [c.id for c in creates]
    assert {(w.kind, w.status, w.tags) for w in made} == {("MANUAL", "PENDING", '["t"]')}
    run_id = (await claimed_runs(store, 1))[0]
    await store.waitpoint_block(block(run_id, 1, 0, waitpoint_id=made[1].id))
    reads = await store.waitpoint_reads(
        WaitpointReadsParams(
            ENV,
            gets=[WaitpointGetParams(ENV, made[2].id), WaitpointGetParams(ENV, "waitpoint_x")],
            recorded=[
                WaitpointRecordedParams(ENV, run_id, 1, 0),
                WaitpointRecordedParams(ENV, run_id, 1, 1),
            ],
        )
    )
    assert [w.id if w else None for w in reads.gets] == [made[2].id, None]
    first, missing = reads.recorded
    assert first is not None and first.waitpoint.id == made[1].id and first.call == "wait.for"
    assert missing is None


async def test_block_many_suspends_each_pending_one_in_one_transaction(store: Store) -> None:
    a, b, c = await claimed_runs(store, 3)
    tok = (await store.waitpoint_create_many(WaitpointCreateManyParams(ENV, [token()])))[0]
    assert await running(store, "task/t") == 3
    results = await store.waitpoint_block_many(
        WaitpointBlockManyParams(
            ENV,
            [
                block(a, 1, 0, waitpoint_id=tok.id),
                block(b, 1, 0, create=datetime_wp(1_000)),  # already due: not suspended
                block(c, 2, 0, create=datetime_wp(10_000)),  # stale attempt: not ours
            ],
        )
    )
    assert [(r.suspended, r.owned) for r in results] == [
        (True, True),
        (False, True),
        (False, False),
    ]
    assert results[1].waitpoint.status == "COMPLETED"
    statuses = [(await get(store, i)).status for i in (a, b, c)]  # type: ignore[union-attr]
    assert statuses == ["WAITING", "EXECUTING", "EXECUTING"]
    assert await running(store, "task/t") == 2
    assert (await events(store, a, "status"))[-1] == ("status", "WAITING")


async def test_block_many_with_an_unknown_waitpoint_changes_nothing(store: Store) -> None:
    a, b = await claimed_runs(store, 2)
    tok = (await store.waitpoint_create_many(WaitpointCreateManyParams(ENV, [token()])))[0]
    with pytest.raises(ShipyardError):
        await store.waitpoint_block_many(
            WaitpointBlockManyParams(
                ENV,
                [block(a, 1, 0, waitpoint_id=tok.id), block(b, 1, 0, waitpoint_id="waitpoint_x")],
            )
        )
    for run_id in (a, b):
        run = await get(store, run_id)
        assert run is not None and run.status == "EXECUTING"
        recorded = await store.waitpoint_recorded(WaitpointRecordedParams(ENV, run_id, 1, 0))
        assert recorded is None


async def test_block_and_claim_takes_the_slots_the_suspended_runs_gave_back(
    store: Store,
) -> None:
    """One transaction: the runs whose waitpoint is pending suspend, and the claim takes the
    limit asked plus one run per suspended run (not for a block whose waitpoint was already
    resolved: that run keeps executing, and its slot)."""
    a, b = await claimed_runs(store, 2)
    queued = [(await store.run_insert(run_params(now=1_500))).run.id for _ in range(3)]
    tok = (await store.waitpoint_create_many(WaitpointCreateManyParams(ENV, [token()])))[0]
    results, claimed = await store.waitpoint_block_and_claim(
        WaitpointBlockManyParams(
            ENV,
            [
                block(a, 1, 0, waitpoint_id=tok.id),
                block(b, 1, 0, create=datetime_wp(1_000)),  # already due: keeps its slot
            ],
        ),
        claim(store, limit=0),
    )
    assert [(r.suspended, r.owned) for r in results] == [(True, True), (False, True)]
    assert len(claimed) == 1 and claimed[0].id in queued
    assert (claimed[0].status, claimed[0].lease_owner, claimed[0].attempt_number) == (
        "EXECUTING",
        "w1",
        1,
    )
    statuses = [(await get(store, i)).status for i in (a, b)]  # type: ignore[union-attr]
    assert statuses == ["WAITING", "EXECUTING"]
    assert await running(store, "task/t") == 2
    # The limit asked is added to the freed slots.
    (c,) = [i for i in queued if i != claimed[0].id][:1]
    more_results, more = await store.waitpoint_block_and_claim(
        WaitpointBlockManyParams(ENV, [block(b, 1, 1, create=datetime_wp(10_000))]),
        claim(store, limit=1),
    )
    assert [r.suspended for r in more_results] == [True]
    assert len(more) == 2 and c in {r.id for r in more}
    assert await running(store, "task/t") == 3


async def test_block_and_claim_with_an_unknown_waitpoint_claims_nothing(store: Store) -> None:
    (a,) = await claimed_runs(store, 1)
    waiting = (await store.run_insert(run_params(now=1_500))).run.id
    with pytest.raises(ShipyardError):
        await store.waitpoint_block_and_claim(
            WaitpointBlockManyParams(ENV, [block(a, 1, 0, waitpoint_id="waitpoint_x")]),
            claim(store, limit=1),
        )
    for run_id, status in ((a, "EXECUTING"), (waiting, "QUEUED")):
        run = await get(store, run_id)
        assert run is not None and run.status == status


async def test_a_child_is_created_with_the_call_that_waits_for_it(store: Store) -> None:
    """trigger_and_wait's child travels with the block (``create.run``): inserted, waited
    for and claimed in one transaction; rolled back with it when another block fails."""
    (parent,) = await claimed_runs(store, 1)
    child = run_params(now=1_500, parent_run_id=parent)
    wp = WaitpointCreateParams(new_id("waitpoint"), ENV, "RUN", 2_000, target_id=child.id)
    results, claimed = await store.waitpoint_block_and_claim(
        WaitpointBlockManyParams(ENV, [block(parent, 1, 0, create=replace(wp, run=child))]),
        claim(store, limit=0),
    )
    assert [(r.suspended, r.waitpoint.target_id) for r in results] == [(True, child.id)]
    assert [(r.id, r.status, r.parent_run_id) for r in claimed] == [(child.id, "EXECUTING", parent)]
    (other,) = await claimed_runs(store, 1)
    orphan = run_params(now=1_500, parent_run_id=other)
    owp = WaitpointCreateParams(new_id("waitpoint"), ENV, "RUN", 2_000, target_id=orphan.id)
    with pytest.raises(ShipyardError):
        await store.waitpoint_block_many(
            WaitpointBlockManyParams(
                ENV,
                [
                    block(other, 1, 0, create=replace(owp, run=orphan)),
                    block(parent, 1, 1, waitpoint_id="waitpoint_x"),
                ],
            )
        )
    assert await get(store, orphan.id) is None


async def test_waiting_runs_alone_give_the_resolver_nothing_to_do(store: Store) -> None:
    """A run waiting on a pending token is not swept by every resolver pass; completing the
    token wakes it in the completion's own transaction."""
    (run_id,) = await claimed_runs(store, 1)
    tok = (await store.waitpoint_create_many(WaitpointCreateManyParams(ENV, [token()])))[0]
    await store.waitpoint_block(block(run_id, 1, 0, waitpoint_id=tok.id))
    assert await store.waitpoint_resolve_due(WaitpointResolveParams(ENV, 50_000, TIMEOUT)) == []
    await store.waitpoint_complete(WaitpointCompleteParams(ENV, tok.id, json.dumps(1), 3_000))
    run = await get(store, run_id)
    assert run is not None and run.status == "QUEUED"
