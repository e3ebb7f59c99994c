"""The attempts a worker holds: each run it executes or keeps parked at a durable wait
(:class:`Active`), and the worker's side of that attempt's durable calls (:class:`Driver`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shipyard.engine.claims import WaitpointBlockParams, WaitpointBlockResult
from shipyard.engine.definitions import TaskDefinition
from shipyard.engine.scope import RunScope
from shipyard.records import RunRecord
from shipyard.worker.executor import AttemptControl, pause_deadline, resume_deadline

if TYPE_CHECKING:
    from shipyard.worker.worker import Worker

__all__ = ["Active", "Driver"]


@dataclass(eq=False)
class Active:
    """A run this worker executes, or keeps parked at a durable wait."""

    run: RunRecord
    task: TaskDefinition
    scope: RunScope
    control: AttemptControl = field(default_factory=AttemptControl)
    handle: asyncio.Task[None] | None = None
    # Set while the attempt is parked at a durable wait: resolved with the run when a claim
    # takes it back.
    resume: asyncio.Future[RunRecord] | None = None
    parked_at: float = 0.0
    # A durable call of this attempt is being written: its run may already be WAITING, and a
    # claim may take it back before the worker records the suspension (see Worker.take).
    suspending: bool = False

    def release(self) -> None:
        """Drop the references that make an ended attempt a cycle (active → scope → its
        driver → active; active → task → its context → scope), so reference counting frees
        its ~20 objects when the worker lets go of it. Left to the cyclic collector, they
        outlived the young generation and were freed by middle-generation collections:
        ~7 µs of CPU per run of a PostgreSQL drain (``gc.callbacks``)."""
        self.scope.waits = None
        self.handle = None


class Driver:
    """The worker's side of an attempt's durable calls (``RunScope.waits``)."""

    def __init__(self, worker: Worker, active: Active) -> None:
        self.worker = worker
        self.active = active
        self.worker_id = worker.id

    def attempt_number(self) -> int:
        return self.active.run.attempt_number

    async def suspend(self, block: WaitpointBlockParams) -> WaitpointBlockResult:
        active = self.active
        active.suspending = True
        # max_duration counts execution, not waiting: it stops when the call is sent, for the
        # run may be WAITING, and its wait over, before the answer comes back (a deadline that
        # fired then cancelled a suspended attempt, and its run was replayed).
        pause_deadline(active.scope)
        try:
            result = await self.worker._suspends.submit((active, block))
        except BaseException:
            resume_deadline(active.scope)
            raise
        finally:
            active.suspending = False
        if not result.suspended:
            resume_deadline(active.scope)
        return result

    async def park(self) -> None:
        await self.worker._park(self.active)

    def lost(self) -> BaseException:
        self.active.control.reason = "lost"
        return asyncio.CancelledError()
