"""``ctx`` — what a run knows about itself, passed to tasks and hooks.

A snapshot taken when the attempt starts; it does not change during the attempt. Field names are
Trigger.dev's in snake_case (``ctx.run.is_test``, ``ctx.machine.cents_per_ms`` …).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AttemptInfo",
    "BatchRef",
    "Context",
    "EnvironmentInfo",
    "MachineInfo",
    "OrganizationInfo",
    "ProjectInfo",
    "QueueRef",
    "RunInfo",
    "TaskInfo",
]


@dataclass(frozen=True, slots=True)
class RunInfo:
    """``ctx.run``: the run being executed (times are epoch milliseconds).

    ``priority`` is in seconds (as triggered); ``version`` is the task code version the run
    is locked to, None when workers register no version.
    """

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
    version: str | None = None
    priority: float = 0.0
    duration_ms: int = 0
    cost_in_cents: float = 0.0
    base_cost_in_cents: float = 0.0


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
    """``ctx.environment``: ``slug`` is e.g. ``development`` or ``preview/login``; ``type`` its
    upper-case kind (DEVELOPMENT, STAGING, PRODUCTION, PREVIEW); ``branch_name`` for previews."""

    id: str
    slug: str
    type: str
    branch_name: str | None = None


@dataclass(frozen=True, slots=True)
class OrganizationInfo:
    """``ctx.organization``: a self-hosted Shipyard has one organization."""

    id: str
    slug: str
    name: str


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    """``ctx.project``: the project (its folder name is the slug)."""

    id: str
    ref: str
    slug: str
    name: str


@dataclass(frozen=True, slots=True)
class MachineInfo:
    """``ctx.machine``: the preset the run asked for (informational on a local worker)."""

    name: str
    cpu: float
    memory: float
    cents_per_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class QueueRef:
    """``ctx.queue``: the queue the run was taken from."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class BatchRef:
    """``ctx.batch``: the batch the run belongs to."""

    id: str


@dataclass(frozen=True, slots=True)
class Context:
    """What a run knows about itself, passed as ``ctx`` to tasks and hooks."""

    run: RunInfo
    attempt: AttemptInfo
    task: TaskInfo
    environment: EnvironmentInfo
    machine: MachineInfo
    queue: QueueRef
    organization: OrganizationInfo
    project: ProjectInfo
    batch: BatchRef | None = None
