"""Store conformance: concurrency limits and keys, pause, delays, TTL, debounce, rate limits."""

from __future__ import annotations

import asyncio
import json

from test_store_runs import (
    ENV,
    RELEASE,
    claim,
    events,
    finish_many,
    get,
    insert_many,
    register,
    run_params,
)

from shipyard.store.protocol import (
    QueueDefinition,
    QueueListParams,
    QueueUpdateParams,
    QueueUpsertParams,
    RateTakeParams,
    RunCancelParams,
    RunClaimParams,
    RunFinishManyParams,
    RunFinishParams,
    RunLeasedParams,
    RunReapParams,
    RunReleaseParams,
    RunRescheduleParams,
    RunScheduleParams,
    Store,
)

FINAL = frozenset(
    {"COMPLETED", "CANCELED", "FAILED", "CRASHED", "SYSTEM_FAILURE", "EXPIRED", "TIMED_OUT"}
)


async def limit_queue(store: Store, name: str, limit: int | None) -> None:
    await store.queue_upsert(QueueUpsertParams(ENV, [QueueDefinition(name, limit)], 0))


async def running(store: Store, queue: str) -> int:
    found = [q for q in await store.queue_list(QueueListParams(ENV)) if q.name == queue]
    return found[0].running if found else 0


def claim_env(limit: int = 10, environment_limit: int = 100, worker: str = "w1") -> RunClaimParams:
    params = claim(None, worker=worker, limit=limit)  # type: ignore[arg-type]
    params.environment_limit = environment_limit
    return params


def finish(run_id: str, attempt: int = 1, worker: str = "w1", status: str = "COMPLETED"):  # type: ignore[no-untyped-def]
    return RunFinishParams(run_id, attempt, worker, status, "COMPLETED", 3_000, output="1")


async def test_queue_limit_holds_and_frees_on_finish(store: Store) -> None:
    await register(store)
    await limit_queue(store, "task/t", 2)
    await insert_many(store, [run_params() for _ in range(5)])
    first = await store.run_claim(claim_env())
    assert len(first) == 2
    assert await store.run_claim(claim_env(worker="w2")) == []
    assert await running(store, "task/t") == 2
    assert await finish_many(store, finish(first[0].id)) == [True]
    assert await running(store, "task/t") == 1
    second = await store.run_claim(claim_env(worker="w2"))
    assert len(second) == 1


async def test_concurrent_claims_never_exceed_the_limit(store: Store) -> None:
    await register(store)
    await limit_queue(store, "task/t", 3)
    await insert_many(store, [run_params() for _ in range(30)])
    batches = await asyncio.gather(*[store.run_claim(claim_env(worker=f"w{i}")) for i in range(8)])
    assert sum(len(b) for b in batches) == 3


async def test_each_concurrency_key_gets_the_queue_limit(store: Store) -> None:
    await register(store)
    await limit_queue(store, "task/t", 1)
    for key in ("a", "b", "c"):
        await insert_many(store, [run_params(concurrency_key=key) for _ in range(3)])
    claimed = await store.run_claim(claim_env())
    assert sorted(r.concurrency_key or "" for r in claimed) == ["a", "b", "c"]
    assert await store.run_claim(claim_env(worker="w2")) == []
    assert await running(store, "task/t") == 3


async def test_environment_limit_with_burst_and_per_queue_cap(store: Store) -> None:
    await register(store, task_id="t")
    await register(store, task_id="u")
    await insert_many(store, [run_params(task_id="t") for _ in range(10)])
    await insert_many(store, [run_params(task_id="u") for _ in range(10)])
    params = claim_env(limit=50, environment_limit=3)
    params.task_ids = ["t", "u"]
    claimed = await store.run_claim(params)
    # Burst 2.0 → 6 in the environment; each queue is capped at the base limit of 3.
    assert len(claimed) == 6
    assert sorted(r.task_id for r in claimed) == ["t"] * 3 + ["u"] * 3


