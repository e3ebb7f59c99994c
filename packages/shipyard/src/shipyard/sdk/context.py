"""``ctx`` — what a run knows about itself — and the scope of the attempt being executed.

``ctx`` is a snapshot taken when the attempt starts and does not change. The attempt's
mutable state (buffered metadata operations, log events, locals) lives in :class:`RunScope`,
found through a context variable so that ``metadata.set`` or ``logger.info`` work anywhere in
task code, including in threads running ``def`` tasks (the variable is copied into them).
"""

from __future__ import annotations

import contextvars
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from shipyard.errors import NotInRunError

if TYPE_CHECKING:
    from shipyard.engine.engine import Engine
    from shipyard.metadata_ops import MetadataOp
    from shipyard.records import NewEvent

MACHINES: dict[str, tuple[float, float]] = {
    "micro": (0.25, 0.25),
    "small-1x": (0.5, 0.5),
    "small-2x": (1, 1),
    "medium-1x": (1, 2),
    "medium-2x": (2, 4),
    "large-1x": (4, 8),
    "large-2x": (8, 16),
}
DEFAULT_MACHINE = "small-1x"


@dataclass(frozen=True, slots=True)
class RunInfo:
    """``ctx.run``: the run being executed."""

    id: str
    tags: tuple[str, ...]
    is_test: bool
    is_replay: bool
    created_at: int
    started_at: int | None
    idempotency_key: str | None
    max_attempts: int | None
    max_duration: int | None
    parent_id: str | None
    root_id: str | None
    depth: int
    batch_id: str | None


@dataclass(frozen=True, slots=True)
class AttemptInfo:
    """``ctx.attempt``: this execution of the run (``number`` starts at 1)."""

    number: int
    started_at: int


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """``ctx.task``: the task's id and the file that defines it."""

    id: str
    file_path: str


@dataclass(frozen=True, slots=True)
class EnvironmentInfo:
    """``ctx.environment``: slug is e.g. ``development``; type its upper-case kind."""

    slug: str
    type: str


@dataclass(frozen=True, slots=True)
class MachineInfo:
    """``ctx.machine``: the preset the run asked for (informational on a local worker)."""

    name: str
    cpu: float
    memory: float


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """``ctx.queue``: the queue the run was taken from."""

    name: str


@dataclass(frozen=True, slots=True)
class Context:
    """What a run knows about itself, passed as ``ctx`` to tasks and hooks."""

    run: RunInfo
    attempt: AttemptInfo
    task: TaskInfo
    environment: EnvironmentInfo
    machine: MachineInfo
    queue: QueueInfo


def machine_info(name: str | None) -> MachineInfo:
    """The preset's CPU and memory; unknown names fall back to the default preset."""
    preset = name if name in MACHINES else DEFAULT_MACHINE
    cpu, memory = MACHINES[preset]
    return MachineInfo(name=preset, cpu=cpu, memory=memory)


@dataclass(eq=False)
class RunScope:
    """The mutable state of one attempt, reachable from anywhere in its task code."""

    ctx: Context
    engine: Engine
    metadata: dict[str, Any]
    tags: list[str]
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
    # Durable waits (engine/waits.py): the worker's parking hooks, the next call's sequence
    # number, whether a call is in progress (concurrent calls are an error), the hooks'
    # arguments and the attempt's max_duration timer (paused while the run waits).
    waits: WaitDriver | None = None
    wait_seq: int = 0
    in_durable_call: bool = False
    parallel_error: BaseException | None = None
    hook_args: dict[str, Any] = field(default_factory=dict)
    deadline: Any = None


class WaitDriver(Protocol):
    """What the worker executing an attempt provides to its durable calls."""

    worker_id: str

    def attempt_number(self) -> int:
        """The attempt being executed (fences the suspend)."""
        ...

    async def park(self) -> None:
        """Give the slot back and wait until the run is claimed again to continue."""
        ...

    def lost(self) -> BaseException:
        """The run is no longer this attempt's: the exception that ends the attempt quietly."""
        ...


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
