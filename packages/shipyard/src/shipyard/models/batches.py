"""Batches as ``batch.retrieve`` reports them."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

__all__ = ["BatchInfo"]


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """A batch's processing status and its run ids in input order."""

    id: str
    status: str
    run_count: int
    runs: tuple[str, ...]
    created_at: datetime.datetime
    completed_at: datetime.datetime | None
