"""Run tools: get_run_details, list_runs, wait_for_run_to_complete, cancel_run, replay_run.

They call the public runs API (``shipyard.runs``) and the engine; a run's logs and spans come
from the engine adapter (:mod:`shipyard.mcp.engine_reads`).
"""

from __future__ import annotations

import datetime
from typing import Any, Literal

from pydantic import Field

from shipyard.durations import parse_duration_ms
from shipyard.errors import RunTimeoutError, ValidationError
from shipyard.ids import id_timestamp_ms
from shipyard.mcp import engine_reads
from shipyard.mcp.context import ToolContext
from shipyard.mcp.tool import Arguments, Output, Tool
from shipyard.mcp.trace import format_trace, log_entries, span_entries
from shipyard.models.runs import Run
from shipyard.sdk.runs import runs

RUN_ID = "The run's id (run_…), as trigger_task or list_runs returned it."
MAX_EVENTS_READ = 10_000
WAIT_MAX_SECONDS = 600
StatusName = Literal[
    "DELAYED",
    "PENDING_VERSION",
    "QUEUED",
    "DEQUEUED",
    "EXECUTING",
    "WAITING",
    "COMPLETED",
    "CANCELED",
    "FAILED",
    "CRASHED",
    "SYSTEM_FAILURE",
    "EXPIRED",
    "TIMED_OUT",
]


def run_summary(run: Run) -> dict[str, Any]:
    """The fields of a run a listing shows."""
    return {
        "id": run.id,
        "task_id": run.task_identifier,
        "status": str(run.status),
        "is_final": run.is_completed,
        "tags": list(run.tags),
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "duration_ms": run.duration_ms,
        "attempt_count": run.attempt_count,
        "error": f"{run.error.name}: {run.error.message}" if run.error else None,
    }


async def _no_worker_hint(context: ToolContext, run: Run) -> str:
    """A hint when a run waits for a worker and none is running."""
    if not run.is_queued:
        return ""
    engine = await context.engine()
    if await engine_reads.live_workers(engine) != []:  # some run, or unknown (remote)
        return ""
    return (
        " No worker is running in this environment, so queued runs do not start: call "
        "start_dev_server (or run `uv run shipyard dev`)."
    )


# -- get_run_details ---------------------------------------------------------------------------


class GetRunDetailsArguments(Arguments):
    """Arguments of get_run_details."""

    run_id: str = Field(description=RUN_ID, min_length=1, max_length=200)
    debug: bool = Field(
        default=False,
        description="Also return every span (logger.trace) and an indented trace of the run's "
        "attempts, spans, logs, metadata and status changes.",
    )
    max_logs: int = Field(
        default=100,
        ge=0,
        le=1000,
        description="Return at most this many log lines (the most recent ones).",
    )


async def get_run_details(context: ToolContext, args: GetRunDetailsArguments) -> Output:
    """A run with its payload, output, error, attempts, metadata and logs."""
    engine = await context.engine()
    run = await runs.retrieve(args.run_id)
    events, truncated = await engine_reads.run_events(engine, run.id, MAX_EVENTS_READ)
    logs = log_entries(events)
    shown = logs[len(logs) - args.max_logs :] if args.max_logs else []
    data: dict[str, Any] = {
        "run": run.to_dict(),
        "logs": shown,
        "logs_omitted": len(logs) - len(shown),
    }
    if truncated:
        data["events_truncated"] = f"only the first {MAX_EVENTS_READ:,} events were read"
    text: list[str] = []
    if args.debug:
        data["spans"] = span_entries(events)
        text.append(format_trace(run, events))
    if not run.is_completed:
        data["next"] = (
            f"The run is {run.status}: call wait_for_run_to_complete to wait for it."
            + await _no_worker_hint(context, run)
        )
    return Output(data, text)


# -- list_runs ---------------------------------------------------------------------------------


class ListRunsArguments(Arguments):
    """Arguments of list_runs."""

    status: list[StatusName] | None = Field(
        default=None, max_length=13, description="Only runs in one of these statuses."
    )
    task_id: str | None = Field(default=None, max_length=200, description="Only this task's runs.")
    tag: str | None = Field(default=None, max_length=128, description="Only runs with this tag.")
    period: str | None = Field(
        default=None,
        max_length=20,
        pattern=r"^(\d+(w|d|hr|h|m|s))+$",
        description='Only runs created in this last period, e.g. "1h", "1d", "7d". Not with from.',
    )
    from_: str | None = Field(
        default=None,
        alias="from",
        max_length=40,
        description="Only runs created at or after this ISO-8601 time (2025-01-31T12:00:00Z).",
    )
    to: str | None = Field(
        default=None,
        max_length=40,
        description="Only runs created at or before this ISO-8601 time.",
    )
    limit: int = Field(default=20, ge=1, le=100, description="Runs per page.")
    cursor: str | None = Field(
        default=None,
        max_length=200,
        description="next_cursor of the previous page, to get the next (older) page.",
    )


def _parse_time(text: str, name: str) -> int:
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            f"{name} must be an ISO-8601 date-time such as 2025-01-31T12:00:00Z; got {text!r}."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1000)


