"""The run object over HTTP: retrieve, list, and the small bodies of cancel, replay,
reschedule and tags.

``GET /api/v3/runs/{runId}`` answers :class:`RetrieveRunResponse`, which is Trigger.dev's
``RetrieveRunResponse`` (``@trigger.dev/core`` ``v3/schemas/api``) plus ``attempts``, a Shipyard
extension the official client ignores. ``GET /api/v1/runs`` answers :class:`ListRunsResponse`.

Optional fields are left out rather than sent as ``null`` (see :mod:`shipyard.schemas.wire`);
dates are ``Date.toISOString()`` strings; ``ttl`` is a duration string.

:meth:`RetrieveRunResponse.from_run` and :meth:`ListRunItem.from_run` build the bodies from any
object shaped like Shipyard's ``Run`` (:class:`RunLike`), so this module needs no engine.

Example::

    body = RetrieveRunResponse.from_run(run, parent=parent_run, children=child_runs)
    return JSONResponse(body.to_wire())
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Protocol

from pydantic import Field

from shipyard.schemas.payloads import decode_payload
from shipyard.schemas.tasks import IdempotencyKeyText, MachinePreset, Tags
from shipyard.schemas.wire import StrictFloat, StrictInt, WireDateTime, WireModel

__all__ = [
    "FAILED_STATUSES",
    "FINAL_STATUSES",
    "RUN_STATUSES",
    "AddTagsRequest",
    "AddTagsResponse",
    "AttemptLike",
    "CanceledRunResponse",
    "CursorPagination",
    "ListRunItem",
    "ListRunsResponse",
    "RelatedRun",
    "RelatedRuns",
    "ReplayRunRequest",
    "ReplayRunResponse",
    "RescheduleRunRequest",
    "RetrieveRunResponse",
    "RunAttempt",
    "RunEnvironment",
    "RunErrorLike",
    "RunLike",
    "RunSchedule",
    "RunStatusName",
    "ScheduleGenerator",
    "SerializedError",
    "TriggerFunction",
    "duration_text",
]

RunStatusName = Literal[
    "DELAYED",
    "PENDING_VERSION",
    "QUEUED",
    "DEQUEUED",
    "EXECUTING",
    "WAITING",
    "COMPLETED",
    "CANCELED",
    "FAILED",
    "CRASHED",
    "SYSTEM_FAILURE",
    "EXPIRED",
    "TIMED_OUT",
]
RUN_STATUSES: tuple[str, ...] = (
    "DELAYED",
    "PENDING_VERSION",
    "QUEUED",
    "DEQUEUED",
    "EXECUTING",
    "WAITING",
    "COMPLETED",
    "CANCELED",
    "FAILED",
    "CRASHED",
    "SYSTEM_FAILURE",
    "EXPIRED",
    "TIMED_OUT",
)
"""The 13 public run statuses of Trigger.dev v4, in lifecycle order."""

FAILED_STATUSES = frozenset({"FAILED", "CRASHED", "SYSTEM_FAILURE", "EXPIRED", "TIMED_OUT"})
FINAL_STATUSES = FAILED_STATUSES | {"COMPLETED", "CANCELED"}
_QUEUED_STATUSES = frozenset({"DELAYED", "PENDING_VERSION", "QUEUED"})
_EXECUTING_STATUSES = frozenset({"DEQUEUED", "EXECUTING"})

TriggerFunction = Literal["trigger", "triggerAndWait", "batchTrigger", "batchTriggerAndWait"]
AttemptStatus = Literal["PENDING", "EXECUTING", "PAUSED", "COMPLETED", "FAILED", "CANCELED"]

_UNITS_MS = (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000))


def duration_text(ms: int) -> str:
    """A duration in milliseconds as a duration string (whole seconds, largest units first).

    Example::

        >>> duration_text(5_400_000), duration_text(600_000), duration_text(1_400)
        ('1h30m', '10m', '1s')
    """
    remaining = max(1, round(ms / 1000)) * 1000 if ms > 0 else 0
    if remaining == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in _UNITS_MS:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


class RunErrorLike(Protocol):
    """What :meth:`SerializedError.from_error` reads from an error (Shipyard's
    ``TaskRunError``)."""

    @property
    def name(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def stack(self) -> str: ...


class AttemptLike(Protocol):
    """What :class:`RunAttempt` is built from (Shipyard's ``Attempt``)."""

    @property
    def number(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def started_at(self) -> datetime.datetime | None: ...
    @property
    def finished_at(self) -> datetime.datetime | None: ...
    @property
    def error(self) -> RunErrorLike | None: ...


class RunLike(Protocol):
    """The fields of Shipyard's ``Run`` the wire bodies are built from."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def task_identifier(self) -> str: ...
    @property
    def idempotency_key(self) -> str | None: ...
    @property
    def version(self) -> str | None: ...
    @property
    def tags(self) -> Sequence[str]: ...
    @property
    def metadata(self) -> Mapping[str, Any]: ...
    @property
    def is_test(self) -> bool: ...
    @property
    def created_at(self) -> datetime.datetime: ...
    @property
    def updated_at(self) -> datetime.datetime: ...
    @property
    def started_at(self) -> datetime.datetime | None: ...
    @property
    def finished_at(self) -> datetime.datetime | None: ...
    @property
    def delayed_until(self) -> datetime.datetime | None: ...
    @property
    def ttl(self) -> int | None: ...
    @property
    def expired_at(self) -> datetime.datetime | None: ...
    @property
    def cost_in_cents(self) -> float: ...
    @property
    def base_cost_in_cents(self) -> float: ...
    @property
    def duration_ms(self) -> int: ...
    @property
    def depth(self) -> int: ...
    @property
    def trigger_function(self) -> str: ...
    @property
    def batch_id(self) -> str | None: ...
    @property
    def payload(self) -> Any: ...
    @property
    def output(self) -> Any: ...
    @property
    def error(self) -> RunErrorLike | None: ...
    @property
    def attempt_count(self) -> int: ...
    @property
    def attempts(self) -> Sequence[AttemptLike]: ...


class SerializedError(WireModel):
    """A run's error: ``message`` always; ``name`` and ``stackTrace`` when known."""

    message: str
    name: str | None = None
    stack_trace: str | None = None

    @classmethod
    def from_error(cls, error: RunErrorLike) -> SerializedError:
        """From Shipyard's ``TaskRunError`` (``stack`` becomes ``stackTrace``)."""
        return cls(message=error.message, name=error.name or None, stack_trace=error.stack or None)


class ScheduleGenerator(WireModel):
    """How a scheduled run's times are generated."""

    type: Literal["CRON"] = "CRON"
    expression: str
    description: str


class RunSchedule(WireModel):
    """The schedule that triggered a run."""

    id: str
    external_id: str | None = None
    deduplication_key: str | None = None
    generator: ScheduleGenerator


def _flags(status: str) -> dict[str, bool]:
    return {
        "is_queued": status in _QUEUED_STATUSES,
        "is_executing": status in _EXECUTING_STATUSES,
        "is_waiting": status == "WAITING",
        "is_completed": status in FINAL_STATUSES,
        "is_success": status == "COMPLETED",
        "is_failed": status in FAILED_STATUSES,
        "is_cancelled": status == "CANCELED",
    }


def _common_fields(run: RunLike) -> dict[str, Any]:
    status = str(run.status)
    return {
        "id": run.id,
        "status": status,
        "task_identifier": run.task_identifier,
        "idempotency_key": run.idempotency_key,
        "version": run.version,
        **_flags(status),
        "is_test": bool(run.is_test),
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "delayed_until": run.delayed_until,
        "ttl": duration_text(run.ttl) if run.ttl else None,
        "expired_at": run.expired_at,
        "tags": list(run.tags),
        "cost_in_cents": run.cost_in_cents,
        "base_cost_in_cents": run.base_cost_in_cents,
        "duration_ms": run.duration_ms,
        "metadata": dict(run.metadata) if run.metadata else None,
    }


class _RunFields(WireModel):
    """``CommonRunFields`` of ``@trigger.dev/core``: what every run body carries."""

    id: str
    status: RunStatusName
    task_identifier: str
    idempotency_key: str | None = None
    version: str | None = None
    is_queued: bool
    is_executing: bool
    is_waiting: bool
    is_completed: bool
    is_success: bool
    is_failed: bool
    is_cancelled: bool
    is_test: bool = False
    created_at: WireDateTime
    updated_at: WireDateTime
    started_at: WireDateTime | None = None
    finished_at: WireDateTime | None = None
    delayed_until: WireDateTime | None = None
    ttl: str | None = None
    expired_at: WireDateTime | None = None
    tags: list[str] = Field(default_factory=list)
    cost_in_cents: float = 0
    base_cost_in_cents: float = 0
    duration_ms: float = 0
    metadata: dict[str, Any] | None = None
    task_kind: str | None = None
    region: str | None = None


class RelatedRun(_RunFields):
    """A root, parent or child run inside :class:`RelatedRuns`."""

    depth: int = 0
    trigger_function: TriggerFunction = "trigger"
    batch_id: str | None = None

    @classmethod
    def from_run(cls, run: RunLike) -> RelatedRun:
        """The related-run body of ``run``."""
        return cls(
            **_common_fields(run),
            depth=run.depth,
            trigger_function=run.trigger_function,  # type: ignore[arg-type]
            batch_id=run.batch_id,
        )


class RelatedRuns(WireModel):
    """The run's root, parent and children (each left out when there is none)."""

    root: RelatedRun | None = None
    parent: RelatedRun | None = None
    children: list[RelatedRun] | None = None


class RunAttempt(WireModel):
    """One attempt of a run (a Shipyard extension; Trigger.dev's client ignores it)."""

    number: int
    status: str
    started_at: WireDateTime | None = None
    finished_at: WireDateTime | None = None
    error: SerializedError | None = None

    @classmethod
    def from_attempt(cls, attempt: AttemptLike) -> RunAttempt:
        """From Shipyard's ``Attempt``."""
        return cls(
            number=attempt.number,
            status=attempt.status,
            started_at=attempt.started_at,
            finished_at=attempt.finished_at,
            error=SerializedError.from_error(attempt.error) if attempt.error else None,
        )


class RetrieveRunResponse(RelatedRun):
    """Response of ``GET /api/v3/runs/{runId}`` (and of reschedule): the full run."""

    payload: Any = None
    payload_presigned_url: str | None = None
    output: Any = None
    output_presigned_url: str | None = None
    error: SerializedError | None = None
    schedule: RunSchedule | None = None
    related_runs: RelatedRuns = Field(default_factory=RelatedRuns)
    attempt_count: int = 0
    attempts: list[RunAttempt] | None = None

    @classmethod
    def from_run(
        cls,
        run: RunLike,
        *,
        root: RunLike | None = None,
        parent: RunLike | None = None,
        children: Sequence[RunLike] | None = None,
        schedule: RunSchedule | None = None,
    ) -> RetrieveRunResponse:
        """The retrieve body of ``run``; pass its root, parent and children when known.

        A root run is its own root in Trigger.dev's answer only when it has children, so
        ``root`` is left out unless given.
        """
        return cls(
            **_common_fields(run),
            depth=run.depth,
            trigger_function=run.trigger_function,  # type: ignore[arg-type]
            batch_id=run.batch_id,
            payload=run.payload,
            output=run.output,
            error=SerializedError.from_error(run.error) if run.error else None,
            schedule=schedule,
            related_runs=RelatedRuns(
                root=RelatedRun.from_run(root) if root is not None else None,
                parent=RelatedRun.from_run(parent) if parent is not None else None,
                children=[RelatedRun.from_run(c) for c in children] if children else None,
            ),
            attempt_count=run.attempt_count,
            attempts=[RunAttempt.from_attempt(a) for a in run.attempts],
        )


class RunEnvironment(WireModel):
    """The environment a listed run belongs to."""

    id: str
    name: str
    user: str | None = None


class ListRunItem(_RunFields):
    """One run of ``GET /api/v1/runs`` (``ListRunResponseItem``)."""

    env: RunEnvironment

    @classmethod
    def from_run(cls, run: RunLike, env: RunEnvironment) -> ListRunItem:
        """The list body of ``run`` in environment ``env``."""
        return cls(**_common_fields(run), env=env)


class CursorPagination(WireModel):
    """Cursors for the next and previous page (each left out at the end)."""

    next: str | None = None
    previous: str | None = None


class ListRunsResponse(WireModel):
    """Response of ``GET /api/v1/runs``: one page of runs, newest first."""

    data: list[ListRunItem]
    pagination: CursorPagination = Field(default_factory=CursorPagination)


class CanceledRunResponse(WireModel):
    """Response of ``POST /api/v2/runs/{id}/cancel``."""

    id: str


class ReplayRunRequest(WireModel):
    """Optional body of ``POST /api/v1/runs/{id}/replay``: overrides for the new run.

    The SDK sends no body for a plain ``runs.replay(id)``; with a payload override it sends
    ``payload`` as SuperJSON text and ``payloadType: "application/super+json"``.
    """

    payload: Any = None
    payload_type: Literal["application/json", "application/super+json"] | None = None
    metadata: dict[str, Any] | None = None
    tags: Tags | None = None
    queue: str | None = None
    concurrency_key: str | None = None
    machine: MachinePreset | None = None
    version: str | None = None
    region: str | None = None
    delay: str | None = None
    ttl: str | Annotated[StrictInt, Field(ge=0)] | None = None
    idempotency_key: IdempotencyKeyText | None = None
    idempotency_key_ttl: str | None = Field(
        default=None, validation_alias="idempotencyKeyTTL", serialization_alias="idempotencyKeyTTL"
    )
    max_attempts: StrictInt | None = Field(default=None, ge=1)
    max_duration: StrictFloat | None = Field(default=None, ge=0)
    priority: StrictFloat | None = None

    def decoded_payload(self) -> Any:
        """The payload override as a Python value (SuperJSON text decoded)."""
        return decode_payload(self.payload, self.payload_type)


class ReplayRunResponse(WireModel):
    """Response of replay: the new run's id."""

    id: str


class RescheduleRunRequest(WireModel):
    """Body of ``POST /api/v1/runs/{id}/reschedule`` (DELAYED runs only)."""

    delay: str = Field(description='A duration ("10m") or an ISO-8601 date-time.')


class AddTagsRequest(WireModel):
    """Body of ``POST /api/v1/runs/{id}/tags``: one tag or a list."""

    tags: Tags


class AddTagsResponse(WireModel):
    """Response of adding tags (Trigger.dev answers a sentence)."""

    message: str
