"""Tasks and versions as workers registered them (``shipyard tasks list``, ``shipyard versions
list``, the HTTP API, the MCP server)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

__all__ = ["RegisteredTask", "RegisteredVersion"]


@dataclass(frozen=True, slots=True)
class RegisteredTask:
    """A task some worker of the environment can execute.

    ``retry`` holds the effective retry options; ``payload_schema`` the JSON Schema of a
    ``schema_task``'s model (``{}`` when the payload is untyped); ``ttl_ms`` the task's TTL.
    """

    id: str
    file_path: str
    queue: str
    max_attempts: int
    retry: dict[str, Any]
    max_duration: int | None
    machine: str | None
    description: str | None
    payload_schema: dict[str, Any]
    ttl_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RegisteredVersion:
    """A version of the task code some worker of the environment registered.

    ``version`` is ``SHIPYARD_VERSION`` or a content hash of the task files; ``task_ids`` the
    tasks it has; ``live_workers`` how many of its workers run now (a run waiting for one of
    its tasks starts only while one does); ``registered_at``/``updated_at`` its first and
    latest registration; ``last_heartbeat_at`` its workers' latest heartbeat.
    """

    version: str
    task_ids: tuple[str, ...]
    live_workers: int
    registered_at: datetime.datetime
    updated_at: datetime.datetime
    last_heartbeat_at: datetime.datetime | None = None

    @property
    def is_live(self) -> bool:
        """A worker of this version is running."""
        return self.live_workers > 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (ISO-8601 times), for ``--json`` output."""
        return {
            "version": self.version,
            "task_ids": list(self.task_ids),
            "live_workers": self.live_workers,
            "registered_at": self.registered_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "last_heartbeat_at": (
                self.last_heartbeat_at.isoformat() if self.last_heartbeat_at else None
            ),
        }
