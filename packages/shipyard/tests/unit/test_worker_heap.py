"""A started worker process exempts its start-up heap from the cyclic collector."""

from __future__ import annotations

import gc
import importlib
import inspect

from shipyard.worker.heap import FULL_COLLECTION_EVERY, freeze_startup_heap


def test_freeze_moves_the_live_heap_out_of_the_collectors_sight() -> None:
    survivor = [{"lives": "as long as the process"}]
    thresholds = gc.get_threshold()
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (*thresholds[:2], FULL_COLLECTION_EVERY)
        # Objects made afterwards are collected as before.
        assert gc.is_tracked(survivor)
        gc.collect()
    finally:
        gc.unfreeze()  # this test process starts many workers: give its heap back
        gc.set_threshold(*thresholds)


def test_the_worker_command_freezes_after_starting() -> None:
    cli_main = importlib.import_module("shipyard.cli.main")  # the package's main() hides it
    source = inspect.getsource(cli_main.run_worker)
    assert source.index("await worker.start()") < source.index("freeze_startup_heap()")
