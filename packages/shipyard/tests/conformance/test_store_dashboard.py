"""Store conformance: the reads the dashboard makes — a run's children, runs per status over
time."""

from __future__ import annotations

from test_store_runs import ENV, run_params

from shipyard.ids import new_id
from shipyard.store.protocol import (
    BatchInsertParams,
    BatchListParams,
    RunCancelParams,
    RunInsertManyParams,
    RunListParams,
    RunStatsParams,
    Store,
)


async def test_list_filters_by_parent(store: Store) -> None:
    parent = await store.run_insert(run_params())
    children = [
        (await store.run_insert(run_params(parent_run_id=parent.run.id))).run.id for _ in range(3)
    ]
    await store.run_insert(run_params())  # not a child
    found = await store.run_list(RunListParams(ENV, parent_run_id=parent.run.id))
    assert [r.id for r in found.items] == children[::-1]
    other = await store.run_list(RunListParams(ENV, parent_run_id="run_none"))
    assert other.items == []


async def test_stats_count_runs_by_creation_window_and_status(store: Store) -> None:
    for created in (1_000, 1_500, 2_100, 2_900, 3_000, 500):
        await store.run_insert(run_params(now=created))
    late = await store.run_insert(run_params(now=3_500))
    await store.run_cancel(
        RunCancelParams(ENV, late.run.id, 4_000, frozenset({"CANCELED"}), '{"name":"Canceled"}')
    )
    stats = await store.run_stats(RunStatsParams(ENV, created_from=1_000, bucket_ms=1_000))
    # Buckets of 1 s from 1_000: [1000, 2000) has 2, [2000, 3000) 2, [3000, 4000) 1 + 1.
    assert sorted(stats) == [
        (0, "QUEUED", 2),
        (1, "QUEUED", 2),
        (2, "CANCELED", 1),
        (2, "QUEUED", 1),
    ]
    assert await store.run_stats(RunStatsParams("other", created_from=0, bucket_ms=1_000)) == []


async def test_batches_list_newest_first_in_pages(store: Store) -> None:
    made = []
    for i in range(3):
        batch_id = new_id("batch")
        await store.run_insert_many(
            RunInsertManyParams(
                ENV,
                [run_params(batch_id=batch_id, batch_index=0)],
                BatchInsertParams(batch_id, ENV, None, 1_000 + i),
            )
        )
        made.append(batch_id)
    first, cursor = await store.batch_list(BatchListParams(ENV, limit=2))
    assert [b.id for b in first] == made[::-1][:2]
    assert first[0].run_count == 1 and first[0].run_ids == "[]"
    rest, end = await store.batch_list(BatchListParams(ENV, limit=2, cursor=cursor))
    assert [b.id for b in rest] == made[:1] and end is None
    assert await store.batch_list(BatchListParams("other")) == ([], None)