async def test_pause_stops_claims_and_resume_restarts_them(store: Store) -> None:
    await register(store)
    await limit_queue(store, "task/t", None)
    await insert_many(store, [run_params() for _ in range(2)])
    paused = await store.queue_update(QueueUpdateParams(ENV, "task/t", 5, paused=True))
    assert paused is not None and paused.paused and paused.queued == 2
    assert await store.run_claim(claim_env()) == []
    await store.queue_update(QueueUpdateParams(ENV, "task/t", 6, paused=False))
    assert len(await store.run_claim(claim_env())) == 2
    assert await store.queue_update(QueueUpdateParams(ENV, "nope", 7, paused=True)) is None


async def test_registering_again_keeps_pause_and_override(store: Store) -> None:
    await limit_queue(store, "q", 5)
    await store.queue_update(QueueUpdateParams(ENV, "q", 1, paused=True, limit_override=2))
    await limit_queue(store, "q", 7)
    [queue] = [q for q in await store.queue_list(QueueListParams(ENV)) if q.name == "q"]
    assert (queue.paused, queue.limit_override, queue.concurrency_limit) == (1, 2, 7)
    await store.queue_update(QueueUpdateParams(ENV, "q", 2, clear_override=True))
    [queue] = [q for q in await store.queue_list(QueueListParams(ENV)) if q.name == "q"]
    assert queue.limit_override is None


async def test_limit_override_applies_to_claims(store: Store) -> None:
    await register(store)
    await limit_queue(store, "task/t", 1)
    await store.queue_update(QueueUpdateParams(ENV, "task/t", 1, limit_override=4))
    await insert_many(store, [run_params() for _ in range(6)])
    assert len(await store.run_claim(claim_env())) == 4


async def test_slots_return_on_every_way_out_of_executing(store: Store) -> None:
    await register(store, max_attempts=5)
    await insert_many(store, [run_params() for _ in range(5)])
    a, b, c, d, e = await store.run_claim(claim_env())
    assert await running(store, "task/t") == 5
    await finish_many(store, finish(a.id))
    await finish_many(
        store, RunFinishParams(b.id, 1, "w1", "QUEUED", "FAILED", 3_000, error="{}", retry_at=9_000)
    )
    await store.run_release(RunReleaseParams(ENV, c.id, 1, "w1", 3_000))
    await store.run_cancel(RunCancelParams(ENV, d.id, 3_000, FINAL, "{}"))
    await store.run_reap_expired(RunReapParams(ENV, 10**12, "{}"))
    assert await running(store, "task/t") == 0
    assert e.id  # reaped back to QUEUED with the others


async def test_finish_and_claim_reuses_the_slots_it_frees(store: Store) -> None:
    # A worker's finished batch and its next claim in one call: the claim sees the slot the
    # finish freed (queue limit 1), and a stale finish in the batch is fenced as alone.
    await register(store)
    await limit_queue(store, "task/t", 1)
    first = await store.run_insert(run_params(now=1_000))
    second = await store.run_insert(run_params(now=1_001))
    [claimed] = await store.run_claim(claim_env())
    assert claimed.id == first.run.id
    stale = RunFinishParams(second.run.id, 1, "w1", "COMPLETED", "COMPLETED", 3_000)
    accepted, next_runs = await store.run_finish_and_claim(
        RunFinishManyParams(ENV, [finish(claimed.id), stale]), claim_env()
    )
    assert accepted == [True, False]
    assert [r.id for r in next_runs] == [second.run.id]
    assert (next_runs[0].status, next_runs[0].attempt_number) == ("EXECUTING", 1)
    done = await get(store, first.run.id)
    assert done is not None and done.status == "COMPLETED"
    assert await running(store, "task/t") == 1
    # Nothing left to claim: the finish alone.
    accepted, none = await store.run_finish_and_claim(
        RunFinishManyParams(ENV, [finish(second.run.id)]), claim_env()
    )
    assert (accepted, none) == ([True], [])
    assert await running(store, "task/t") == 0


