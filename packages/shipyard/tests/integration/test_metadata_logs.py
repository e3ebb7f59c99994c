"""Metadata, logs, spans and tags as a run records them (``docs/runs.md``)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from shipyard import (
    MetadataTooLargeError,
    NotInRunError,
    RunStatus,
    TooManyTagsError,
    logger,
    metadata,
    runs,
    tags,
    task,
)
from shipyard.engine.engine import Engine
from shipyard.logformat import RECORD_FIELD, TextFormatter
from shipyard.records import RunEventRecord


async def _events(engine: Engine, run_id: str, *kinds: str) -> list[RunEventRecord]:
    events = await engine.run_event_records(run_id)
    return [e for e in events if not kinds or e.kind in kinds]


async def test_metadata_operations_inside_a_run(engine, start_worker):
    @task(id="meta-ops")
    async def meta_ops(payload):
        snapshots: dict[str, Any] = {"initial": metadata.current()}
        returned = metadata.set("status", "working")
        assert returned is metadata
        (
            metadata.increment("count")
            .increment("count", 4)
            .decrement("count", 2)
            .append("items", "a")
            .append("items", "b")
            .append("items", "a")
            .remove("items", "a")
            .append("scalar", 1)
            .append("scalar", 2)
            .set("$.progress.percent", 50)
            .set("$.progress.stage", "upload")
            .set("gone", True)
            .del_("gone")
            .set("also-gone", 1)
            .delete("also-gone")
        )
        snapshots["get"] = metadata.get("count")
        snapshots["missing"] = metadata.get("nope")
        snapshots["after"] = metadata.current()
        # current() is a copy: mutating it does not change the run's metadata.
        snapshots["after"]["count"] = 999
        snapshots["still"] = metadata.get("count")
        return snapshots

    await start_worker()
    handle = await meta_ops.trigger(None, metadata={"from_trigger": 1})
    record = await engine.wait_for_final(handle.id, timeout=10)
    assert record.status == RunStatus.COMPLETED

    expected = {
        "from_trigger": 1,
        "status": "working",
        "count": 3,
        "items": ["b"],
        "scalar": [1, 2],
        "progress": {"percent": 50, "stage": "upload"},
    }
    output = (await runs.retrieve(handle.id)).output
    assert output["initial"] == {"from_trigger": 1}
    assert output["get"] == 3
    assert output["missing"] is None
    assert output["after"] == {**expected, "count": 999}
    assert output["still"] == 3
    assert (await runs.retrieve(handle.id)).metadata == expected


async def test_metadata_replace_and_flush(engine, start_worker):
    @task(id="meta-replace")
    async def meta_replace(payload, ctx):
        metadata.set("old", 1)
        await metadata.flush()
        stored_mid = (await runs.retrieve(ctx.run.id)).metadata
        metadata.replace({"fresh": True, "nested": {"a": [1]}}).set("$.nested.b", 2)
        return {"stored_mid": stored_mid, "local": metadata.current()}

    await start_worker()
    handle = await meta_replace.trigger(None, metadata={"seed": 0})
    await engine.wait_for_final(handle.id, timeout=10)

    run = await runs.retrieve(handle.id)
    assert run.output["stored_mid"] == {"seed": 0, "old": 1}
    assert run.output["local"] == {"fresh": True, "nested": {"a": [1], "b": 2}}
    assert run.metadata == {"fresh": True, "nested": {"a": [1], "b": 2}}
    metadata_events = await _events(engine, handle.id, "metadata")
    assert len(metadata_events) == 2
    assert json.loads(metadata_events[0].attributes or "[]") == [
        {"kind": "set", "key": "old", "value": 1}
    ]
    assert "replace" in [op["kind"] for op in json.loads(metadata_events[1].attributes or "[]")]


async def test_child_updates_parent_metadata(engine, start_worker):
    @task(id="meta-child")
    async def meta_child(payload):
        metadata.parent.increment("done").append("children", payload)
        metadata.root.increment("root_done", 10)
        metadata.set("mine", payload)
        return payload

    @task(id="meta-parent")
    async def meta_parent(payload, ctx):
        metadata.set("total", 3)
        await metadata.flush()
        result = await meta_child.batch_trigger_and_wait([1, 2, 3])
        before_flush = metadata.get("done")
        # The parent's local copy refreshes from the store on its own flush.
        metadata.set("waited", True)
        await metadata.flush()
        return {
            "ok": [r.ok for r in result.runs],
            "before_flush": before_flush,
            "after_flush": metadata.current(),
        }

    await start_worker(concurrency=5)
    handle = await meta_parent.trigger()
    record = await engine.wait_for_final(handle.id, timeout=10)
    assert record.status == RunStatus.COMPLETED

    run = await runs.retrieve(handle.id)
    assert run.output["ok"] == [True, True, True]
    assert run.output["before_flush"] is None
    after = run.output["after_flush"]
    assert after["done"] == 3
    assert after["root_done"] == 30
    assert sorted(after["children"]) == [1, 2, 3]
    assert run.metadata == after
    assert run.metadata["total"] == 3 and run.metadata["waited"] is True
    # Each child's own metadata holds only its own key.
    for child_id in [r async for r in runs.list(task_identifier="meta-child")]:
        assert child_id.metadata == {"mine": child_id.payload}


async def test_parent_and_root_ops_without_a_parent(engine, start_worker):
    @task(id="meta-orphan")
    async def meta_orphan(payload):
        metadata.parent.set("ignored", 1)  # no parent: nothing happens
        metadata.root.set("on_root", True)  # a root run is its own root
        return None

    await start_worker()
    handle = await meta_orphan.trigger()
    await engine.wait_for_final(handle.id, timeout=10)
    assert (await runs.retrieve(handle.id)).metadata == {"on_root": True}


async def test_metadata_too_large_raises_and_keeps_stored_metadata(engine, start_worker):
    @task(id="meta-too-big")
    async def meta_too_big(payload, ctx):
        metadata.set("small", 1)
        await metadata.flush()
        outcome: dict[str, Any] = {}
        try:
            metadata.set("big", "x" * (256 * 1024))
        except MetadataTooLargeError as exc:
            outcome["error"] = type(exc).__name__
            outcome["code"] = exc.code
        outcome["local"] = metadata.current()
        await metadata.flush()
        outcome["stored"] = (await runs.retrieve(ctx.run.id)).metadata
        return outcome

    await start_worker()
    handle = await meta_too_big.trigger()
    record = await engine.wait_for_final(handle.id, timeout=10)
    assert record.status == RunStatus.COMPLETED

    output = (await runs.retrieve(handle.id)).output
    assert output["error"] == "MetadataTooLargeError"
    assert output["code"] == "METADATA_TOO_LARGE"
    assert output["local"] == {"small": 1}
    assert output["stored"] == {"small": 1}
    assert (await runs.retrieve(handle.id)).metadata == {"small": 1}


async def test_metadata_too_large_uncaught_fails_the_attempt(engine, start_worker):
    @task(id="meta-too-big-uncaught")
    async def meta_too_big_uncaught(payload):
        metadata.set("ok", True)
        metadata.append("list", "y" * (300 * 1024))

    await start_worker()
    handle = await meta_too_big_uncaught.trigger(None, max_attempts=1)
    await engine.wait_for_final(handle.id, timeout=10)
    run = await runs.retrieve(handle.id)
    assert run.status == RunStatus.FAILED
    assert run.error is not None and run.error.name == "MetadataTooLargeError"
    assert run.metadata == {"ok": True}


async def test_metadata_outside_a_run(engine):
    assert metadata.current() is None
    assert metadata.get("anything") is None
    assert metadata.set("a", 1) is metadata
    assert metadata.increment("n").append("l", 1) is metadata
    metadata.parent.set("p", 1)
    metadata.root.set("r", 1)
    await metadata.flush()
    assert metadata.current() is None
    assert [r async for r in runs.list()] == []


async def test_logs_and_spans_are_stored_as_run_events_in_order(engine, start_worker):
    @logger.trace("parse", parser="fast")
    async def parse(text: str) -> int:
        logger.debug("parsing", length=len(text))
        return len(text)

    @logger.trace("sync-step")
    def sync_step() -> str:
        return "sync"

    @task(id="logs-and-spans")
    async def logs_and_spans(payload, ctx):
        logger.info("starting", user="u_1", count=2)
        logger.warn("careful", threshold=0.5)
        size = await parse("hello")
        async with logger.trace("upload", bucket="media") as span:
            span.set_attribute("bytes", 1024)
            logger.log("inside upload")
        with logger.trace("sync-block") as sync_span:
            sync_span.set_attribute("ok", True)
        step = sync_step()
        logger.error("something odd", code=500)
        return {"size": size, "step": step}

    await start_worker()
    handle = await logs_and_spans.trigger()
    record = await engine.wait_for_final(handle.id, timeout=10)
    assert record.status == RunStatus.COMPLETED
    assert (await runs.retrieve(handle.id)).output == {"size": 5, "step": "sync"}

    events = await _events(engine, handle.id)
    described = [(e.kind, e.level, e.message) for e in events if e.kind in ("log", "span")]
    # A span is recorded when it ends, after the events logged inside it.
    assert described == [
        ("log", "info", "starting"),
        ("log", "warn", "careful"),
        ("log", "debug", "parsing"),
        ("span", None, "parse"),
        ("log", "log", "inside upload"),
        ("span", None, "upload"),
        ("span", None, "sync-block"),
        ("span", None, "sync-step"),
        ("log", "error", "something odd"),
    ]
    by_message = {e.message: e for e in events}
    assert json.loads(by_message["starting"].attributes or "{}") == {"user": "u_1", "count": 2}
    assert json.loads(by_message["careful"].attributes or "{}") == {"threshold": 0.5}
    assert json.loads(by_message["something odd"].attributes or "{}") == {"code": 500}

    upload = json.loads(by_message["upload"].attributes or "{}")
    assert upload["attributes"] == {"bucket": "media", "bytes": 1024}
    assert upload["status"] == "ok"
    assert upload["duration_ms"] >= 0
    parse_span = json.loads(by_message["parse"].attributes or "{}")
    assert parse_span["attributes"] == {"parser": "fast"}
    assert parse_span["parent_id"] is None
    assert json.loads(by_message["sync-block"].attributes or "{}")["attributes"] == {"ok": True}

    # The last event is the final status.
    assert (events[-1].kind, events[-1].message) == ("status", "COMPLETED")
    assert [e.id for e in events] == sorted(e.id for e in events)


async def test_nested_span_records_its_parent_and_errors(engine, start_worker):
    @task(id="nested-spans")
    async def nested_spans(payload):
        async with logger.trace("outer"):
            try:
                async with logger.trace("inner"):
                    raise ValueError("inner broke")
            except ValueError:
                pass
        return None

    await start_worker()
    handle = await nested_spans.trigger()
    await engine.wait_for_final(handle.id, timeout=10)

    spans = {
        e.message: json.loads(e.attributes or "{}")
        for e in await _events(engine, handle.id, "span")
    }
    assert spans["inner"]["parent_id"] == spans["outer"]["span_id"]
    assert spans["inner"]["status"] == "error"
    assert spans["inner"]["error"] == "ValueError: inner broke"
    assert spans["outer"]["status"] == "ok"


async def test_logs_of_each_attempt_and_status_events(engine, start_worker):
    @task(id="logs-retried")
    async def logs_retried(payload, ctx):
        logger.info(f"attempt {ctx.attempt.number}")
        if ctx.attempt.number == 1:
            raise RuntimeError("first")
        return None

    await start_worker()
    handle = await logs_retried.trigger()
    await engine.wait_for_final(handle.id, timeout=10)

    events = await _events(engine, handle.id, "log", "status")
    assert [(e.kind, e.message) for e in events] == [
        ("status", "EXECUTING"),
        ("log", "attempt 1"),
        ("status", "QUEUED"),
        ("status", "EXECUTING"),
        ("log", "attempt 2"),
        ("status", "COMPLETED"),
    ]


async def test_logger_outside_a_run_does_not_fail(engine):
    logger.info("no run here", x=1)
    async with logger.trace("outside") as span:
        span.set_attribute("k", "v")


async def test_python_log_records_keep_the_message_and_carry_fields(
    engine: Engine, start_worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    deep: Any = []
    for _ in range(980):
        deep = [deep]

    @task(id="log-fields")
    async def log_fields(payload: None) -> str:
        logger.info("charged", amount=5, when=None)
        logger.info("deep", value=deep, broken={1, 2})
        return "ok"

    caplog.set_level(logging.INFO, logger="shipyard.task")
    await start_worker()
    handle = await log_fields.trigger(None)
    assert (await engine.wait_for_final(handle.id, timeout=10)).status == "COMPLETED"
    logger.info("outside", x=1)
    records = {r.getMessage(): r for r in caplog.records if r.name == "shipyard.task"}
    charged = records["charged"]
    assert getattr(charged, RECORD_FIELD) == {
        "run_id": handle.id,
        "task_id": "log-fields",
        "attempt": 1,
        "attributes": {"amount": 5, "when": None},
    }
    assert (
        TextFormatter()
        .format(charged)
        .endswith(f"shipyard.task: [{handle.id}] charged amount=5 when=null")
    )
    attributes = getattr(records["deep"], RECORD_FIELD)["attributes"]
    assert attributes["broken"] == "{1, 2}" and isinstance(attributes["value"], str)
    assert getattr(records["outside"], RECORD_FIELD) == {"attributes": {"x": 1}}
    stored = await _events(engine, handle.id, "log")
    assert json.loads(stored[0].attributes or "{}") == {"amount": 5, "when": None}


async def test_tags_add_inside_a_run_is_capped_at_ten(engine, start_worker):
    @task(id="tagger")
    async def tagger(payload):
        after_first = await tags.add(["user_1", "org_1"])
        after_dup = await tags.add("user_1")
        many = await tags.add([f"extra_{i}" for i in range(12)])
        past_cap = await tags.add("one-too-many")
        return {
            "after_first": after_first,
            "after_dup": after_dup,
            "many": many,
            "past_cap": past_cap,
        }

    await start_worker()
    handle = await tagger.trigger(None, tags=["initial"])
    record = await engine.wait_for_final(handle.id, timeout=10)
    assert record.status == RunStatus.COMPLETED

    run = await runs.retrieve(handle.id)
    expected = ["initial", "user_1", "org_1", *(f"extra_{i}" for i in range(7))]
    assert run.output["after_first"] == ["initial", "user_1", "org_1"]
    assert run.output["after_dup"] == ["initial", "user_1", "org_1"]
    assert run.output["many"] == expected
    assert run.output["past_cap"] == expected
    assert list(run.tags) == expected
    assert len(run.tags) == 10
    assert [r.id async for r in runs.list(tag="org_1")] == [handle.id]
    assert [r.id async for r in runs.list(tag="extra_6")] == [handle.id]
    assert [r.id async for r in runs.list(tag="extra_7")] == []

    tag_events = await _events(engine, handle.id, "tag")
    assert [e.message for e in tag_events] == [
        "user_1,org_1",
        ",".join(f"extra_{i}" for i in range(7)),
    ]


async def test_tags_add_validates_each_tag_and_needs_a_run(engine, start_worker):
    @task(id="bad-tagger")
    async def bad_tagger(payload):
        try:
            await tags.add(["fine", "x" * 129])
        except TooManyTagsError as exc:
            return {"error": exc.code}
        return {"error": None}

    await start_worker()
    handle = await bad_tagger.trigger()
    await engine.wait_for_final(handle.id, timeout=10)
    run = await runs.retrieve(handle.id)
    assert run.output == {"error": "INVALID_TAGS"}
    assert run.tags == ()

    with pytest.raises(NotInRunError):
        await tags.add("outside")
