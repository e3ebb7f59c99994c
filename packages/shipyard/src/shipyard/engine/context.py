"""Building ``ctx`` for an attempt from the run's row, its task and the engine's settings."""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

from shipyard.config import Settings
from shipyard.engine.definitions import TaskDefinition
from shipyard.jsonutil import loads
from shipyard.machines import machine_preset
from shipyard.models.context import (
    AttemptInfo,
    BatchRef,
    Context,
    EnvironmentInfo,
    MachineInfo,
    OrganizationInfo,
    ProjectInfo,
    QueueRef,
    RunInfo,
    TaskInfo,
)
from shipyard.records import RunRecord

__all__ = ["build_context", "environment_info"]

_SLUG = re.compile(r"[^a-z0-9]+")


def _slug(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-") or "x"


@functools.lru_cache(maxsize=64)
def environment_info(environment: str) -> EnvironmentInfo:
    """``ctx.environment`` for an environment name (``preview/<branch>`` carries the branch).

    Cached: the parts of ``ctx`` that depend on settings alone are built once, not per attempt
    (they are frozen, so attempts can share them)."""
    kind, _, branch = environment.partition("/")
    return EnvironmentInfo(
        id=f"env_{_slug(environment)}",
        slug=environment,
        type=kind.upper(),
        branch_name=branch or None,
    )


@functools.lru_cache(maxsize=64)
def _project(project_root: Path) -> ProjectInfo:
    name = project_root.name or "project"
    digest = hashlib.sha256(str(project_root).encode()).hexdigest()[:20]
    return ProjectInfo(id=f"project_{digest}", ref=f"proj_{digest}", slug=_slug(name), name=name)


_ORGANIZATION = OrganizationInfo(id="org_local", slug="local", name="Local")


@functools.lru_cache(maxsize=64)
def _machine(name: str | None) -> MachineInfo:
    preset = machine_preset(name)
    return MachineInfo(
        name=preset.name, cpu=preset.cpu, memory=preset.memory, cents_per_ms=preset.cents_per_ms
    )


@functools.lru_cache(maxsize=4096)
def _queue(name: str) -> QueueRef:
    return QueueRef(id=f"queue_{_slug(name)}", name=name)


def build_context(
    settings: Settings,
    task: TaskDefinition,
    run: RunRecord,
    now: int,
    *,
    is_replay: bool = False,
) -> Context:
    """The ``ctx`` snapshot for this attempt (``is_replay``: resumed by replay)."""
    return Context(
        run=RunInfo(
            id=run.id,
            tags=tuple(loads(run.tags) or ()),  # loads skips the parser for "[]"
            is_test=bool(run.is_test),
            is_replay=is_replay,
            created_at=run.created_at,
            started_at=run.started_at,
            idempotency_key=run.idempotency_key,
            max_attempts=run.max_attempts,
            max_duration=run.max_duration_s or task.max_duration or settings.max_duration,
            parent_id=run.parent_run_id,
            root_id=run.root_run_id,
            depth=run.depth,
            batch_id=run.batch_id,
            version=run.version,
            priority=run.priority_ms / 1000,
        ),
        attempt=AttemptInfo(number=run.attempt_number, started_at=now),
        task=TaskInfo(id=task.id, file_path=task.file_path),
        environment=environment_info(settings.environment),
        machine=_machine(run.machine or task.machine),
        queue=_queue(run.queue),
        organization=_ORGANIZATION,
        project=_project(settings.project_root),
        batch=BatchRef(id=run.batch_id) if run.batch_id else None,
    )
