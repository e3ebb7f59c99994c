"""``generate-report``: the task behind the template API's example feature (``POST /reports``).

It summarises labelled values — per label and overall: count, sum, mean, min, max, median —
one label group at a time, reporting progress through run metadata so a caller polling
``GET /reports/{id}`` (or holding the run's public access token) can show a progress bar.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from pydantic import BaseModel, Field

from shipyard import logger, metadata, schema_task


class ReportRow(BaseModel):
    """One data point."""

    label: str
    value: float


class ReportRequest(BaseModel):
    """A title and the rows to summarise."""

    title: str
    rows: list[ReportRow] = Field(min_length=1)


def summarise(values: list[float]) -> dict[str, float | int]:
    """count, sum, mean, min, max and median of ``values`` (not empty)."""
    return {
        "count": len(values),
        "sum": round(sum(values), 6),
        "mean": round(statistics.fmean(values), 6),
        "min": min(values),
        "max": max(values),
        "median": statistics.median(values),
    }


@schema_task(id="generate-report", schema=ReportRequest, retry={"max_attempts": 3})
async def generate_report(request: ReportRequest) -> dict[str, Any]:
    """Summarise ``request.rows`` per label and overall, with progress in metadata."""
    groups: dict[str, list[float]] = defaultdict(list)
    for row in request.rows:
        groups[row.label].append(row.value)
    labels = sorted(groups)
    metadata.set("stage", "summarising").set("progress", 0.0).set("groups", len(labels))
    sections = []
    for done, label in enumerate(labels, start=1):
        sections.append({"label": label, **summarise(groups[label])})
        metadata.set("progress", round(done / len(labels), 3)).set("current", label)
    logger.info("report generated", title=request.title, groups=len(labels))
    metadata.set("stage", "done")
    return {
        "title": request.title,
        "overall": summarise([row.value for row in request.rows]),
        "sections": sections,
    }
