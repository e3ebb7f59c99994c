"""A store keeps nothing per run (issue 10, defect 16).

A SQLite worker grew ~300 bytes per run: each cursor's description was cached under a key that
was new for every cursor. Here the store's own allocations are traced over many claim → finish
cycles: what they hold afterwards must not grow with the number of runs.
"""

from __future__ import annotations

import gc
import tracemalloc

from test_store_runs import ENV, claim, register, run_params

from shipyard.store.protocol import (
    RunFinishManyParams,
    RunFinishParams,
    RunGetParams,
    RunInsertManyParams,
    RunListParams,
    Store,
)

BATCH = 20
CYCLES = 50


async def cycle(store: Store) -> None:
    await store.run_insert_many(RunInsertManyParams(ENV, [run_params() for _ in range(BATCH)]))
    claimed = await store.run_claim(claim(store, limit=BATCH))
    await store.run_finish_many(
        RunFinishManyParams(
            ENV,
            [
                RunFinishParams(r.id, 1, "w1", "COMPLETED", "COMPLETED", 3_000, output="1")
                for r in claimed
            ],
        )
    )
    for run in claimed[:3]:
        await store.run_get(RunGetParams(ENV, run.id))
    await store.run_list(RunListParams(ENV, limit=5))


def held_by_the_store(snapshot: tracemalloc.Snapshot) -> int:
    store_files = [tracemalloc.Filter(True, "*/shipyard/store/*")]
    return sum(s.size for s in snapshot.filter_traces(store_files).statistics("filename"))


async def test_memory_the_store_holds_does_not_grow_with_runs(store: Store) -> None:
    await register(store)
    for _ in range(20):  # warm caches: statements, builders, pools
        await cycle(store)
    gc.collect()
    # One frame is enough: the filter and the grouping below look at the newest frame only.
    tracemalloc.start(1)
    try:
        before = held_by_the_store(tracemalloc.take_snapshot())
        for _ in range(CYCLES):
            await cycle(store)
        gc.collect()
        grown = held_by_the_store(tracemalloc.take_snapshot()) - before
    finally:
        tracemalloc.stop()
    runs = CYCLES * BATCH
    # The old per-cursor cache kept ~400 bytes per run here (~400 KB). What a flat store may
    # still gain is bounded whatever the count: sqlite3 prunes its list of dead cursor
    # weakrefs every 200 cursors (up to ~16 KB).
    assert grown < 64 * 1024, f"the store kept {grown} bytes over {runs} runs"
