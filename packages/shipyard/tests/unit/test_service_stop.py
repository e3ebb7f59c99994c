"""``Service.stop`` ends a loop even when one cancellation is lost (Python 3.11's
``asyncio.wait_for`` drops a cancel that arrives as its inner await completes)."""

from __future__ import annotations

import asyncio

from shipyard.testing.eventually import eventually
from shipyard.worker.services import Service


class Stubborn(Service):
    """Swallows the first cancellation, as a racing ``wait_for`` would, then loops on."""

    name = "stubborn"

    async def run(self) -> None:
        swallowed = False
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed = True
            self.passes += 1


async def test_stop_ends_a_loop_that_lost_a_cancellation() -> None:
    service = Stubborn()
    service.start()
    await eventually(lambda: service.passes >= 2)
    stopping = asyncio.create_task(service.stop())
    await asyncio.wait({stopping}, timeout=5)
    assert stopping.done(), "stop() waits forever on a loop that lost one cancellation"
    assert not service.running
