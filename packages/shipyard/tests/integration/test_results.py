"""Waiting for child runs: Result, unwrap, batches in input order, parent/root/depth (§2.1)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shipyard import (
    AbortTaskRunError,
    NotInRunError,
    Result,
    RunStatus,
    SubtaskUnwrapError,
    batch,
    runs,
    task,
    tasks,
)

# The parent keeps its worker slot while it waits, so workers here have spare slots.
CONCURRENCY = 6


async def test_trigger_and_wait_returns_an_ok_result(engine, start_worker):
    @task(id="double")
    async def double(payload):
        return payload["n"] * 2

    @task(id="parent-ok")
    async def parent_ok(payload, ctx):
        result = await double.trigger_and_wait({"n": 21})
        assert isinstance(result, Result)
        return {
            "ok": result.ok,
            "output": result.output,
            "unwrapped": result.unwrap(),
            "id": result.id,
            "task": result.task_identifier,
            "error": result.error,
        }

    await start_worker(concurrency=CONCURRENCY)
    handle = await parent_ok.trigger()
    record = await engine.wait_for_final(handle.id, timeout=10)
    assert record.status == RunStatus.COMPLETED

    output = (await runs.retrieve(handle.id)).output
    assert output["ok"] is True
    assert output["output"] == 42
    assert output["unwrapped"] == 42
    assert output["task"] == "double"
    assert output["error"] is None
    child = await runs.retrieve(output["id"])
    assert child.status == RunStatus.COMPLETED
    assert child.trigger_function == "triggerAndWait"
    assert (child.parent_id, child.root_id, child.depth) == (handle.id, handle.id, 1)


async def test_failing_child_gives_ok_false_and_unwrap_raises(engine, start_worker):
    @task(id="child-fails")
    async def child_fails(payload):
        raise AbortTaskRunError("child gave up")

    @task(id="parent-of-failure")
    async def parent_of_failure(payload):
        result = await child_fails.trigger_and_wait({"x": 1})
        summary: dict[str, Any] = {
            "ok": result.ok,
            "output": result.output,
            "error_name": result.error.name if result.error else None,
            "error_message": result.error.message if result.error else None,
            "id": result.id,
        }
        try:
            result.unwrap()
        except SubtaskUnwrapError as exc:
            summary["unwrap"] = {
                "run_id": exc.run_id,
                "task_id": exc.task_id,
                "cause": str(exc.cause),
            }
        return summary

    await start_worker(concurrency=CONCURRENCY)
    handle = await parent_of_failure.trigger()
    record = await engine.wait_for_final(handle.id, timeout=10)
    # The parent does not fail because its child did: it only fails if it unwraps uncaught.
    assert record.status == RunStatus.COMPLETED

    output = (await runs.retrieve(handle.id)).output
    assert output["ok"] is False
    assert output["output"] is None
    assert output["error_name"] == "AbortTaskRunError"
    assert output["error_message"] == "child gave up"
    assert output["unwrap"] == {
        "run_id": output["id"],
        "task_id": "child-fails",
        "cause": "AbortTaskRunError: child gave up",
    }
    assert (await runs.retrieve(output["id"])).status == RunStatus.FAILED


async def test_uncaught_unwrap_fails_the_parent(engine, start_worker):
    @task(id="child-fails-2")
    async def child_fails_2(payload):
        raise AbortTaskRunError("no")

    @task(id="parent-unwraps", retry={"max_attempts": 1})
    async def parent_unwraps(payload):
        return (await child_fails_2.trigger_and_wait()).unwrap()

    await start_worker(concurrency=CONCURRENCY)
    handle = await parent_unwraps.trigger()
    await engine.wait_for_final(handle.id, timeout=10)
    run = await runs.retrieve(handle.id)
    assert run.status == RunStatus.FAILED
    assert run.error is not None
    assert run.error.name == "SubtaskUnwrapError"


async def test_wait_calls_outside_a_run_raise_not_in_run(engine):
    @task(id="lonely")
    async def lonely(payload):
        return None

    with pytest.raises(NotInRunError):
        await lonely.trigger_and_wait({})
    with pytest.raises(NotInRunError):
        await lonely.batch_trigger_and_wait([{}, {}])
    with pytest.raises(NotInRunError):
        await tasks.trigger_and_wait("lonely", {})
    with pytest.raises(NotInRunError):
        await batch.trigger_and_wait([{"id": "lonely", "payload": {}}])
    # Nothing was created.
    assert [r async for r in runs.list()] == []


async def test_batch_trigger_and_wait_returns_results_in_input_order(engine, start_worker):
    @task(id="square")
    async def square(payload):
        # Later items finish first, so completion order is the reverse of input order.
        await asyncio.sleep(0.02 * (5 - payload))
        if payload == 3:
            raise AbortTaskRunError("three is unlucky")
        return payload * payload

    @task(id="fan-out")
    async def fan_out(payload, ctx):
        result = await square.batch_trigger_and_wait([1, 2, 3, 4, 5])
        return {
            "batch_id": result.id,
            "ok": [r.ok for r in result.runs],
            "outputs": [r.output for r in result.runs],
            "ids": [r.id for r in result.runs],
            "errors": [r.error.name if r.error else None for r in result.runs],
        }

    await start_worker(concurrency=CONCURRENCY)
    handle = await fan_out.trigger()
    record = await engine.wait_for_final(handle.id, timeout=10)
    assert record.status == RunStatus.COMPLETED

    output = (await runs.retrieve(handle.id)).output
    assert output["ok"] == [True, True, False, True, True]
    assert output["outputs"] == [1, 4, None, 16, 25]
    assert output["errors"] == [None, None, "AbortTaskRunError", None, None]
    assert len(set(output["ids"])) == 5

    info = await batch.retrieve(output["batch_id"])
    assert info.run_count == 5
    assert list(info.runs) == output["ids"]
    for index, child_id in enumerate(output["ids"]):
        child = await runs.retrieve(child_id)
        assert child.payload == index + 1
        assert child.batch_id == output["batch_id"]
        assert child.trigger_function == "batchTriggerAndWait"
        assert (child.parent_id, child.root_id, child.depth) == (handle.id, handle.id, 1)


async def test_grandchild_has_root_parent_and_depth(engine, start_worker):
    @task(id="leaf")
    async def leaf(payload, ctx):
        return {
            "parent": ctx.run.parent_id,
            "root": ctx.run.root_id,
            "depth": ctx.run.depth,
            "id": ctx.run.id,
        }

    @task(id="middle")
    async def middle(payload, ctx):
        return {"me": ctx.run.id, "leaf": (await leaf.trigger_and_wait()).unwrap()}

    @task(id="root")
    async def root(payload, ctx):
        return (await middle.trigger_and_wait()).unwrap()

    await start_worker(concurrency=CONCURRENCY)
    handle = await root.trigger()
    record = await engine.wait_for_final(handle.id, timeout=10)
    assert record.status == RunStatus.COMPLETED

    output = (await runs.retrieve(handle.id)).output
    middle_id = output["me"]
    assert output["leaf"]["parent"] == middle_id
    assert output["leaf"]["root"] == handle.id
    assert output["leaf"]["depth"] == 2

    root_run = await runs.retrieve(handle.id)
    assert (root_run.parent_id, root_run.root_id, root_run.depth) == (None, None, 0)
    middle_run = await runs.retrieve(middle_id)
    assert (middle_run.parent_id, middle_run.root_id, middle_run.depth) == (
        handle.id,
        handle.id,
        1,
    )
    leaf_run = await runs.retrieve(output["leaf"]["id"])
    assert (leaf_run.parent_id, leaf_run.root_id, leaf_run.depth) == (middle_id, handle.id, 2)


async def test_trigger_from_a_task_without_waiting_sets_parent(engine, start_worker):
    @task(id="fire-and-forget-child")
    async def child(payload):
        return "child done"

    @task(id="fire-and-forget-parent")
    async def parent(payload):
        return (await child.trigger({"k": 1})).id

    await start_worker(concurrency=CONCURRENCY)
    handle = await parent.trigger()
    await engine.wait_for_final(handle.id, timeout=10)
    child_id = (await runs.retrieve(handle.id)).output
    await engine.wait_for_final(child_id, timeout=10)
    child_run = await runs.retrieve(child_id)
    assert child_run.output == "child done"
    assert child_run.trigger_function == "trigger"
    assert (child_run.parent_id, child_run.root_id, child_run.depth) == (handle.id, handle.id, 1)


async def test_trigger_and_wait_on_a_completed_keyed_run_returns_its_result(engine, start_worker):
    """§3 2d: the parent resumes at once with the stored result of the cached run."""
    executions: list[Any] = []

    @task(id="keyed-child")
    async def keyed_child(payload):
        executions.append(payload)
        return {"value": payload}

    @task(id="keyed-parent")
    async def keyed_parent(payload):
        key = "global-child-key"
        first = await keyed_child.trigger_and_wait(1, idempotency_key=key)
        second = await keyed_child.trigger_and_wait(2, idempotency_key=key)
        return [[first.id, first.output], [second.id, second.output]]

    await start_worker(concurrency=CONCURRENCY)
    handle = await keyed_parent.trigger()
    record = await engine.wait_for_final(handle.id, timeout=10)
    assert record.status == RunStatus.COMPLETED
    first, second = (await runs.retrieve(handle.id)).output
    assert first == second
    assert first[1] == {"value": 1}
    assert executions == [1]
