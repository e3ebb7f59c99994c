"""The rows and params of the schedule operations (``procedures/schedules.py``).

A schedule row holds what the engine decided: the store never parses a cron expression. The
engine computes ``next_run`` (the next nominal tick) and ``next_run_at`` (when it fires: the
tick plus the schedule's window offset) and passes them in; the store keeps them and fires a
tick by a compare-and-set on ``next_run`` in the transaction that creates the tick's run, so
any number of schedulers fire each tick once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shipyard.records import RunRecord
from shipyard.store.params import RunInsertParams

__all__ = [
    "DECLARATIVE",
    "IMPERATIVE",
    "ScheduleDeleteParams",
    "ScheduleDueParams",
    "ScheduleFireParams",
    "ScheduleFireResult",
    "ScheduleGetParams",
    "ScheduleListParams",
    "SchedulePage",
    "ScheduleRecord",
    "ScheduleSetActiveParams",
    "ScheduleSyncParams",
    "ScheduleSyncResult",
    "ScheduleUpdateParams",
    "ScheduleUpsertParams",
]

DECLARATIVE = "DECLARATIVE"
IMPERATIVE = "IMPERATIVE"


@dataclass(slots=True)
class ScheduleRecord:
    """One row of ``schedules`` (column order). Times are epoch ms; ``environments`` is a
    JSON array or None; ``active`` is 0 or 1."""

    id: str
    environment: str
    type: str
    task_id: str
    cron: str
    timezone: str
    fire_window: str | None
    deduplication_key: str | None
    external_id: str | None
    environments: str | None
    active: int
    next_run: int | None
    next_run_at: int | None
    last_run: int | None
    created_at: int
    updated_at: int


@dataclass(slots=True)
class ScheduleUpsertParams:
    """Create ``schedule`` or update the one holding its key: the deduplication key (an
    IMPERATIVE schedule, across environments; the row moves to ``schedule.environment``) or its
    environment and task (a DECLARATIVE one). An update keeps the row's id, ``active`` and
    ``last_run``, and keeps its ``next_run``/``next_run_at`` when cron, time zone and window
    are unchanged (else takes the given ones). ``schedule.updated_at`` is the time now."""

    schedule: ScheduleRecord


@dataclass(slots=True)
class ScheduleGetParams:
    """One schedule of an environment by id."""

    environment: str
    schedule_id: str


@dataclass(slots=True)
class ScheduleListParams:
    """Schedules of an environment, oldest first, one page (``offset``, ``limit``)."""

    environment: str
    limit: int = 20
    offset: int = 0
    type: str | None = None
    task_id: str | None = None


@dataclass(slots=True)
class SchedulePage:
    """One page of schedules and how many match in all."""

    items: list[ScheduleRecord] = field(default_factory=list)
    total: int = 0


@dataclass(slots=True)
class ScheduleUpdateParams:
    """Replace an IMPERATIVE schedule's definition by id (None: no such schedule).
    ``next_run``/``next_run_at`` are taken only when cron, time zone or window change."""

    environment: str
    schedule_id: str
    task_id: str
    cron: str
    timezone: str
    fire_window: str | None
    external_id: str | None
    deduplication_key: str | None
    next_run: int
    next_run_at: int
    now: int


@dataclass(slots=True)
class ScheduleSetActiveParams:
    """Activate (with the next tick from now) or deactivate a schedule."""

    environment: str
    schedule_id: str
    active: bool
    now: int
    next_run: int | None = None
    next_run_at: int | None = None


@dataclass(slots=True)
class ScheduleDeleteParams:
    """Delete a schedule of the environment (only an IMPERATIVE one when ``imperative_only``)."""

    environment: str
    schedule_id: str
    imperative_only: bool = True


@dataclass(slots=True)
class ScheduleSyncParams:
    """Make the environment's DECLARATIVE schedules exactly ``schedules`` (upserted by task;
    every other DECLARATIVE schedule of the environment is deleted), in one transaction."""

    environment: str
    schedules: Sequence[ScheduleRecord]
    now: int


@dataclass(slots=True)
class ScheduleSyncResult:
    """The task ids whose schedule a sync created, updated (its definition changed) and
    deleted."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ScheduleDueParams:
    """Active schedules whose ``next_run_at`` is at or before ``now``, soonest first."""

    environment: str
    now: int
    limit: int = 100


@dataclass(slots=True)
class ScheduleFireParams:
    """Fire one tick: if the schedule is active and its ``next_run`` is still ``expected``,
    move it to ``next_run``/``next_run_at``, record ``last_run`` (when a run is created) and
    create ``run`` (None: skip the tick), all in one transaction."""

    environment: str
    schedule_id: str
    expected: int
    next_run: int
    next_run_at: int
    now: int
    last_run: int | None = None
    run: RunInsertParams | None = None


@dataclass(slots=True)
class ScheduleFireResult:
    """``claimed``: this call moved the schedule on (False: another scheduler did, or it was
    deactivated or changed meanwhile). ``run``: the run of the tick (an existing one when its
    idempotency key was held), ``cached`` whether it already existed."""

    claimed: bool
    run: RunRecord | None = None
    cached: bool = False
