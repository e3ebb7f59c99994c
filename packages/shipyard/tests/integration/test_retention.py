"""Retention: a worker deletes runs finished longer ago than ``run_retention`` (30 days by
default), with their attempts and events, and keeps everything younger."""

from __future__ import annotations

import pytest

from shipyard import RunStatus, task
from shipyard.clock import FakeClock
from shipyard.config import load_settings
from shipyard.engine.engine import Engine
from shipyard.errors import RunNotFoundError

DAY = 24 * 3600


@pytest.mark.fake_clock
async def test_a_worker_deletes_runs_finished_before_the_retention(
    engine: Engine, clock: FakeClock, start_worker
) -> None:
    @task(id="kept-a-while")
    async def kept(payload):
        return payload

    worker = await start_worker()
    old = await kept.trigger({"n": 1})
    assert (await engine.wait_for_final(old.id, timeout=20)).status == RunStatus.COMPLETED
    await clock.advance(20 * DAY)
    young = await kept.trigger({"n": 2})
    assert (await engine.wait_for_final(young.id, timeout=20)).status == RunStatus.COMPLETED
    # Day 20: both are younger than 30 days.
    assert await worker.purge() == 0
    await clock.advance(11 * DAY)
    # Day 31: the first finished 31 days ago, the second 11.
    assert await worker.purge() == 1
    with pytest.raises(RunNotFoundError):
        await engine.get_run(old.id)
    assert (await engine.get_run(young.id)).status == RunStatus.COMPLETED


@pytest.mark.fake_clock
async def test_retention_zero_keeps_runs_forever(
    engine: Engine, clock: FakeClock, start_worker
) -> None:
    @task(id="kept-forever")
    async def forever(payload):
        return payload

    await start_worker()
    handle = await forever.trigger({})
    await engine.wait_for_final(handle.id, timeout=20)
    await clock.advance(400 * DAY)
    keeper = Engine(engine.settings.model_copy(update={"run_retention": 0}), clock=clock)
    try:
        await keeper.start()
        assert (await keeper.purge_finished()).runs == 0
    finally:
        await keeper.close()
    assert (await engine.get_run(handle.id)).status == RunStatus.COMPLETED


def test_retention_reads_durations_and_seconds(tmp_path, monkeypatch) -> None:
    assert load_settings(project_root=tmp_path).run_retention_ms() == 30 * DAY * 1000
    monkeypatch.setenv("SHIPYARD_RUN_RETENTION", "7d")
    assert load_settings(project_root=tmp_path).run_retention_ms() == 7 * DAY * 1000
    monkeypatch.setenv("SHIPYARD_RUN_RETENTION", "3600")
    assert load_settings(project_root=tmp_path).run_retention_ms() == 3_600_000
    monkeypatch.setenv("SHIPYARD_RUN_RETENTION", "0")
    assert load_settings(project_root=tmp_path).run_retention_ms() is None