async def test_a_claim_without_its_peek_claims_the_same(store: Store) -> None:
    # A woken worker skips the lock-free peek: same runs, same limits; nothing ready is [].
    await register(store)
    params = claim_env(limit=5)
    params.peek = False
    assert await store.run_claim(params) == []
    ids = [(await store.run_insert(run_params(now=1_000 + i))).run.id for i in range(2)]
    await store.run_insert(run_params(now=1_500, available_at=9_000))  # not yet available
    assert [r.id for r in await store.run_claim(params)] == ids
    assert await store.run_claim(params) == []


async def test_a_worker_finds_the_runs_leased_to_it(store: Store) -> None:
    # A claim whose answer was lost still leased its runs: the worker asks for them.
    await register(store)
    ids = [(await store.run_insert(run_params(now=1_000 + i))).run.id for i in range(3)]
    mine = await store.run_claim(claim_env(limit=2))
    theirs = await store.run_claim(claim_env(limit=5, worker="w2"))
    leased = await store.run_leased(RunLeasedParams(ENV, "w1"))
    assert [r.id for r in leased] == [r.id for r in mine] == ids[:2]
    assert all(r.status == "EXECUTING" and r.lease_owner == "w1" for r in leased)
    assert [r.id for r in await store.run_leased(RunLeasedParams(ENV, "w2"))] == [theirs[0].id]
    await finish_many(store, finish(ids[0]))
    assert [r.id for r in await store.run_leased(RunLeasedParams(ENV, "w1"))] == [ids[1]]
    assert await store.run_leased(RunLeasedParams(ENV, "nobody")) == []


async def test_priority_orders_claims_within_a_limited_queue(store: Store) -> None:
    await register(store)
    await limit_queue(store, "task/t", 1)
    await store.run_insert(run_params(now=1_000))
    urgent = await store.run_insert(run_params(now=1_500, priority_ms=10_000))
    [first] = await store.run_claim(claim_env())
    assert first.id == urgent.run.id


async def test_delayed_runs_are_promoted_when_due(store: Store) -> None:
    await register(store)
    delayed = await store.run_insert(
        run_params(status="DELAYED", delay_until=5_000, available_at=5_000, queued_at=5_000)
    )
    assert await store.run_claim(claim_env()) == []
    early = await store.run_schedule_due(RunScheduleParams(ENV, 4_999, "{}"))
    assert early.promoted == []
    due = await store.run_schedule_due(RunScheduleParams(ENV, 5_000, "{}"))
    assert due.promoted == [delayed.run.id]
    params = claim_env()
    params.now = 5_000
    assert [r.id for r in await store.run_claim(params)] == [delayed.run.id]


async def test_schedule_pass_reports_when_it_has_work_next(store: Store) -> None:
    # Workers sleep until the earliest due time the pass reports, so delayed runs start on
    # time instead of at the next poll: the earliest DELAYED time or unstarted TTL.
    await register(store)
    idle = await store.run_schedule_due(RunScheduleParams(ENV, 1_000, "{}"))
    assert idle.next_due is None
    first = await store.run_insert(
        run_params(status="DELAYED", delay_until=5_000, available_at=5_000, queued_at=5_000)
    )
    await store.run_insert(
        run_params(status="DELAYED", delay_until=7_000, available_at=7_000, queued_at=7_000)
    )
    await store.run_insert(run_params(ttl_ms=5_000, ttl_expires_at=6_000))
    early = await store.run_schedule_due(RunScheduleParams(ENV, 1_000, "{}"))
    assert (early.promoted, early.next_due) == ([], 5_000)
    due = await store.run_schedule_due(RunScheduleParams(ENV, 5_000, "{}"))
    # After the pass: the queued run's TTL (6,000) comes before the next delayed run.
    assert (due.promoted, due.next_due) == ([first.run.id], 6_000)
    later = await store.run_schedule_due(RunScheduleParams(ENV, 6_500, "{}"))
    assert (len(later.expired), later.next_due) == (1, 7_000)
    # The promoted runs have no TTL: nothing else is scheduled.
    last = await store.run_schedule_due(RunScheduleParams(ENV, 7_000, "{}"))
    assert (len(last.promoted), last.next_due) == (1, None)


