"""Edge cases of delay, TTL, debounce, queues and trigger validation (``docs/queues.md``)
that test_flow_control.py does not cover, with a real worker.

Time that must pass (a delay, a TTL, a retry's backoff, a debounce window) passes on a
FakeClock: the test moves it; effects are awaited by polling with a deadline.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from shipyard import (
    InvalidDurationError,
    UnknownQueueError,
    queue,
    queues,
    runs,
    task,
)
from shipyard.clock import FakeClock
from shipyard.engine.engine import Engine
from shipyard.testing.eventually import eventually

T = TypeVar("T")


async def poll(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float, what: str, interval: float = 0.05
) -> T:
    """Await ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


async def advance_to(clock: FakeClock, when_ms: int) -> None:
    """Move the fake clock to ``when_ms`` (no real time passes)."""
    left = when_ms - clock.now_ms()
    if left > 0:
        await clock.advance(ms=left)
    assert clock.now_ms() >= when_ms


async def status_becomes(engine: Engine, run_id: str, status: str) -> None:
    await eventually(
        lambda: engine.get_run(run_id), until=lambda r: r.status == status, message=status
    )


async def run_count(engine: Engine) -> int:
    return len([r async for r in runs.list()])


class Overlap:
    """Records how many task bodies run at once, per key and overall."""

    def __init__(self) -> None:
        self.now: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    async def hold(self, key: str, seconds: float) -> None:
        for k in (key, "*"):
            self.now[k] = self.now.get(k, 0) + 1
            self.peak[k] = max(self.peak.get(k, 0), self.now[k])
        try:
            await asyncio.sleep(seconds)
        finally:
            for k in (key, "*"):
                self.now[k] -= 1


# -- TTL (§2.2, §14.8) ------------------------------------------------------------------------


@pytest.mark.fake_clock
async def test_ttl_countdown_starts_after_the_delay(
    engine: Engine, start_worker: Any, clock: FakeClock
) -> None:
    """delay=2s, ttl=1s on a paused queue: DELAYED until 2 s, QUEUED until 3 s, then EXPIRED
    (not at 1 s, which is when a countdown from the trigger would end)."""

    @task(id="fe-ttl-delay")
    async def stale(payload: None) -> None:
        return None

    await start_worker()
    await queues.pause("task/fe-ttl-delay")
    before = engine.now()
    handle = await stale.trigger(None, delay="2s", ttl="1s")
    record = await engine.get_run(handle.id)
    assert record.status == "DELAYED"
    assert record.delay_until == before + 2000
    assert record.ttl_ms == 1000
    assert record.ttl_expires_at == record.delay_until + 1000

    await advance_to(clock, before + 1500)  # the TTL counted from the trigger has passed...
    await engine.promote_due()  # (one pass of the promoter, to be sure it looked)
    assert (await engine.get_run(handle.id)).status == "DELAYED"  # ...but it still waits
    await advance_to(clock, before + 2000)
    await status_becomes(engine, handle.id, "QUEUED")
    await advance_to(clock, before + 2999)
    await engine.promote_due()
    assert (await engine.get_run(handle.id)).status == "QUEUED"
    await advance_to(clock, before + 3000)
    await status_becomes(engine, handle.id, "EXPIRED")
    expired = await engine.get_run(handle.id)
    assert expired.expired_at is not None and expired.expired_at - before >= 3000
    assert expired.started_at is None and (await runs.retrieve(handle.id)).attempt_count == 0


@pytest.mark.fake_clock
async def test_a_retrying_run_is_never_expired_by_its_ttl(
    engine: Engine, start_worker: Any, clock: FakeClock
) -> None:
    """Attempt 1 fails, the retry waits 1.5 s, the TTL (1 s) passes meanwhile: the run is
    re-queued, not expired, and completes on attempt 2."""
    started: list[int] = []

    @task(
        id="fe-ttl-retry",
        ttl="1s",
        retry={
            "max_attempts": 2,
            "min_timeout_ms": 1500,
            "max_timeout_ms": 1500,
            "factor": 1,
            "randomize": False,
        },
    )
    async def flaky(payload: None) -> str:
        started.append(clock.now_ms())
        if len(started) == 1:
            raise RuntimeError("first attempt fails")
        return "second attempt"

    await start_worker()
    handle = await flaky.trigger(None)
    record = await engine.get_run(handle.id)
    assert record.ttl_ms == 1000 and record.ttl_expires_at is not None

    # Between the attempts the run waits for its retry past its TTL, and is not expired.
    await poll(lambda: _attempts_at_least(handle.id, 1), timeout=5, what="attempt 1 to fail")
    await advance_to(clock, record.ttl_expires_at + 300)
    await engine.promote_due()  # the expirer looked, past the TTL
    waiting = await engine.get_run(handle.id)
    assert waiting.status == "QUEUED", waiting.status  # waiting for its retry, past the TTL
    assert waiting.available_at > waiting.ttl_expires_at
    await advance_to(clock, waiting.available_at)
    done = await engine.wait_for_final(handle.id, timeout=10)
    assert done.status == "COMPLETED"
    run = await runs.retrieve(handle.id)
    assert run.output == "second attempt" and run.attempt_count == 2
    assert len(started) == 2 and started[1] > record.ttl_expires_at
    assert done.expired_at is None


