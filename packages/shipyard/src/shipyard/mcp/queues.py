"""Queue tools: list_queues, pause_queue and resume_queue (over ``shipyard.queues``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pydantic import Field

from shipyard.mcp.context import ToolContext
from shipyard.mcp.tasks import NoArguments
from shipyard.mcp.tool import Arguments, Output, Tool
from shipyard.sdk.queues import QueueInfo, queues


def _entry(info: QueueInfo) -> dict[str, Any]:
    return asdict(info)


async def list_queues(context: ToolContext, args: NoArguments) -> Output:
    """Every queue with its limit, pause state and how many runs are running and queued."""
    await context.engine()
    found = await queues.list()
    data: dict[str, Any] = {"queues": [_entry(q) for q in found]}
    if not found:
        data["next"] = "No queue yet: workers register their tasks' queues when they start."
    return Output(data)


class QueueNameArguments(Arguments):
    """Arguments of pause_queue and resume_queue."""

    name: str = Field(
        min_length=1,
        max_length=128,
        description="The queue's name, as list_queues shows it (a task's own queue is "
        "task/<task id>).",
    )


async def pause_queue(context: ToolContext, args: QueueNameArguments) -> Output:
    """Stop new claims from a queue."""
    await context.engine()
    info = await queues.pause(args.name)
    return Output(
        {
            "queue": _entry(info),
            "message": f"Queue '{info.name}' is paused: its {info.queued} queued run(s) wait, "
            f"its {info.running} running run(s) finish. resume_queue starts it again.",
        }
    )


async def resume_queue(context: ToolContext, args: QueueNameArguments) -> Output:
    """Allow claims from a paused queue again."""
    await context.engine()
    info = await queues.resume(args.name)
    return Output({"queue": _entry(info), "message": f"Queue '{info.name}' runs again."})


TOOLS = [
    Tool(
        "list_queues",
        "List the queues: concurrency limit (and override), effective limit, whether paused, "
        "and how many runs are running and queued in each. Use it to see why runs wait.",
        NoArguments,
        list_queues,
        title="List queues",
    ),
    Tool(
        "pause_queue",
        "Pause a queue: no new run starts from it (running runs finish); survives restarts. "
        "Use it to hold back work, then resume_queue.",
        QueueNameArguments,
        pause_queue,
        changes=True,
        title="Pause a queue",
    ),
    Tool(
        "resume_queue",
        "Resume a paused queue so its queued runs start again (the opposite of pause_queue). "
        "Use it when list_queues shows a queue paused.",
        QueueNameArguments,
        resume_queue,
        changes=True,
        title="Resume a queue",
    ),
]
