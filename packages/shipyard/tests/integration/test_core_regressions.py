"""Regression tests for the defects found in the review of the core (issue 10, §4), on both
backends. Each test failed before its fix; the defect's number is in its docstring.

(Defects 1 and 14 — max_duration while waiting, metadata before suspending — are in
``test_waits.py``; 6, 9, 10, 12 in ``test_json_depth.py``, ``test_token_callback.py``,
``test_secret_key.py`` and ``acceptance/test_dev_settings.py``; 11 and 16 with the store.)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from shipyard import (
    IdempotencyKey,
    PayloadTooLargeError,
    TooManyTagsError,
    ValidationError,
    idempotency_keys,
    queue,
    runs,
    task,
    tasks,
    wait,
)
from shipyard.engine.engine import Engine
from shipyard.engine.idempotency import hash_key
from shipyard.testing.eventually import eventually


async def _run_count(engine: Engine) -> int:
    return len((await engine.list_runs(limit=1000)).items)


async def test_replay_keeps_the_options_of_the_original(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    """Defect 2: runs.replay dropped the queue, the concurrency key and the metadata."""
    shared = queue(name="replay-queue", concurrency_limit=3)

    @task(id="replay-options", queue="task/replay-options")
    async def replayed(payload: Any) -> Any:
        return payload

    @task(id="replay-holder", queue=shared)
    async def holder(payload: Any) -> None:
        return None

    await start_worker()
    original = await replayed.trigger(
        {"n": 1},
        tags=["a", "b"],
        metadata={"step": "start", "count": 2},
        queue="replay-queue",
        concurrency_key="tenant-1",
        machine="large-1x",
        max_attempts=7,
        max_duration=60,
        ttl="2h",
    )
    await engine.wait_for_final(original.id, timeout=10)
    replay = await runs.replay(original.id)
    await engine.wait_for_final(replay.id, timeout=10)
    before, after = await runs.retrieve(original.id), await runs.retrieve(replay.id)
    kept = (
        "payload",
        "tags",
        "queue",
        "concurrency_key",
        "machine",
        "max_attempts",
        "ttl",
        "task_identifier",
    )
    assert {k: getattr(after, k) for k in kept} == {k: getattr(before, k) for k in kept}
    assert after.metadata == {"step": "start", "count": 2}
    assert after.status == "COMPLETED" and after.id != before.id
    assert (await engine.get_run(replay.id)).max_duration_s == 60


async def test_replay_of_a_run_without_a_ttl_gets_none(engine: Engine) -> None:
    """Defect 2: a replay must not pick up a default TTL the original did not have."""

    @task(id="replay-no-ttl")
    async def no_ttl(payload: Any) -> None:
        return None

    original = await no_ttl.trigger({}, ttl=0)
    replay = await runs.replay(original.id, payload={"edited": True})
    replayed = await runs.retrieve(replay.id)
    assert replayed.ttl is None and replayed.payload == {"edited": True}


async def test_a_catch_error_hook_that_raises_fails_the_run_through_the_normal_path(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    """Defect 3: a raising catch_error ended the run SYSTEM_FAILURE without on_failure."""
    seen: list[str] = []

    def broken_catch(error: BaseException) -> None:
        raise LookupError("the hook itself is broken")

    @task(
        id="catch-raises",
        retry={"max_attempts": 3, "min_timeout_ms": 10},
        catch_error=broken_catch,
        on_failure=lambda error: seen.append(f"failure:{type(error).__name__}"),
        on_complete=lambda result: seen.append(f"complete:{result['ok']}"),
    )
    async def failing(payload: Any) -> None:
        raise RuntimeError("task error")

    await start_worker()
    handle = await failing.trigger({})
    run = await engine.wait_for_final(handle.id, timeout=10)
    assert run.status == "FAILED"
    error = json.loads(run.error or "{}")
    assert error["name"] == "LookupError" and "broken" in error["message"]
    assert seen == ["failure:LookupError", "complete:False"]
    assert [a.number for a in (await engine.retrieve_run(handle.id)).attempts] == [1]


async def test_a_catch_error_answer_with_an_unknown_key_is_a_validation_error(
    engine: Engine, start_worker: Callable[..., Any]
) -> None:
    """Defect 15: {"retryAt": ...} (Trigger.dev's spelling) was ignored silently."""
    seen: list[str] = []

    @task(
        id="catch-camel",
        retry={"max_attempts": 5, "min_timeout_ms": 10},
        catch_error=lambda: {"retryAt": 123},
        on_failure=lambda error: seen.append(str(error)),
    )
    async def failing(payload: Any) -> None:
        raise RuntimeError("task error")

    await start_worker()
    handle = await failing.trigger({})
    run = await engine.wait_for_final(handle.id, timeout=10)
    assert run.status == "FAILED"
    error = json.loads(run.error or "{}")
    assert error["name"] == "ValidationError"
    assert "'retryAt'" in error["message"] and "retry_at" in error["message"]
    assert len(seen) == 1 and "accepted keys" in seen[0]


def test_a_task_level_machine_that_is_not_a_preset_is_rejected() -> None:
    """Defect 4: an unknown task-level machine was silently small-1x."""
    with pytest.raises(ValidationError, match="Unknown machine of task 'big-one' 'huge-9x'"):

        @task(id="big-one", machine="huge-9x")
        async def big(payload: Any) -> None:
            return None

    @task(id="ok-machine", machine="large-2x")
    async def fine(payload: Any) -> None:
        return None

    assert fine.machine == "large-2x"


async def test_every_user_key_is_hashed_and_scoped_whatever_its_length(engine: Engine) -> None:
    """Defect 5: a 64-character key was taken as already hashed and skipped scoping."""

    @task(id="keyed")
    async def keyed(payload: Any) -> None:
        return None

    raw = "a" * 64
    handle = await keyed.trigger({}, idempotency_key=raw)
    stored = (await engine.get_run(handle.id)).idempotency_key
    assert stored == hash_key([raw], "run", None, None) and stored != raw
    # A key made with idempotency_keys.create is final: stored as given.
    made = idempotency_keys.create("order-1", scope="global")
    assert isinstance(made, IdempotencyKey)
    again = await keyed.trigger({}, idempotency_key=made)
    assert (await engine.get_run(again.id)).idempotency_key == made
    # Resetting with the raw 64-character key outside a run rebuilds the same hash.
    assert await idempotency_keys.reset("keyed", raw, scope="global") == 1


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"delay": "99999999999999999999w"}, "100 years"),
        ({"delay": 1e300}, "100 years"),
        ({"ttl": 1e300}, "100 years"),
        ({"idempotency_key": "k", "idempotency_key_ttl": "99999999999999999999d"}, "100 years"),
        ({"max_attempts": 10**30}, "max_attempts"),
        ({"max_duration": 1e300}, "max_duration"),
        ({"priority": float("nan")}, "priority"),
        ({"priority": float("inf")}, "priority"),
        ({"priority": 10**30}, "priority"),
        ({"tags": ["ok", "bad\x00tag"]}, "NUL"),
        ({"concurrency_key": "tenant\x00"}, "concurrency_key"),
        ({"queue": "q\x00"}, "queue"),
        ({"debounce": {"key": "k\x00", "delay": "5s"}}, "debounce key"),
        ({"delay": "2999-01-01T00:00:00Z"}, "100 years"),
    ],
)
async def test_out_of_range_and_malformed_options_are_validation_errors(
    engine: Engine, options: dict[str, Any], named: str
) -> None:
    """Defect 7: raw OverflowError / ValueError / PostgreSQL DataError; nothing is written."""

    @task(id="options-probe")
    async def probe(payload: Any) -> None:
        return None

    with pytest.raises(ValidationError, match=named):
        await probe.trigger({}, **options)
    assert await _run_count(engine) == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda: tasks.trigger("task\x00id", {}),
        lambda: runs.retrieve("run_\x00"),
        lambda: runs.cancel("run_\x00"),
        lambda: wait.retrieve_token("waitpoint_\x00"),
    ],
)
async def test_nul_characters_in_ids_are_validation_errors(engine: Engine, call: Any) -> None:
    """Defect 7: a NUL in an id reached PostgreSQL (DataError) instead of a clear error."""
    with pytest.raises(ValidationError, match="NUL"):
        await call()


