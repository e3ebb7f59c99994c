"""A run's last metadata operations travel with its finish (``engine/metadata.py``): exact, in
the change feed before the status change, and without a store write of their own."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from shipyard import RunStatus, logger, metadata, task
from shipyard.engine.engine import Engine
from shipyard.engine.metadata import apply_metadata_ops
from shipyard.jsonutil import loads
from shipyard.metadata_ops import MetadataOp

# Store calls that write for a run while it executes and ends.
_WRITES = (
    "run_metadata_update",
    "run_events_append",
    "run_finish_many",
    "run_finish_and_claim",
)


def _count_writes(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count the calls of the store's write methods (wrapping this engine's store instance)."""
    counts: Counter[str] = Counter()
    store = engine.store
    for name in _WRITES:
        method = getattr(store, name)

        def counted(*args: Any, _name: str = name, _method: Any = method) -> Any:
            counts[_name] += 1
            return _method(*args)

        monkeypatch.setattr(store, name, counted)
    return counts


async def test_final_metadata_is_exact_and_its_event_precedes_the_status(engine, start_worker):
    @task(id="meta-final")
    async def meta_final(payload: Any) -> None:
        metadata.set("stage", "a").increment("n", 2).increment("n", 3).append("seen", 1)
        logger.info("between")
        metadata.set("stage", "done").set("$.progress.percent", 100).del_("gone")

    await start_worker()
    handle = await meta_final.trigger(None, metadata={"gone": True, "kept": "x"})
    record = await engine.wait_for_final(handle.id, timeout=10)
    assert record.status == RunStatus.COMPLETED
    assert loads(record.metadata) == {
        "kept": "x",
        "stage": "done",
        "n": 5,
        "seen": [1],
        "progress": {"percent": 100},
    }
    events = await engine.run_event_records(handle.id)
    kinds = [(e.kind, e.message) for e in events if e.kind in ("log", "metadata", "status")]
    # The log line was made before the last operations were written: it comes first; the
    # metadata change lands before the final status, so a realtime reader that stops at the
    # final status has seen it.
    assert [k for k, _ in kinds][-3:] == ["log", "metadata", "status"]
    assert kinds[-1] == ("status", "COMPLETED")


async def test_setting_metadata_costs_no_store_write_of_its_own(engine, start_worker, monkeypatch):
    @task(id="meta-noop")
    async def meta_noop(payload: Any) -> int:
        return 1

    @task(id="meta-once")
    async def meta_once(payload: Any) -> int:
        metadata.set("progress", 1.0)
        return 1

    counts = _count_writes(engine, monkeypatch)
    await start_worker()
    writes: dict[str, int] = {}
    for shape in (meta_noop, meta_once):
        counts.clear()
        handle = await shape.trigger(None)
        record = await engine.wait_for_final(handle.id, timeout=10)
        assert record.status == RunStatus.COMPLETED
        writes[shape.id] = sum(counts.values())
        if shape is meta_once:
            assert loads(record.metadata) == {"progress": 1.0}
            assert counts["run_metadata_update"] == 0
    assert writes["meta-once"] == writes["meta-noop"] >= 1


async def test_final_metadata_applies_on_top_of_a_concurrent_write(engine, start_worker):
    """Someone else (the HTTP API, a child's ``metadata.parent``) wrote the run's metadata after
    the run last read it: the run's last operations apply on top of it, nothing is lost
    (PostgreSQL: the finish's compare-and-set misses and is retried with the row locked)."""

    @task(id="meta-raced")
    async def meta_raced(payload: Any, ctx: Any) -> None:
        metadata.set("own", 1).increment("n", 1)
        await metadata.flush()
        metadata.increment("n", 1).set("last", True)
        await apply_metadata_ops(
            engine, ctx.run.id, [MetadataOp("set", "external", 2), MetadataOp("increment", "n", 10)]
        )

    await start_worker()
    handle = await meta_raced.trigger(None)
    record = await engine.wait_for_final(handle.id, timeout=10)
    assert record.status == RunStatus.COMPLETED
    assert loads(record.metadata) == {"own": 1, "n": 12, "external": 2, "last": True}


async def test_final_metadata_of_many_runs_in_one_batch(engine, start_worker):
    @task(id="meta-many")
    async def meta_many(payload: int) -> None:
        metadata.set("i", payload).increment("n", payload)

    await start_worker(concurrency=20)
    handles = [await meta_many.trigger(i) for i in range(30)]
    for i, handle in enumerate(handles):
        record = await engine.wait_for_final(handle.id, timeout=10)
        assert record.status == RunStatus.COMPLETED
        assert loads(record.metadata) == {"i": i, "n": i}