async def _attempts_at_least(run_id: str, count: int) -> bool:
    run = await runs.retrieve(run_id)
    return run.attempt_count >= count and run.status != "EXECUTING"


# -- Debounce (§4, §14.5) ----------------------------------------------------------------------


@pytest.mark.fake_clock  # on the real clock a "sooner" trigger over 4 s late pushes it later
async def test_debounce_pushes_only_move_later_and_land_on_whole_seconds(
    engine: Engine,
) -> None:
    """No worker: the run stays DELAYED and only its delay_until is inspected."""

    @task(id="fe-debounce-push")
    async def debounced(payload: int) -> None:
        return None

    first = await debounced.trigger(1, debounce={"key": "k", "delay": "2s"}, ttl="1m")
    initial = await engine.get_run(first.id)
    assert initial.status == "DELAYED" and initial.delay_until is not None

    before = engine.now()
    later = await debounced.trigger(2, debounce={"key": "k", "delay": "5s"}, ttl="1m")
    after = engine.now()
    assert later.id == first.id and not later.is_cached
    pushed = await engine.get_run(first.id)
    assert pushed.delay_until is not None
    assert pushed.delay_until % 1000 == 0, pushed.delay_until
    assert pushed.delay_until > initial.delay_until
    assert before + 5000 - 999 <= pushed.delay_until <= after + 5000
    assert pushed.ttl_expires_at == pushed.delay_until + 60_000  # the TTL follows the delay

    # A trigger that would move it earlier leaves it where it is.
    sooner = await debounced.trigger(3, debounce={"key": "k", "delay": "1s"}, ttl="1m")
    assert sooner.id == first.id
    kept = await engine.get_run(first.id)
    assert kept.delay_until == pushed.delay_until
    assert kept.status == "DELAYED"
    assert (await runs.retrieve(first.id)).payload == 1  # leading mode keeps the first payload
    assert await run_count(engine) == 1


@pytest.mark.fake_clock
async def test_debounce_max_delay_overflow_creates_a_second_run(
    engine: Engine, start_worker: Any, clock: FakeClock
) -> None:
    executed: list[str] = []

    @task(id="fe-debounce-max")
    async def debounced(payload: str) -> None:
        executed.append(payload)

    options = {"key": "m", "delay": "1s", "max_delay": 1.5}
    first = await debounced.trigger("a", debounce=options)
    created = (await engine.get_run(first.id)).created_at
    kept_until = (await engine.get_run(first.id)).delay_until
    # A push now would land past created_at + max_delay (the push floors to whole seconds, so
    # any trigger at or after created_at + 1.5 s is guaranteed to overflow).
    await advance_to(clock, created + 1500)
    second = await debounced.trigger("b", debounce=options)
    assert second.id != first.id
    released = await engine.get_run(first.id)
    assert released.status == "DELAYED" and released.delay_until == kept_until
    # The new run absorbs the next trigger; the released one does not.
    third = await debounced.trigger("c", debounce=options)
    assert third.id == second.id
    assert await run_count(engine) == 2

    await start_worker()
    await clock.advance(3)
    for run_id in (first.id, second.id):
        assert (await engine.wait_for_final(run_id, timeout=10)).status == "COMPLETED"
    assert sorted(executed) == ["a", "b"]


