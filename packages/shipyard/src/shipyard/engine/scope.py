"""The attempt being executed: its mutable state, found through a context variable.

``ctx`` (:class:`~shipyard.models.context.Context`) is the attempt's immutable snapshot. What
changes while the attempt runs — buffered metadata operations and log events, locals, the
durable-call sequence — lives in :class:`RunScope`, reachable from anywhere in task code through
:func:`current_scope`, including threads running ``def`` tasks (the variable is copied into
them).
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from shipyard.errors import NotInRunError

if TYPE_CHECKING:
    from shipyard.clock import Timer
    from shipyard.engine.definitions import TaskDefinition
    from shipyard.engine.engine import Engine
    from shipyard.metadata_ops import MetadataOp
    from shipyard.models.context import Context
    from shipyard.records import NewEvent
    from shipyard.store.params import WaitpointBlockParams, WaitpointBlockResult

__all__ = ["RunScope", "WaitDriver", "current_scope", "enter_scope", "exit_scope", "require_scope"]


class WaitDriver(Protocol):
    """What the worker executing an attempt provides to its durable calls."""

    worker_id: str

    def attempt_number(self) -> int:
        """The attempt being executed (fences the suspend)."""
        ...

    async def suspend(self, block: WaitpointBlockParams) -> WaitpointBlockResult:
        """Block the call (the store decides atomically whether the run suspends); a run
        that suspended no longer holds its slot from here on."""
        ...

    async def park(self) -> None:
        """Give the slot back and wait until the run is claimed again to continue."""
        ...

    def lost(self) -> BaseException:
        """The run is no longer this attempt's: the exception that ends the attempt quietly."""
        ...


@dataclass(eq=False)
class RunScope:
    """The mutable state of one attempt, reachable from anywhere in its task code."""

    ctx: Context
    engine: Engine
    task: TaskDefinition
    metadata: dict[str, Any]
    tags: list[str]
    # The stored metadata (JSON text) ``metadata`` is ``pending_metadata`` applied to: as claimed,
    # then as each flush wrote it. None: unknown (always re-read and re-applied).
    metadata_text: str | None = None
    pending_metadata: list[MetadataOp] = field(default_factory=list)
    pending_parent_metadata: list[MetadataOp] = field(default_factory=list)
    pending_root_metadata: list[MetadataOp] = field(default_factory=list)
    pending_events: list[NewEvent] = field(default_factory=list)
    locals: dict[object, Any] = field(default_factory=dict)
    span_stack: list[str] = field(default_factory=list)
    # The run's place in line, inherited by children it waits for.
    queued_at: int = 0
    # def tasks run in threads and mutate the pending lists while the worker flushes them.
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Held while metadata operations taken from the scope are being written, so the periodic
    # flush and the final write (with the finish) land in the order the task made them.
    flush_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Durable waits (engine/waits.py): the worker's parking hooks, the next call's sequence
    # number, whether a call is in progress (concurrent calls are an error) and the hooks'
    # arguments.
    waits: WaitDriver | None = None
    wait_seq: int = 0
    # The last sequence number that may have a recorded call (a replay's); None: unknown.
    # Set when a lookup finds none: later calls of this coroutine are new (no read).
    recorded_through: int | None = None
    in_durable_call: bool = False
    parallel_error: BaseException | None = None
    hook_args: dict[str, Any] = field(default_factory=dict)
    # max_duration: execution time left (seconds) and the timer counting it down; paused while
    # the run is parked at a durable wait, which does not count as execution.
    max_duration_left: float | None = None
    deadline: Timer | None = None
    deadline_started: float = 0.0
    restart_deadline: Callable[[], None] | None = None
    timed_out: bool = False

    def has_pending_metadata(self) -> bool:
        """Whether metadata operations wait to be written."""
        return bool(
            self.pending_metadata or self.pending_parent_metadata or self.pending_root_metadata
        )


_current_scope: contextvars.ContextVar[RunScope | None] = contextvars.ContextVar(
    "shipyard_run_scope", default=None
)


def current_scope() -> RunScope | None:
    """The attempt being executed in this context, or None outside a run."""
    return _current_scope.get()


def require_scope(what: str) -> RunScope:
    """The current attempt, or a :class:`NotInRunError` naming ``what`` was called."""
    scope = _current_scope.get()
    if scope is None:
        raise NotInRunError(f"{what} can only be called inside a running task.")
    return scope


def enter_scope(scope: RunScope | None) -> contextvars.Token[RunScope | None]:
    """Make ``scope`` current; pass the token to :func:`exit_scope`."""
    return _current_scope.set(scope)


def exit_scope(token: contextvars.Token[RunScope | None]) -> None:
    """Restore the scope that was current before :func:`enter_scope`."""
    _current_scope.reset(token)
