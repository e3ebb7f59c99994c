"""The garbage collector of a worker process, told once it has started what lives forever.

A worker imports the engine, its drivers and the project's tasks (hundreds of thousands of
objects that live as long as the process), then allocates and frees a few hundred objects per
run. CPython's cyclic collector walks every tracked object at each full collection: draining
20,000 no-op runs (``bench/burndown.py --backend postgres``, timed with ``gc.callbacks``), a
worker made 7 full collections of ~60 ms each, 0.41 s of its 2.2 s of CPU. After start, the
start-up heap is moved out of the collector's sight (``gc.freeze``: those objects are still
freed by reference counting, only never scanned for cycles again), which made each full
collection ~25 ms; and full collections come ten times less often (every 100 collections of
the middle generation instead of 10), which left none in that drain: 1.75 s of CPU in all.
Cyclic garbage is still collected, by the young collections and the rarer full ones.
"""

from __future__ import annotations

import gc

__all__ = ["FULL_COLLECTION_EVERY", "freeze_startup_heap"]

FULL_COLLECTION_EVERY = 100
"""Collections of the middle generation between two full collections (CPython: 10)."""


def freeze_startup_heap() -> None:
    """Collect once, exempt every object alive now from later collections, and make full
    collections rarer. For a process that has finished starting (``shipyard worker`` after
    registering): objects that live for the whole process are never garbage, so scanning them
    again finds nothing. Not for a test process, which starts and drops many workers (their
    objects would never be collected)."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