async def test_wait_token_tags_are_validated(engine: Engine) -> None:
    """Defect 8: a dict tag was stored and broke every later list_tokens."""
    with pytest.raises(TooManyTagsError):
        await wait.create_token(tags=[{"not": "a tag"}])  # type: ignore[list-item]
    with pytest.raises(TooManyTagsError):
        await wait.create_token(tags={"a": 1})  # type: ignore[arg-type]
    with pytest.raises(TooManyTagsError, match="10 tags"):
        await wait.create_token(tags=[f"t{i}" for i in range(11)])
    good = await wait.create_token(tags=["order:1", "order:1", ""])
    assert (await wait.retrieve_token(good.id)).tags == ("order:1",)
    assert [t.id async for t in wait.list_tokens(tags=["order:1"])] == [good.id]


async def test_wait_token_data_over_the_output_limit_is_rejected(engine: Engine) -> None:
    """Defect 8: completion data had no size limit (40 MiB stored); the limit is 10 MiB."""
    token = await wait.create_token()
    with pytest.raises(PayloadTooLargeError, match="10 MiB"):
        await wait.complete_token(token, "x" * (10 * 1024 * 1024))
    assert (await wait.retrieve_token(token.id)).status == "WAITING"
    await wait.complete_token(token, "x" * 1000)
    assert (await wait.retrieve_token(token.id)).status == "COMPLETED"


@pytest.mark.fake_clock
async def test_raw_wait_idempotency_keys_are_scoped_to_the_run(
    engine: Engine, start_worker: Callable[..., Any], clock: Any
) -> None:
    """Found in review: two runs waiting with the same raw key shared one waitpoint (and so one
    deadline); a raw key is now scoped to its run, as trigger keys are."""
    seen: list[str] = []

    @task(id="raw-wait-key")
    async def waiter(payload: Any, ctx: Any) -> None:
        token = await wait.create_token(idempotency_key="approval")
        seen.append(token.id)
        await wait.for_(seconds=6, idempotency_key="pause")

    await start_worker()
    first, second = await waiter.trigger(1), await waiter.trigger(2)
    for handle in (first, second):
        await eventually(
            lambda h=handle: engine.get_run(h.id), until=lambda r: r.status == "WAITING"
        )
    assert len(set(seen)) == 2  # one token per run
    await clock.advance(6)
    for handle in (first, second):
        assert (await engine.wait_for_final(handle.id, timeout=10)).status == "COMPLETED"
    # Outside a run a raw key is global: the same key returns the same token.
    again_a = await wait.create_token(idempotency_key="outside")
    again_b = await wait.create_token(idempotency_key="outside")
    assert again_a.id == again_b.id and again_b.is_cached


async def test_connection_is_refused_by_batch_triggers_with_a_clear_message(
    engine: Engine,
) -> None:
    """Found in review: batch_trigger(..., connection=...) said only "Unknown trigger option"."""

    @task(id="batch-connection")
    async def target(payload: Any) -> None:
        return None

    with pytest.raises(ValidationError, match="trigger\\(\\) and trigger_and_wait\\(\\) only"):
        await target.batch_trigger([1], connection=object())
    assert await _run_count(engine) == 0
