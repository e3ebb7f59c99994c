"""Store conformance: retention deletes old finished runs (with what belongs to them) and old
completed waitpoints, a bounded batch at a time, and nothing else."""

from __future__ import annotations

from test_store_runs import ENV, claim, finish_many, get, register, run_params
from test_store_waitpoints import token_params

from shipyard.records import NewEvent
from shipyard.store.protocol import (
    AttemptListParams,
    RunEventsAppendParams,
    RunEventsListParams,
    RunFinishParams,
    RunPurgeParams,
    RunTagsAddParams,
    Store,
    WaitpointCompleteParams,
    WaitpointGetParams,
)


async def finished(store: Store, at: int) -> str:
    """A run claimed and COMPLETED at ``at`` (ms)."""
    run = (await store.run_insert(run_params(now=at - 500))).run
    [claimed] = await store.run_claim(claim(store, now=at - 100, limit=1))
    assert claimed.id == run.id
    await finish_many(store, RunFinishParams(run.id, 1, "w1", "COMPLETED", "COMPLETED", at))
    return run.id


async def test_retention_deletes_old_finished_runs_and_what_is_theirs(store: Store) -> None:
    await register(store)
    old = await finished(store, 3_000)
    await store.run_tags_add(RunTagsAddParams(ENV, old, ["t1"], 10, 3_000))
    await store.run_events_append(
        RunEventsAppendParams(ENV, [NewEvent(run_id=old, ts=3_000, kind="log", message="hi")])
    )
    recent = await finished(store, 9_000)
    going = (await store.run_insert(run_params(now=1_000))).run.id  # queued since 1,000
    done_wp, _ = await store.waitpoint_create(token_params())
    pending_wp, _ = await store.waitpoint_create(token_params())
    await store.waitpoint_complete(WaitpointCompleteParams(ENV, done_wp.id, "1", 3_000))

    purged = await store.run_purge(RunPurgeParams(ENV, before=5_000))
    assert (purged.runs, purged.waitpoints) == (1, 1)
    assert await get(store, old) is None
    assert await store.attempt_list(AttemptListParams(ENV, old)) == []
    assert await store.run_events_list(RunEventsListParams(ENV, old)) == []
    for kept in (recent, going):
        assert await get(store, kept) is not None
    assert len(await store.attempt_list(AttemptListParams(ENV, recent))) == 1
    assert await store.waitpoint_get(WaitpointGetParams(ENV, done_wp.id)) is None
    assert await store.waitpoint_get(WaitpointGetParams(ENV, pending_wp.id)) is not None
    # Nothing more is old enough.
    again = await store.run_purge(RunPurgeParams(ENV, before=5_000))
    assert (again.runs, again.waitpoints) == (0, 0)


async def test_retention_deletes_a_bounded_batch_oldest_first(store: Store) -> None:
    await register(store, max_attempts=1)
    ids = [await finished(store, 3_000 + i) for i in range(3)]
    first = await store.run_purge(RunPurgeParams(ENV, before=10_000, limit=2))
    assert first.runs == 2
    assert [await get(store, i) is None for i in ids] == [True, True, False]
    second = await store.run_purge(RunPurgeParams(ENV, before=10_000, limit=2))
    assert second.runs == 1
    assert await get(store, ids[2]) is None
