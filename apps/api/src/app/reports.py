"""The example feature: generate a report in a Shipyard task and follow its progress.

``POST /reports`` triggers the ``generate-report`` task (``trigger/reports.py``) and answers at
once with the run id and a public access token (a JWT that can read only this run, for a
browser to follow it). ``GET /reports/{id}`` reads the run: status, progress metadata, and the
report when it is done. Runs are tagged with the caller's user id; nobody reads another user's
report.

No worker running yet (a deploy still starting, ``shipyard dev`` not up) is not an error: the
run is accepted and waits as ``PENDING_VERSION`` until a worker with the task starts.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from app.auth import CurrentUser
from app.routing import StrictJSONRoute

log = logging.getLogger("app.reports")
router = APIRouter(route_class=StrictJSONRoute, prefix="/reports", tags=["reports"])
TASK_ID = "generate-report"


class Row(BaseModel):
    """One data point: a label (the group) and a value."""

    label: str = Field(min_length=1, max_length=100)
    value: float


class ReportRequest(BaseModel):
    """What to summarise."""

    title: str = Field(min_length=1, max_length=200)
    rows: list[Row] = Field(min_length=1, max_length=10_000)


def _user_tag(user_id: str) -> str:
    return f"user_{user_id}"[:128]


@router.post("", status_code=202)
async def create_report(request: ReportRequest, user: CurrentUser) -> dict[str, Any]:
    """Start generating a report; poll ``GET /reports/{id}`` (or use the token) to follow it."""
    from shipyard import tasks

    # With no worker for the task yet, the run waits (PENDING_VERSION) and starts with one.
    handle = await tasks.trigger(
        TASK_ID, request.model_dump(), tags=[_user_tag(user.id), "reports"]
    )
    log.info("report run %s triggered", handle.id)
    return {
        "id": handle.id,
        "status_url": f"/reports/{handle.id}",
        "public_access_token": handle.public_access_token,
    }


@router.get("/{run_id}")
async def get_report(run_id: str, user: CurrentUser) -> dict[str, Any]:
    """The report run's status and progress; the report itself once it is COMPLETED."""
    from shipyard import RunNotFoundError, runs

    try:
        run = await runs.retrieve(run_id)
    except RunNotFoundError:
        run = None
    if run is None or run.task_identifier != TASK_ID or _user_tag(user.id) not in run.tags:
        raise HTTPException(404, detail=f"No report {run_id}.")
    return {
        "id": run.id,
        "status": str(run.status),
        "metadata": run.metadata,
        "output": run.output if run.is_success else None,
        "error": str(run.error) if run.error else None,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
