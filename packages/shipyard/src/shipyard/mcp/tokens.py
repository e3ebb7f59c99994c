"""Wait token tools: complete_token (over ``shipyard.wait``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from shipyard.mcp.context import ToolContext
from shipyard.mcp.tool import Arguments, Output, Tool, iso
from shipyard.sdk.wait import wait


class CompleteTokenArguments(Arguments):
    """Arguments of complete_token."""

    token_id: str = Field(
        min_length=1,
        max_length=200,
        description="The wait token's id (waitpoint_…), as wait.create_token returned it.",
    )
    data: Any = Field(
        default=None,
        description="The JSON value the waiting run receives as the token's output.",
    )


async def complete_token(context: ToolContext, args: CompleteTokenArguments) -> Output:
    """Complete a wait token; the first completion's data is kept."""
    await context.engine()
    await wait.complete_token(args.token_id, args.data)
    info = await wait.retrieve_token(args.token_id)
    return Output(
        {
            "id": info.id,
            "status": info.status,
            "completed_at": iso(info.completed_at),
            "output": info.output,
            "message": "The token is completed; runs waiting on it (wait.for_token) resume. "
            "Completing it again keeps the first data.",
        }
    )


TOOLS = [
    Tool(
        "complete_token",
        "Complete a wait token with JSON data, resuming the runs that wait on it "
        "(wait.for_token), as a human approval or a webhook would. Idempotent: the first "
        "data is kept.",
        CompleteTokenArguments,
        complete_token,
        changes=True,
        title="Complete a wait token",
    ),
]
