"""Store conformance: runs made from one template (``run_insert_bulk``, a uniform batch).

Every run it creates must be the row ``run_insert_many`` would have written for the same run.
"""

from __future__ import annotations

from dataclasses import fields, replace

import pytest
from test_store_runs import ENV, claim, register, run_params

from shipyard.errors import ShipyardError
from shipyard.ids import new_id, new_ids
from shipyard.records import RunRecord
from shipyard.store import rows
from shipyard.store.protocol import (
    BatchGetParams,
    BatchInsertParams,
    RunEventsListParams,
    RunGetParams,
    RunInsertBulkParams,
    RunInsertManyParams,
    RunInsertParams,
    RunListParams,
    Store,
)

# Set on the template: every column a batch's shared options can reach.
TEMPLATE = {
    "metadata": '{"k": [1, 2]}',
    "priority_ms": 500,
    "queued_at": 1_000,
    "available_at": 0,
    "ttl_ms": 60_000,
    "ttl_expires_at": 61_000,
    "max_attempts": 4,
    "machine": "small-1x",
    "max_duration_s": 30,
    "trigger_function": "batchTrigger",
    "concurrency_key": "ck",
    "parent_run_id": "run_parent",
    "root_run_id": "run_root",
    "depth": 2,
    "version": "v1",
}


def _same_run(bulk: RunRecord, many: RunRecord) -> None:
    """Equal but for id and batch id (each test batch has its own)."""
    for f in fields(RunRecord):
        if f.name not in ("id", "batch_id"):
            assert getattr(bulk, f.name) == getattr(many, f.name), f.name


async def _bulk(
    store: Store,
    template: RunInsertParams,
    payloads: list[str | None],
    batch: BatchInsertParams | None = None,
) -> list[str]:
    ids = new_ids("run", len(payloads))
    made = await store.run_insert_bulk(RunInsertBulkParams(ENV, template, ids, payloads, batch))
    assert made == len(ids)
    return ids


async def test_bulk_runs_equal_the_runs_insert_many_makes(store: Store) -> None:
    payloads = ['{"i": 0}', None, '{"i": "two", "s": "a \\"quoted\\" \\u00e9"}', "[]"]
    batch = BatchInsertParams(new_id("batch"), ENV, None, 1_000)
    template = run_params(batch_id=batch.id, batch_index=0, **TEMPLATE)
    ids = await _bulk(store, template, payloads, batch)

    other = BatchInsertParams(new_id("batch"), ENV, None, 1_000)
    reference = [
        replace(template, id=new_id("run"), payload=p, batch_id=other.id, batch_index=i)
        for i, p in enumerate(payloads)
    ]
    await store.run_insert_many(RunInsertManyParams(ENV, reference, other))

    for i, (run_id, expected) in enumerate(zip(ids, reference, strict=True)):
        bulk = await store.run_get(RunGetParams(ENV, run_id))
        many = await store.run_get(RunGetParams(ENV, expected.id))
        assert bulk is not None and many is not None
        _same_run(bulk, many)
        assert (bulk.batch_id, bulk.batch_index, bulk.payload) == (batch.id, i, payloads[i])
        found = await store.run_events_list(RunEventsListParams(ENV, run_id))
        assert [(e.kind, e.message, e.attributes) for e in found] == [
            ("created", "QUEUED", TEMPLATE["metadata"])
        ]

    record = await store.batch_get(BatchGetParams(ENV, batch.id))
    assert record is not None and record.run_count == len(ids)
    assert record.run_ids is not None and record.run_ids.replace(" ", "") == (
        "[" + ",".join(f'"{i}"' for i in ids) + "]"
    )


async def test_a_bulk_insert_in_chunks_keeps_every_batch_index(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 10 bytes per statement: payloads of 8 bytes make chunks of one run (the first may hold
    # a bigger one: a chunk always takes at least one run).
    monkeypatch.setattr(rows, "BULK_CHUNK_BYTES", 10)
    payloads = ['{"i":100}', *[f'{{"i":{i}}}' for i in range(1, 7)], None]
    assert len(rows.bulk_chunks({}, ["x"] * len(payloads), payloads, pairs=True)) >= 4
    batch = BatchInsertParams(new_id("batch"), ENV, None, 1_000)
    ids = await _bulk(store, run_params(batch_id=batch.id, batch_index=0), payloads, batch)
    for i, run_id in enumerate(ids):
        run = await store.run_get(RunGetParams(ENV, run_id))
        assert run is not None and (run.batch_index, run.payload) == (i, payloads[i])


async def test_bulk_without_a_batch_has_no_batch_index(store: Store) -> None:
    ids = await _bulk(store, run_params(status="PENDING_VERSION"), ['{"n": 1}'] * 3)
    for run_id in ids:
        run = await store.run_get(RunGetParams(ENV, run_id))
        assert run is not None
        assert (run.status, run.batch_id, run.batch_index) == ("PENDING_VERSION", None, None)


async def test_bulk_runs_are_claimed_in_order(store: Store) -> None:
    await register(store)
    ids = await _bulk(store, run_params(), [f'{{"n": {i}}}' for i in range(5)])
    claimed = await store.run_claim(claim(store, limit=10))
    assert [r.id for r in claimed] == ids
    assert all(r.status == "EXECUTING" and r.attempt_number == 1 for r in claimed)


async def test_an_id_collision_writes_nothing(store: Store) -> None:
    taken = (await store.run_insert(run_params())).run.id
    batch = BatchInsertParams(new_id("batch"), ENV, None, 1_000)
    template = run_params(batch_id=batch.id, batch_index=0)
    with pytest.raises(ShipyardError):
        await store.run_insert_bulk(
            RunInsertBulkParams(ENV, template, [new_id("run"), taken], ["1", "2"], batch)
        )
    assert await store.batch_get(BatchGetParams(ENV, batch.id)) is None
    page = await store.run_list(RunListParams(ENV, limit=10))
    assert [r.id for r in page.items] == [taken]


@pytest.mark.parametrize(
    "change", [{"tags": ("a",)}, {"idempotency_key": "k"}, {"debounce_key": "d"}]
)
async def test_a_template_with_keys_or_tags_is_refused(store: Store, change: dict) -> None:
    with pytest.raises(ValueError, match="template"):
        await store.run_insert_bulk(
            RunInsertBulkParams(ENV, run_params(**change), [new_id("run")], ["1"])
        )