async def test_ttl_expires_only_runs_that_never_started(store: Store) -> None:
    await register(store)
    never = await store.run_insert(run_params(ttl_ms=1_000, ttl_expires_at=2_000))
    started = await store.run_insert(run_params(ttl_ms=1_000, ttl_expires_at=2_000))
    # Start one (it then fails and is queued for a retry): a retried run never expires.
    await store.queue_upsert(QueueUpsertParams(ENV, [QueueDefinition("task/t", 1)], 0))
    [claimed] = await store.run_claim(claim_env())
    assert claimed.id in (never.run.id, started.run.id)
    await finish_many(
        store, RunFinishParams(claimed.id, 1, "w1", "QUEUED", "FAILED", 3_000, error="{}")
    )
    done = await store.run_schedule_due(RunScheduleParams(ENV, 2_000, '{"name":"Expired"}'))
    other = never.run.id if claimed.id == started.run.id else started.run.id
    assert done.expired == [other]
    expired = await get(store, other)
    assert expired is not None
    assert (expired.status, expired.expired_at, expired.finished_at) == ("EXPIRED", 2_000, 2_000)
    retried = await get(store, claimed.id)
    assert retried is not None and retried.status == "QUEUED"


async def test_reschedule_moves_only_delayed_runs(store: Store) -> None:
    delayed = await store.run_insert(
        run_params(
            status="DELAYED",
            delay_until=5_000,
            available_at=5_000,
            ttl_ms=100,
            ttl_expires_at=5_100,
        )
    )
    moved = await store.run_reschedule(RunRescheduleParams(ENV, delayed.run.id, 9_000, 2_000))
    assert moved is not None
    assert (moved.delay_until, moved.available_at, moved.ttl_expires_at) == (9_000, 9_000, 9_100)
    queued = await store.run_insert(run_params())
    assert await store.run_reschedule(RunRescheduleParams(ENV, queued.run.id, 9_000, 2_000)) is None


def debounced(payload: str, now: int, push_to: int, **kw: object):  # type: ignore[no-untyped-def]
    return run_params(
        now=now,
        status="DELAYED",
        payload=payload,
        delay_until=now + 2_000,
        available_at=now + 2_000,
        queued_at=now + 2_000,
        debounce_key="user-1",
        debounce_delay_until=push_to,
        **kw,
    )


async def test_debounce_leading_keeps_the_first_payload_and_only_pushes_later(store: Store) -> None:
    first = await store.run_insert(debounced('"a"', 1_000, 3_000))
    second = await store.run_insert(debounced('"b"', 1_500, 3_000))
    third = await store.run_insert(debounced('"c"', 1_600, 2_000))  # earlier: no move
    assert first.run.id == second.run.id == third.run.id
    assert not second.cached
    run = await get(store, first.run.id)
    assert run is not None and (run.payload, run.delay_until) == ('"a"', 3_000)


async def test_debounce_trailing_takes_the_last_trigger(store: Store) -> None:
    first = await store.run_insert(debounced('"a"', 1_000, 3_000, tags=("x",)))
    await store.run_insert(
        debounced('"z"', 2_000, 4_000, debounce_trailing=True, tags=("y",), machine="micro")
    )
    run = await get(store, first.run.id)
    assert run is not None
    assert (run.payload, run.delay_until, run.machine) == ('"z"', 4_000, "micro")
    assert json.loads(run.tags) == ["y"]


