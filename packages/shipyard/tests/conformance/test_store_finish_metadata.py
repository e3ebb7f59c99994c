"""Store conformance: a finish that carries the attempt's last metadata operations
(``RunFinishParams.metadata``): applied in the finish's transaction, fenced with it, its event
after the logs and before the status change; compare-and-set values used only while the row
still holds their base."""

from __future__ import annotations

import json

from test_store_runs import ENV, claim, events, finish_many, get, register, run_params

from shipyard.records import NewEvent
from shipyard.store.params import RunFinishMetadata, RunMetadataParams
from shipyard.store.protocol import RunFinishManyParams, RunFinishParams, Store


def _set(key: str, value: object) -> RunFinishMetadata:
    """Operations that set ``key``: the mutation and its event, no known result."""

    def mutate(current: str) -> str | None:
        return json.dumps({**json.loads(current), key: value})

    return RunFinishMetadata(mutate=mutate, event=NewEvent("", 3_000, "metadata", f"set {key}"))


def _with_run(meta: RunFinishMetadata, run_id: str) -> RunFinishMetadata:
    meta.event = NewEvent(run_id, meta.event.ts, meta.event.kind, meta.event.message)
    return meta


async def test_finish_applies_metadata_with_its_event_between_logs_and_status(
    store: Store,
) -> None:
    await register(store)
    run = (await store.run_insert(run_params(metadata='{"a":1}'))).run
    [claimed] = await store.run_claim(claim(store))
    done = RunFinishParams(
        claimed.id,
        1,
        "w1",
        "COMPLETED",
        "COMPLETED",
        3_000,
        output="1",
        events=[NewEvent(run.id, 2_500, "log", "line")],
        metadata=_with_run(_set("b", 2), run.id),
    )
    assert await finish_many(store, done) == [True]
    stored = await get(store, run.id)
    assert stored is not None and json.loads(stored.metadata) == {"a": 1, "b": 2}
    assert await events(store, run.id) == [
        ("status", "EXECUTING"),
        ("log", "line"),
        ("metadata", "set b"),
        ("status", "COMPLETED"),
    ]


async def test_a_rejected_finish_leaves_metadata_alone(store: Store) -> None:
    await register(store)
    run = (await store.run_insert(run_params())).run
    await store.run_claim(claim(store))
    stale = RunFinishParams(
        run.id, 1, "w9", "COMPLETED", "COMPLETED", 3_000, metadata=_with_run(_set("b", 2), run.id)
    )
    assert await finish_many(store, stale) == [False]
    stored = await get(store, run.id)
    assert stored is not None and json.loads(stored.metadata) == {}
    assert await events(store, run.id) == [("status", "EXECUTING")]


async def test_a_mutation_that_gives_up_leaves_metadata_and_writes_the_finish(
    store: Store,
) -> None:
    await register(store)
    run = (await store.run_insert(run_params(metadata='{"a":1}'))).run
    await store.run_claim(claim(store))
    refused = RunFinishMetadata(
        mutate=lambda current: None, event=NewEvent(run.id, 3_000, "metadata", "x")
    )
    done = RunFinishParams(run.id, 1, "w1", "COMPLETED", "COMPLETED", 3_000, metadata=refused)
    assert await finish_many(store, done) == [True]
    stored = await get(store, run.id)
    assert stored is not None and stored.status == "COMPLETED"
    assert json.loads(stored.metadata) == {"a": 1}
    assert await events(store, run.id) == [("status", "EXECUTING"), ("status", "COMPLETED")]


async def test_known_result_is_written_only_while_the_row_holds_its_base(store: Store) -> None:
    """``expected``/``text`` may be written as they are only over ``expected``; the other run's
    metadata changed since (another writer), so its operations apply to what is stored."""
    await register(store)
    a = (await store.run_insert(run_params(metadata='{"n":1}'))).run
    b = (await store.run_insert(run_params(metadata='{"n":1}'))).run
    await store.run_claim(claim(store))
    await store.run_metadata_update(
        RunMetadataParams(ENV, b.id, lambda current: '{"n":1,"other":true}', 2_500)
    )

    def known(run_id: str) -> RunFinishMetadata:
        meta = _with_run(_set("k", 1), run_id)
        meta.expected, meta.text = '{"n":1}', '{"n":1,"k":1}'
        return meta

    finishes = [
        RunFinishParams(r.id, 1, "w1", "COMPLETED", "COMPLETED", 3_000, metadata=known(r.id))
        for r in (a, b)
    ]
    assert await store.run_finish_many(RunFinishManyParams(ENV, finishes)) == [True, True]
    stored_a, stored_b = await get(store, a.id), await get(store, b.id)
    assert stored_a is not None and json.loads(stored_a.metadata) == {"n": 1, "k": 1}
    assert stored_b is not None and json.loads(stored_b.metadata) == {"n": 1, "other": True, "k": 1}
    for run in (a, b):
        assert (await events(store, run.id, "metadata", "status"))[-2:] == [
            ("metadata", "set k"),
            ("status", "COMPLETED"),
        ]
