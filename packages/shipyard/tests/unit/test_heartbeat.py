"""The heartbeat thread keeps a fixed rate from each beat's start, and says when it is slow.

A lease runs from the moment its beat read the clock; a beat that waited on a slow commit
must not also delay the next beat by a whole interval, or the leases lapse and a neighbour's
reaper takes over runs this live worker is still executing.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest

from shipyard.worker.heartbeat import Heartbeat, next_wait


def test_the_next_beat_is_one_interval_after_the_last_one_started() -> None:
    assert next_wait(started=10.0, now=10.1, interval=0.5) == pytest.approx(0.4)
    assert next_wait(started=10.0, now=10.5, interval=0.5) == 0.0
    # The last beat took longer than an interval: the next one goes at once.
    assert next_wait(started=10.0, now=11.2, interval=0.5) == 0.0


def test_a_slow_beat_is_followed_at_once_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    # Whole seconds of margin: the next beat must start within an interval of the slow one,
    # and the quick one must not count as slow, whatever a loaded host does to this thread
    # (an interval of 0.5 s was within reach of a stall of a few hundred ms).
    interval, slow_beat = 1.0, 1.2
    starts: list[float] = []
    ends: list[float] = []
    two_beats = threading.Event()

    def beat(at_ms: int | None) -> int:
        starts.append(time.monotonic())
        if len(starts) == 1:
            time.sleep(slow_beat)  # a commit stuck behind a checkpoint
        ends.append(time.monotonic())
        if len(starts) == 2:
            two_beats.set()
        return 0

    heartbeat = Heartbeat(beat, interval, "test", lease=2 * interval)  # slow past 1 s
    with caplog.at_level(logging.WARNING, logger="shipyard.worker"):
        heartbeat.start()
        try:
            assert two_beats.wait(10)
        finally:
            heartbeat.stop()
    # Waiting a whole interval after the slow beat ended (the old schedule) leaves a gap of at
    # least `interval`; a fixed rate starts the next beat as soon as the slow one returns.
    assert starts[1] - ends[0] < interval
    slow = [r.getMessage() for r in caplog.records if "heartbeat took" in r.getMessage()]
    assert len(slow) == 1, caplog.text
    assert "leases last 2000 ms" in slow[0]
