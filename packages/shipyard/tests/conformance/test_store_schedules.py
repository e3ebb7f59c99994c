"""Store conformance: schedules — upsert by key, pages, (de)activation, the declarative sync,
and the compare-and-set that fires each tick once, with its run, in one transaction."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

from shipyard.ids import new_id
from shipyard.statuses import IDEMPOTENCY_RELEASE_STATUSES
from shipyard.store.protocol import RunGetParams, RunInsertParams, RunListParams, Store
from shipyard.store.schedules import (
    DECLARATIVE,
    IMPERATIVE,
    ScheduleDeleteParams,
    ScheduleDueParams,
    ScheduleFireParams,
    ScheduleGetParams,
    ScheduleListParams,
    ScheduleRecord,
    ScheduleSetActiveParams,
    ScheduleSyncParams,
    ScheduleUpdateParams,
    ScheduleUpsertParams,
)

ENV = "test"
RELEASE = frozenset(str(s) for s in IDEMPOTENCY_RELEASE_STATUSES)


def schedule(**kw: object) -> ScheduleRecord:
    record = ScheduleRecord(
        id=new_id("sched"),
        environment=ENV,
        type=IMPERATIVE,
        task_id="t",
        cron="0 * * * *",
        timezone="UTC",
        fire_window=None,
        deduplication_key="k1",
        external_id=None,
        environments=None,
        active=1,
        next_run=3_600_000,
        next_run_at=3_600_000,
        last_run=None,
        created_at=1_000,
        updated_at=1_000,
    )
    return replace(record, **kw)  # type: ignore[arg-type]


def run_params(key: str, now: int = 5_000) -> RunInsertParams:
    return RunInsertParams(
        id=new_id("run"),
        environment=ENV,
        task_id="t",
        status="QUEUED",
        payload="{}",
        queue="task/t",
        queued_at=now,
        created_at=now,
        idempotency_key=key,
        idempotency_key_expires_at=now + 86_400_000,
        idempotency_release_statuses=RELEASE,
    )


async def test_the_same_deduplication_key_updates_and_keeps_the_next_tick(store: Store) -> None:
    first, created = await store.schedule_upsert(ScheduleUpsertParams(schedule()))
    assert created
    again, created = await store.schedule_upsert(
        ScheduleUpsertParams(schedule(external_id="user_1", next_run=9, next_run_at=9))
    )
    assert not created and again.id == first.id
    assert again.external_id == "user_1"
    assert again.next_run == 3_600_000  # same cron and zone: the next tick stays
    moved, _ = await store.schedule_upsert(
        ScheduleUpsertParams(
            schedule(cron="0 0 * * *", next_run=86_400_000, next_run_at=86_400_001)
        )
    )
    assert (moved.id, moved.cron, moved.next_run, moved.next_run_at) == (
        first.id,
        "0 0 * * *",
        86_400_000,
        86_400_001,
    )
    # The key is per project: the last create moves the schedule to its environment.
    other, created = await store.schedule_upsert(
        ScheduleUpsertParams(schedule(environment="other"))
    )
    assert not created and other.id == first.id and other.environment == "other"
    assert await store.schedule_get(ScheduleGetParams(ENV, first.id)) is None


async def test_list_pages_count_and_filter(store: Store) -> None:
    ids = []
    for i in range(5):
        record, _ = await store.schedule_upsert(
            ScheduleUpsertParams(
                schedule(deduplication_key=f"k{i}", created_at=i, task_id="a" if i < 3 else "b")
            )
        )
        ids.append(record.id)
    page = await store.schedule_list(ScheduleListParams(ENV, limit=2, offset=2))
    assert [r.id for r in page.items] == ids[2:4] and page.total == 5
    only_b = await store.schedule_list(ScheduleListParams(ENV, task_id="b"))
    assert [r.id for r in only_b.items] == ids[3:] and only_b.total == 2
    assert (await store.schedule_list(ScheduleListParams(ENV, type=DECLARATIVE))).total == 0
    assert (await store.schedule_list(ScheduleListParams("elsewhere"))).items == []


async def test_update_activate_deactivate_delete(store: Store) -> None:
    record, _ = await store.schedule_upsert(ScheduleUpsertParams(schedule()))
    values = dict(
        environment=ENV,
        schedule_id=record.id,
        task_id="t2",
        cron="0 * * * *",
        timezone="UTC",
        fire_window=None,
        external_id="x",
        deduplication_key="k1",
        next_run=1,
        next_run_at=1,
        now=2_000,
    )
    updated = await store.schedule_update(ScheduleUpdateParams(**values))  # type: ignore[arg-type]
    assert updated is not None and updated.task_id == "t2" and updated.next_run == 3_600_000
    updated = await store.schedule_update(
        ScheduleUpdateParams(**{**values, "timezone": "Europe/London"})  # type: ignore[arg-type]
    )
    assert updated is not None and updated.next_run == 1
    missing = ScheduleUpdateParams(**{**values, "schedule_id": "sched_nope"})  # type: ignore[arg-type]
    assert await store.schedule_update(missing) is None

    off = await store.schedule_set_active(ScheduleSetActiveParams(ENV, record.id, False, 3_000))
    assert off is not None and off.active == 0 and off.next_run == 1
    assert await store.schedule_due(ScheduleDueParams(ENV, now=10**12)) == []
    assert await store.schedule_next_at(ENV) is None
    on = await store.schedule_set_active(
        ScheduleSetActiveParams(ENV, record.id, True, 4_000, next_run=7_000, next_run_at=7_500)
    )
    assert on is not None and (on.active, on.next_run, on.next_run_at) == (1, 7_000, 7_500)
    assert await store.schedule_next_at(ENV) == 7_500
    assert [r.id for r in await store.schedule_due(ScheduleDueParams(ENV, now=7_500))] == [
        record.id
    ]
    assert await store.schedule_due(ScheduleDueParams(ENV, now=7_499)) == []

    assert await store.schedule_delete(ScheduleDeleteParams(ENV, record.id))
    assert not await store.schedule_delete(ScheduleDeleteParams(ENV, record.id))
    assert await store.schedule_set_active(ScheduleSetActiveParams(ENV, record.id, True, 1)) is None


async def test_declarative_sync_adds_updates_and_removes(store: Store) -> None:
    def declared(task: str, cron: str = "0 9 * * *") -> ScheduleRecord:
        return schedule(type=DECLARATIVE, task_id=task, cron=cron, deduplication_key=None)

    result = await store.schedule_sync(
        ScheduleSyncParams(ENV, [declared("a"), declared("b")], now=1_000)
    )
    assert (sorted(result.created), result.updated, result.deleted) == (["a", "b"], [], [])
    imperative, _ = await store.schedule_upsert(ScheduleUpsertParams(schedule(task_id="a")))
    result = await store.schedule_sync(
        ScheduleSyncParams(ENV, [declared("a"), declared("b", "0 10 * * *")], now=2_000)
    )
    assert (result.created, result.updated, result.deleted) == ([], ["b"], [])
    result = await store.schedule_sync(ScheduleSyncParams(ENV, [declared("b", "0 10 * * *")], 3))
    assert (result.created, result.updated, result.deleted) == ([], [], ["a"])
    page = await store.schedule_list(ScheduleListParams(ENV))
    assert sorted((r.type, r.task_id) for r in page.items) == [
        (DECLARATIVE, "b"),
        (IMPERATIVE, "a"),
    ]
    # Deleting by id never removes a declarative schedule (only a sync does).
    b = next(r for r in page.items if r.type == DECLARATIVE)
    assert not await store.schedule_delete(ScheduleDeleteParams(ENV, b.id))
    assert imperative.type == IMPERATIVE


async def test_fire_is_a_compare_and_set_with_the_run_in_one_transaction(store: Store) -> None:
    record, _ = await store.schedule_upsert(ScheduleUpsertParams(schedule()))

    def fire(key: str) -> ScheduleFireParams:
        return ScheduleFireParams(
            environment=ENV,
            schedule_id=record.id,
            expected=3_600_000,
            next_run=7_200_000,
            next_run_at=7_200_000,
            now=3_600_005,
            last_run=3_600_000,
            run=run_params(key),
        )

    # Ten schedulers fire the same tick at once: one moves it on and creates the run.
    results = await asyncio.gather(*[store.schedule_fire(fire("schedule:x:1")) for _ in range(10)])
    winners = [r for r in results if r.claimed]
    assert len(winners) == 1 and winners[0].run is not None
    run = await store.run_get(RunGetParams(ENV, winners[0].run.id))
    assert run is not None and run.schedule_id == record.id
    after = await store.schedule_get(ScheduleGetParams(ENV, record.id))
    assert after is not None and (after.next_run, after.last_run) == (7_200_000, 3_600_000)
    listed = await store.run_list(RunListParams(ENV, schedule_id=record.id))
    assert [r.id for r in listed.items] == [run.id]
    assert (await store.run_list(RunListParams(ENV, schedule_id="sched_other"))).items == []

    # A skipped tick moves next_run without a run and leaves last_run.
    skipped = await store.schedule_fire(
        ScheduleFireParams(ENV, record.id, 7_200_000, 10_800_000, 10_800_000, 7_200_001)
    )
    assert skipped.claimed and skipped.run is None
    after = await store.schedule_get(ScheduleGetParams(ENV, record.id))
    assert after is not None and (after.next_run, after.last_run) == (10_800_000, 3_600_000)

    # An inactive schedule never fires.
    await store.schedule_set_active(ScheduleSetActiveParams(ENV, record.id, False, 1))
    lost = await store.schedule_fire(
        ScheduleFireParams(ENV, record.id, 10_800_000, 1, 1, 1, 10_800_000, run_params("k"))
    )
    assert not lost.claimed
    assert len((await store.run_list(RunListParams(ENV))).items) == 1


async def test_a_tick_fired_again_resolves_to_the_same_run(store: Store) -> None:
    record, _ = await store.schedule_upsert(ScheduleUpsertParams(schedule()))
    first = await store.schedule_fire(
        ScheduleFireParams(ENV, record.id, 3_600_000, 1, 1, 2, 3_600_000, run_params("same"))
    )
    # The row was moved back by hand (as if a crashed scheduler's state were replayed).
    await store.schedule_set_active(
        ScheduleSetActiveParams(ENV, record.id, True, 3, next_run=3_600_000, next_run_at=1)
    )
    again = await store.schedule_fire(
        ScheduleFireParams(ENV, record.id, 3_600_000, 1, 1, 4, 3_600_000, run_params("same"))
    )
    assert again.claimed and again.cached
    assert first.run is not None and again.run is not None and again.run.id == first.run.id
    assert json.loads(again.run.payload or "null") == {}


async def test_fire_many_overlapping_sets_fire_each_tick_once(store: Store) -> None:
    records = [
        (await store.schedule_upsert(ScheduleUpsertParams(schedule(deduplication_key=f"k{i}"))))[0]
        for i in range(12)
    ]

    def fire(record: ScheduleRecord, key: str) -> ScheduleFireParams:
        return ScheduleFireParams(
            ENV, record.id, 3_600_000, 7_200_000, 7_200_000, 3_600_001, 3_600_000, run_params(key)
        )

    # Three schedulers fire overlapping sets in opposite orders, each in one transaction.
    sets = [records[:8], list(reversed(records[4:])), records[::2]]
    results = await asyncio.gather(
        *[
            store.schedule_fire_many([fire(r, f"{n}-{r.id}") for r in chosen])
            for n, chosen in enumerate(sets)
        ]
    )
    claimed = [
        chosen[i].id
        for chosen, batch in zip(sets, results, strict=True)
        for i, result in enumerate(batch)
        if result.claimed
    ]
    assert sorted(claimed) == sorted(r.id for r in records)  # each exactly once
    runs = (await store.run_list(RunListParams(ENV, limit=100))).items
    assert sorted(r.schedule_id or "" for r in runs) == sorted(r.id for r in records)
    assert await store.schedule_fire_many([]) == []


async def test_fire_many_settles_a_held_key_and_inserts_the_rest(store: Store) -> None:
    first, _ = await store.schedule_upsert(ScheduleUpsertParams(schedule(deduplication_key="a")))
    second, _ = await store.schedule_upsert(ScheduleUpsertParams(schedule(deduplication_key="b")))
    held = await store.run_insert(run_params("held-key"))

    def fire(record: ScheduleRecord, key: str) -> ScheduleFireParams:
        return ScheduleFireParams(
            ENV, record.id, 3_600_000, 7_200_000, 7_200_000, 3_600_001, 3_600_000, run_params(key)
        )

    results = await store.schedule_fire_many([fire(first, "held-key"), fire(second, "fresh")])
    assert [r.claimed for r in results] == [True, True]
    assert results[0].cached and results[0].run is not None
    assert results[0].run.id == held.run.id  # the key's run, not a second one
    assert not results[1].cached and results[1].run is not None
    assert results[1].run.schedule_id == second.id
    stored = await store.run_get(RunGetParams(ENV, results[1].run.id))
    assert stored is not None and stored.schedule_id == second.id
    assert len((await store.run_list(RunListParams(ENV))).items) == 2