async def list_runs(context: ToolContext, args: ListRunsArguments) -> Output:
    """Runs newest first, filtered, one page at a time."""
    engine = await context.engine()
    if args.period and args.from_:
        raise ValidationError("Give either period or from, not both.")
    created_from = _parse_time(args.from_, "from") if args.from_ else None
    created_to = _parse_time(args.to, "to") if args.to else None
    if args.period:
        created_from = engine_reads.now_ms(engine) - parse_duration_ms(args.period)
    if args.cursor:
        try:
            # Every run older than the cursor was created at or before the cursor's id time
            # (a run's created_at is read before its id is made), so bounding created_at by it
            # resumes the listing without a store cursor.
            bound = id_timestamp_ms(args.cursor)
        except ValidationError:
            raise ValidationError(
                f"cursor {args.cursor!r} is not a next_cursor that list_runs returned."
            ) from None
        created_to = bound if created_to is None else min(created_to, bound)
    found: list[Run] = []
    async for run in runs.list(
        status=list(args.status or []),
        task_identifier=args.task_id,
        tag=args.tag,
        from_=created_from,
        to=created_to,
        limit=min(args.limit + 1, 1000),
    ):
        if args.cursor and run.id >= args.cursor:
            continue  # on an earlier page
        found.append(run)
        if len(found) > args.limit:
            break
    more = len(found) > args.limit
    page = found[: args.limit]
    data: dict[str, Any] = {
        "runs": [run_summary(run) for run in page],
        "count": len(page),
        "next_cursor": page[-1].id if more else None,
    }
    if more:
        data["next"] = "Call list_runs again with the same filters and cursor=next_cursor."
    return Output(data)


# -- wait_for_run_to_complete ------------------------------------------------------------------


class WaitForRunArguments(Arguments):
    """Arguments of wait_for_run_to_complete."""

    run_id: str = Field(description=RUN_ID, min_length=1, max_length=200)
    timeout_seconds: float = Field(
        default=60,
        ge=0,
        le=WAIT_MAX_SECONDS,
        description="Give up waiting after this many seconds (the run goes on) and return its "
        "current status.",
    )


async def wait_for_run_to_complete(context: ToolContext, args: WaitForRunArguments) -> Output:
    """Wait, bounded, for a run to reach a final status."""
    engine = await context.engine()
    await runs.retrieve(args.run_id)  # an unknown run fails at once, not at the timeout
    timed_out = False
    try:
        await engine_reads.wait_for_final(engine, args.run_id, args.timeout_seconds)
    except RunTimeoutError:
        timed_out = True
    run = await runs.retrieve(args.run_id)
    data: dict[str, Any] = {
        "timed_out": timed_out,
        **run_summary(run),
        "output": run.output,
        "error": run.to_dict()["error"],
    }
    if timed_out:
        data["message"] = (
            f"Run {run.id} is still {run.status} after {args.timeout_seconds:g} s; the wait "
            "timed out and the run goes on. Call wait_for_run_to_complete again, or "
            "get_run_details to see its logs." + await _no_worker_hint(context, run)
        )
    else:
        data["message"] = (
            f"Run {run.id} finished {run.status}. get_run_details(debug=true) shows its logs "
            "and trace."
        )
    return Output(data)


# -- cancel_run / replay_run -------------------------------------------------------------------


class RunIdArguments(Arguments):
    """Arguments of the tools that take one run."""

    run_id: str = Field(description=RUN_ID, min_length=1, max_length=200)


async def cancel_run(context: ToolContext, args: RunIdArguments) -> Output:
    """Cancel a run and its unfinished children."""
    await context.engine()
    before = await runs.retrieve(args.run_id)
    if before.is_completed:
        return Output(
            {
                "id": before.id,
                "status": str(before.status),
                "message": f"Run {before.id} had already finished {before.status}; nothing "
                "changed.",
            }
        )
    after = await runs.cancel(args.run_id)
    return Output(
        {
            "id": after.id,
            "status": str(after.status),
            "message": f"Run {after.id} was {before.status} and is now {after.status}.",
        }
    )


async def replay_run(context: ToolContext, args: RunIdArguments) -> Output:
    """A new run of the same task with the same payload and tags."""
    await context.engine()
    handle = await runs.replay(args.run_id)
    return Output(
        {
            "id": handle.id,
            "replay_of": args.run_id,
            "task_id": handle.task_identifier,
            "next": f"Call wait_for_run_to_complete with run_id {handle.id}, then get_run_details.",
        }
    )


TOOLS = [
    Tool(
        "get_run_details",
        "Show one run: status, payload, output, error, attempts, metadata and its logs. Use it "
        "to see what a run did or why it failed; set debug=true to also get its spans as an "
        "indented trace (attempts → spans → logs). Does not wait: use wait_for_run_to_complete "
        "for a run that is still going.",
        GetRunDetailsArguments,
        get_run_details,
        title="Run details",
    ),
    Tool(
        "list_runs",
        "List runs newest first, filtered by status, task, tag and creation time (period such "
        'as "1h"/"1d"/"7d", or from/to), one page at a time (pass next_cursor as cursor for '
        "the next page). Use it to find recent or failed runs; get_run_details shows one.",
        ListRunsArguments,
        list_runs,
        title="List runs",
    ),
    Tool(
        "wait_for_run_to_complete",
        "Wait until a run reaches a final status (COMPLETED, FAILED, CANCELED …) and return its "
        f"output or error. Always bounded: after timeout_seconds (default 60, at most "
        f"{WAIT_MAX_SECONDS}) it returns the current status with timed_out=true and the run "
        "goes on. Use it after trigger_task or replay_run.",
        WaitForRunArguments,
        wait_for_run_to_complete,
        title="Wait for a run",
    ),
    Tool(
        "cancel_run",
        "Cancel a run that has not finished (and its unfinished child runs); an executing "
        "attempt is stopped. A finished run is left as it is. Use it to stop a stuck or "
        "unwanted run.",
        RunIdArguments,
        cancel_run,
        changes=True,
        title="Cancel a run",
    ),
    Tool(
        "replay_run",
        "Trigger a new run of the same task with the same payload and tags as an earlier run "
        "(for example after fixing the task's code). Returns the new run's id; it does not "
        "wait.",
        RunIdArguments,
        replay_run,
        changes=True,
        title="Replay a run",
    ),
]