async def test_a_trigger_after_the_debounced_run_started_creates_a_new_run(
    engine: Engine, start_worker: Any
) -> None:
    executed: list[str] = []
    started = asyncio.Event()
    release = asyncio.Event()

    @task(id="fe-debounce-started")
    async def debounced(payload: str) -> None:
        executed.append(payload)
        if payload == "first":
            started.set()
            await release.wait()

    await start_worker()
    options = {"key": "s", "delay": "1s"}
    first = await debounced.trigger("first", debounce=options)
    await asyncio.wait_for(started.wait(), 10)
    second = await debounced.trigger("second", debounce=options)
    assert second.id != first.id and not second.is_cached
    assert (await engine.get_run(second.id)).status == "DELAYED"
    assert (await engine.get_run(first.id)).status == "EXECUTING"
    release.set()
    for run_id in (first.id, second.id):
        assert (await engine.wait_for_final(run_id, timeout=10)).status == "COMPLETED"
    assert executed == ["first", "second"]


async def test_idempotency_is_evaluated_before_debounce(engine: Engine) -> None:
    @task(id="fe-debounce-idem")
    async def debounced(payload: int) -> None:
        return None

    first = await debounced.trigger(
        1, idempotency_key="idem", debounce={"key": "k", "delay": "1s", "mode": "trailing"}
    )
    original = await engine.get_run(first.id)
    # Same idempotency key: the cached run is returned as is; the debounce push (later time,
    # trailing payload) is not applied.
    cached = await debounced.trigger(
        2, idempotency_key="idem", debounce={"key": "k", "delay": "5s", "mode": "trailing"}
    )
    assert cached.id == first.id and cached.is_cached
    unchanged = await engine.get_run(first.id)
    assert unchanged.delay_until == original.delay_until
    assert (await runs.retrieve(first.id)).payload == 1
    # Another idempotency key: debounce applies (same run, pushed, trailing payload).
    pushed = await debounced.trigger(
        3, idempotency_key="other", debounce={"key": "k", "delay": "5s", "mode": "trailing"}
    )
    assert pushed.id == first.id and not pushed.is_cached
    moved = await engine.get_run(first.id)
    assert moved.delay_until is not None and original.delay_until is not None
    assert moved.delay_until > original.delay_until
    assert (await runs.retrieve(first.id)).payload == 3
    assert await run_count(engine) == 1


# -- Delay and cancel (§2.2) -------------------------------------------------------------------


@pytest.mark.fake_clock
async def test_cancel_a_delayed_run_and_it_never_executes(
    engine: Engine, start_worker: Any, clock: FakeClock
) -> None:
    executed: list[None] = []

    @task(id="fe-cancel-delayed")
    async def delayed(payload: None) -> None:
        executed.append(payload)

    await start_worker()
    handle = await delayed.trigger(None, delay="1s")
    record = await engine.get_run(handle.id)
    assert record.status == "DELAYED" and record.delay_until is not None
    canceled = await runs.cancel(handle.id)
    assert canceled.status == "CANCELED"
    # Past its time, it was neither promoted nor run.
    await advance_to(clock, record.delay_until + 700)
    await engine.promote_due()
    after = await runs.retrieve(handle.id)
    assert after.status == "CANCELED" and after.attempt_count == 0
    assert executed == []


