"""A batch whose items share their task and options is inserted from one template run
(``run_insert_bulk``); any other batch run by run (``run_insert_many``). Both make the same
runs."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from shipyard import batch, task
from shipyard.engine.engine import Engine
from shipyard.records import RunRecord
from shipyard.store.params import RunGetParams

SHARED: dict[str, Any] = {
    "metadata": {"source": "bench"},
    "ttl": "1h",
    "priority": 2,
    "max_attempts": 5,
    "machine": "small-2x",
    "max_duration": 60,
    "concurrency_key": "tenant-1",
}


def _spy(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The store insert each batch used, in order."""
    used: list[str] = []
    store: Any = engine.store
    for name in ("run_insert_bulk", "run_insert_many"):
        original = getattr(store, name)

        async def call(params: Any, _original: Any = original, _name: str = name) -> Any:
            used.append(_name)
            return await _original(params)

        monkeypatch.setattr(store, name, call)
    return used


async def _record(engine: Engine, run_id: str) -> RunRecord:
    found = await engine.store.run_get(RunGetParams(engine.environment, run_id))
    assert found is not None
    return found


@pytest.mark.fake_clock  # both batches at the same time: every time column compares
async def test_a_uniform_batch_makes_the_runs_a_batch_run_by_run_makes(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    @task(id="uniform")
    async def uniform(payload: Any) -> Any:
        return payload

    used = _spy(engine, monkeypatch)
    payloads = [{"i": 0}, None, [1, "two"], 'é "quoted"', 5]
    bulk = await uniform.batch_trigger(payloads, **SHARED)
    # An item with options of its own (the same value as the batch's): run by run.
    items: list[Any] = [{"payload": payloads[0], "options": {"priority": 2}}, *payloads[1:]]
    one_by_one = await uniform.batch_trigger(items, **SHARED)
    assert used == ["run_insert_bulk", "run_insert_many"]

    assert bulk.run_count == len(payloads) and len(bulk.runs) == len(payloads)
    assert list(bulk.runs) == sorted(bulk.runs) < sorted(one_by_one.runs)
    info = await batch.retrieve(bulk.batch_id)
    assert info.runs == bulk.runs
    for i, (a, b) in enumerate(zip(bulk.runs, one_by_one.runs, strict=True)):
        made, reference = await _record(engine, a), await _record(engine, b)
        assert (made.batch_id, made.batch_index) == (bulk.batch_id, i)
        for f in fields(RunRecord):
            if f.name not in ("id", "batch_id"):
                assert getattr(made, f.name) == getattr(reference, f.name), f.name


async def test_batches_with_keys_tags_or_several_tasks_go_run_by_run(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    @task(id="first")
    async def first(payload: Any) -> Any:
        return payload

    @task(id="second")
    async def second(payload: Any) -> Any:
        return payload

    used = _spy(engine, monkeypatch)
    await first.batch_trigger([1, 2], tags=["t"])
    await first.batch_trigger([1, 2], idempotency_key="k")
    await first.batch_trigger([1, 2], debounce={"key": "d", "delay": "5s"})
    await engine.batch_trigger(
        [{"task": "first", "payload": 1}, {"task": "second", "payload": 2}], {}
    )
    await first.batch_trigger([1, 2])
    assert used == ["run_insert_many"] * 4 + ["run_insert_bulk"]
