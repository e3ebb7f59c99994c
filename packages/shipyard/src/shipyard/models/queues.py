"""Queues as ``queues.list`` / ``queues.retrieve`` report them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["QueueInfo"]


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue with its limits and how many of its runs are executing and queued.

    ``effective_limit`` is what claims apply: the override, else the limit set in code, else the
    environment's limit — never more than the environment's limit.
    """

    name: str
    concurrency_limit: int | None
    limit_override: int | None
    effective_limit: int
    paused: bool
    running: int
    queued: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the fields above), for the CLI and tools."""
        return asdict(self)