@pytest.mark.fake_clock
async def test_delay_with_an_iso_string_in_the_future(
    engine: Engine, start_worker: Any, clock: FakeClock
) -> None:
    started_at: list[int] = []

    @task(id="fe-delay-iso")
    async def delayed(payload: None) -> None:
        started_at.append(clock.now_ms())

    now = datetime.datetime.fromtimestamp(clock.now_ms() / 1000, datetime.UTC)
    at = now + datetime.timedelta(seconds=1.2)
    at = at.replace(microsecond=(at.microsecond // 1000) * 1000)
    expected_ms = int(at.timestamp() * 1000)
    iso_z = at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"  # e.g. 2025-01-02T03:04:05.678Z

    await start_worker()
    handle = await delayed.trigger(None, delay=iso_z)
    record = await engine.get_run(handle.id)
    assert record.status == "DELAYED"
    assert record.delay_until is not None and abs(record.delay_until - expected_ms) <= 1
    # The "+00:00" form means the same instant.
    other = await delayed.trigger(None, delay=at.isoformat())
    assert abs((await engine.get_run(other.id)).delay_until - expected_ms) <= 1  # type: ignore[operator]
    await engine.promote_due()
    assert (await engine.get_run(handle.id)).status == "DELAYED"
    await advance_to(clock, expected_ms)
    for run_id in (handle.id, other.id):
        assert (await engine.wait_for_final(run_id, timeout=10)).status == "COMPLETED"
    assert len(started_at) == 2 and min(started_at) >= expected_ms


async def test_an_invalid_delay_is_rejected_before_anything_is_written(engine: Engine) -> None:
    @task(id="fe-delay-bad")
    async def delayed(payload: None) -> None:
        return None

    with pytest.raises(InvalidDurationError, match="soon"):
        await delayed.trigger(None, delay="soon")
    with pytest.raises(InvalidDurationError):
        await delayed.batch_trigger([None, {"payload": None, "options": {"delay": "soon"}}])
    with pytest.raises(InvalidDurationError):
        await delayed.batch_trigger([None, None], delay="soon")
    assert await run_count(engine) == 0


# -- Queues (§6, §14.7) ------------------------------------------------------------------------


async def test_concurrency_limit_zero_starts_nothing_until_overridden(
    engine: Engine, start_worker: Any
) -> None:
    executed: list[int] = []

    @task(id="fe-zero", queue={"concurrency_limit": 0})
    async def blocked(payload: int) -> None:
        executed.append(payload)

    worker = await start_worker()
    info = await queues.retrieve("task/fe-zero")
    assert (info.concurrency_limit, info.effective_limit) == (0, 0)
    handles = [await blocked.trigger(i) for i in range(2)]
    # Several claim rounds pass; nothing starts.
    claimer = worker.service("claimer")
    passes = claimer.passes
    await eventually(lambda: claimer.passes >= passes + 3)
    for handle in handles:
        assert (await engine.get_run(handle.id)).status == "QUEUED"
    assert executed == []
    assert (await queues.retrieve("task/fe-zero")).queued == 2

    raised = await queues.override_concurrency_limit("task/fe-zero", 1)
    assert raised.effective_limit == 1
    for handle in handles:
        assert (await engine.wait_for_final(handle.id, timeout=10)).status == "COMPLETED"
    assert sorted(executed) == [0, 1]


async def test_batch_items_with_concurrency_keys_each_respect_the_limit(
    engine: Engine, start_worker: Any
) -> None:
    seen = Overlap()

    @task(id="fe-batch-keys", queue={"concurrency_limit": 1})
    async def per_key(payload: dict[str, Any]) -> str:
        await seen.hold(payload["key"], 0.15)
        return payload["key"]

    await start_worker(concurrency=10)
    items = [
        {"payload": {"key": key, "i": i}, "options": {"concurrency_key": key}}
        for i in range(3)
        for key in ("a", "b", "c")
    ]
    batch = await per_key.batch_trigger(items)
    assert len(batch.runs) == 9
    for run_id, item in zip(batch.runs, items, strict=True):
        record = await engine.get_run(run_id)
        assert record.concurrency_key == item["options"]["concurrency_key"]
    for run_id in batch.runs:
        assert (await engine.wait_for_final(run_id, timeout=20)).status == "COMPLETED"
    assert (seen.peak["a"], seen.peak["b"], seen.peak["c"]) == (1, 1, 1)
    assert seen.peak["*"] >= 2  # the keys are separate sub-queues, not one queue of limit 1


async def test_an_unknown_queue_name_raises_and_writes_nothing(
    engine: Engine, start_worker: Any
) -> None:
    """With a worker for the task live, a queue nothing defines is an error (that worker's
    version cannot bring it)."""
    queue(name="known-shared", concurrency_limit=1)

    @task(id="fe-unknown-queue")
    async def routed(payload: None) -> None:
        return None

    await start_worker()
    with pytest.raises(UnknownQueueError, match="nope") as info:
        await routed.trigger(None, queue="nope")
    assert "known-shared" in info.value.context["known"]
    with pytest.raises(UnknownQueueError):
        await routed.batch_trigger([None, {"payload": None, "options": {"queue": "nope"}}])
    with pytest.raises(UnknownQueueError):
        await routed.trigger(None, queue={"name": "nope"})
    assert await run_count(engine) == 0
    # The defined queue is accepted (and only now a run exists).
    ok = await routed.trigger(None, queue="known-shared")
    assert (await engine.get_run(ok.id)).queue == "known-shared"
    assert await run_count(engine) == 1


async def test_an_unknown_queue_waits_with_its_task_for_a_worker(engine: Engine) -> None:
    """No worker has the task yet: the worker that brings it may bring the queue too, so the
    run waits as PENDING_VERSION instead of failing."""

    @task(id="fe-queue-later")
    async def later(payload: None) -> None:
        return None

    handle = await later.trigger(None, queue="comes-with-the-worker")
    run = await engine.get_run(handle.id)
    assert (run.status, run.queue) == ("PENDING_VERSION", "comes-with-the-worker")
