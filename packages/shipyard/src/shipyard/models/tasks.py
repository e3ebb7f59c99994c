"""Tasks as workers registered them (``shipyard tasks list``, the HTTP API, the MCP server)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["RegisteredTask"]


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