async def test_debounce_max_delay_starts_a_new_run(store: Store) -> None:
    first = await store.run_insert(debounced('"a"', 1_000, 3_000, debounce_max_delay_ms=5_000))
    second = await store.run_insert(debounced('"b"', 5_000, 7_000, debounce_max_delay_ms=5_000))
    assert second.run.id != first.run.id
    old = await get(store, first.run.id)
    assert old is not None and old.delay_until == 3_000  # left to run at its time


async def test_debounce_after_the_run_started_creates_a_new_run(store: Store) -> None:
    await register(store)
    first = await store.run_insert(debounced('"a"', 1_000, 3_000))
    await store.run_schedule_due(RunScheduleParams(ENV, 3_000, "{}"))
    later = await store.run_insert(debounced('"b"', 3_500, 5_500))
    assert later.run.id != first.run.id


async def test_concurrent_debounced_triggers_make_one_run(store: Store) -> None:
    results = await asyncio.gather(
        *[store.run_insert(debounced(f'"{i}"', 1_000 + i, 3_000 + i)) for i in range(15)]
    )
    assert len({r.run.id for r in results}) == 1


async def test_idempotency_wins_over_debounce(store: Store) -> None:
    keyed = await store.run_insert(
        run_params(idempotency_key="k", idempotency_key_expires_at=10**12)
    )
    other = await store.run_insert(
        debounced(
            '"x"',
            1_000,
            3_000,
            idempotency_key="k",
            idempotency_key_expires_at=10**12,
            idempotency_release_statuses=RELEASE,
        )
    )
    assert other.cached and other.run.id == keyed.run.id


async def test_rate_bucket_refills_over_time(store: Store) -> None:
    def take(count: int, now: int) -> RateTakeParams:
        return RateTakeParams(
            ENV, count, now, bucket_size=3, refill_tokens=1, refill_interval_ms=1_000
        )

    assert await store.environment_rate_take(take(2, 0)) == 0
    assert await store.environment_rate_take(take(1, 0)) == 0
    wait = await store.environment_rate_take(take(1, 0))
    assert 900 <= wait <= 1_000
    assert await store.environment_rate_take(take(1, 1_000)) == 0
    assert await store.environment_rate_take(take(5, 1_000)) > 0  # more than the bucket holds


async def test_promotion_and_expiry_each_append_one_status_event(store: Store) -> None:
    delayed = await store.run_insert(
        run_params(status="DELAYED", delay_until=5_000, available_at=5_000, queued_at=5_000)
    )
    stale = await store.run_insert(run_params(ttl_ms=1_000, ttl_expires_at=2_000))
    done = await store.run_schedule_due(RunScheduleParams(ENV, 5_000, "{}"))
    assert (done.promoted, done.expired) == ([delayed.run.id], [stale.run.id])
    assert await events(store, delayed.run.id) == [("status", "QUEUED")]
    assert await events(store, stale.run.id) == [("status", "EXPIRED")]
    again = await store.run_schedule_due(RunScheduleParams(ENV, 6_000, "{}"))
    assert (again.promoted, again.expired) == ([], [])
    assert await events(store, delayed.run.id) == [("status", "QUEUED")]


async def test_debounce_push_is_not_a_status_change(store: Store) -> None:
    first = await store.run_insert(debounced('"a"', 1_000, 3_000))
    await store.run_insert(debounced('"b"', 1_500, 4_000, debounce_trailing=True))
    assert await events(store, first.run.id) == []


async def test_rate_bucket_is_per_environment(store: Store) -> None:
    def take(environment: str) -> RateTakeParams:
        return RateTakeParams(
            environment, 1, 0, bucket_size=1, refill_tokens=1, refill_interval_ms=1
        )

    assert await store.environment_rate_take(take(ENV)) == 0
    assert await store.environment_rate_take(take("other-env")) == 0
    assert await store.environment_rate_take(take(ENV)) > 0
