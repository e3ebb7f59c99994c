"""Schedule tools: list_schedules (over ``shipyard.schedules``)."""

from __future__ import annotations

from pydantic import Field

from shipyard.mcp.context import ToolContext
from shipyard.mcp.tool import Arguments, Output, Tool
from shipyard.sdk.schedules import schedules


class ListSchedulesArguments(Arguments):
    """Arguments of list_schedules."""

    task: str | None = Field(
        default=None, min_length=1, max_length=128, description="Only this task's schedules."
    )
    page: int = Field(default=1, ge=1, description="Page number, from 1.")
    per_page: int = Field(default=20, ge=1, le=100, description="Schedules per page.")


async def list_schedules(context: ToolContext, args: ListSchedulesArguments) -> Output:
    """The environment's schedules with their cron, time zone and next run."""
    await context.engine()
    found = await schedules.list(page=args.page, per_page=args.per_page, task=args.task)
    data = found.to_dict()
    if not found.data:
        data["next"] = (
            "No schedule yet: a task defined with @schedules.task(cron=...) gets one when a "
            "worker starts; schedules.create(...) adds others at run time."
        )
    return Output(data)


TOOLS = [
    Tool(
        "list_schedules",
        "List the cron schedules: task, type (DECLARATIVE from code, IMPERATIVE created at run "
        "time), cron and its description, time zone, active, next and last run. Use it to see "
        "when a scheduled task runs next.",
        ListSchedulesArguments,
        list_schedules,
        title="List schedules",
    ),
]
