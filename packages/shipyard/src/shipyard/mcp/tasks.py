"""Task tools: get_current_worker (the registered tasks and their payload schemas) and
trigger_task."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from shipyard.jsonutil import loads
from shipyard.mcp import engine_reads
from shipyard.mcp.context import ToolContext
from shipyard.mcp.tool import Arguments, Output, Tool, iso
from shipyard.records import TaskRecord
from shipyard.sdk.queues import QueueInfo, queues
from shipyard.sdk.runs import runs
from shipyard.sdk.tasks import tasks

MachineName = Literal[
    "micro", "small-1x", "small-2x", "medium-1x", "medium-2x", "large-1x", "large-2x"
]
START_A_WORKER = "call start_dev_server (or run `uv run shipyard dev`)"


def _task_entry(record: TaskRecord, queue: QueueInfo | None) -> dict[str, Any]:
    return {
        "id": record.id,
        "file": record.file_path,
        "description": record.description,
        "queue": {
            "name": record.queue,
            "concurrency_limit": queue.concurrency_limit if queue else None,
            "paused": queue.paused if queue else False,
        },
        "retry": loads(record.retry) if record.retry else None,
        "max_attempts": record.max_attempts,
        "max_duration_s": record.max_duration_s,
        "machine": record.machine,
        "ttl_ms": record.ttl_ms,
        "payload_schema": loads(record.payload_schema) if record.payload_schema else {},
        "registered_at": iso(record.updated_at),
    }


class NoArguments(Arguments):
    """A tool without arguments."""


async def get_current_worker(context: ToolContext, args: NoArguments) -> Output:
    """The tasks workers registered, with queues, retry settings and payload schemas."""
    engine = await context.engine()
    records = await engine_reads.registered_tasks(engine)
    workers = await engine_reads.live_workers(engine)
    environment = await engine_reads.environment(engine)
    by_queue = {q.name: q for q in await queues.list()}
    data: dict[str, Any] = {
        "environment": environment,
        "workers": [
            {
                "id": w.id,
                "host": w.host,
                "pid": w.pid,
                "started_at": iso(w.started_at),
                "last_heartbeat_at": iso(w.heartbeat_at),
            }
            for w in workers or ()
        ],
        "tasks": [_task_entry(r, by_queue.get(r.queue)) for r in sorted(records, key=_by_id)],
    }
    if not records:
        data["next"] = (
            f"No worker has registered tasks in environment '{environment}' yet: "
            f"{START_A_WORKER}; tasks live in the project's trigger/ folder."
        )
    elif workers is not None and not workers:
        data["next"] = (
            "These tasks were registered by workers that are not running now: triggered runs "
            f"wait (PENDING_VERSION) until one with their task starts; {START_A_WORKER}."
        )
    else:
        data["next"] = "Call trigger_task with a task id and a payload matching payload_schema."
    return Output(data)


def _by_id(record: TaskRecord) -> str:
    return record.id


class TriggerTaskArguments(Arguments):
    """Arguments of trigger_task."""

    task_id: str = Field(
        min_length=1, max_length=200, description="The task's id, as get_current_worker lists."
    )
    payload: Any = Field(
        default=None,
        description="The run's payload: any JSON value; for a schema_task it must match the "
        "task's payload_schema (get_current_worker).",
    )
    delay: str | None = Field(
        default=None,
        max_length=100,
        description='Start no earlier than this: a duration such as "30s", "5m", "2h30m", or '
        "an ISO-8601 time.",
    )
    tags: list[str] | None = Field(
        default=None,
        max_length=10,
        description="Up to 10 tags (1–128 characters each), to find the run with list_runs.",
    )
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="A run with the same task and key is returned instead of a new one.",
    )
    idempotency_key_ttl: str | None = Field(
        default=None,
        max_length=100,
        description='How long the idempotency key holds (a duration such as "1h"; default 30d).',
    )
    ttl: str | int | None = Field(
        default=None,
        description='Expire the run if no worker starts it within this time ("10m", or '
        "seconds as a number; 0 = never).",
    )
    machine: MachineName | None = Field(default=None, description="The machine preset.")
    max_attempts: int | None = Field(
        default=None, ge=1, le=100, description="Attempts at most (overrides the task's retry)."
    )
    queue: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Run in this queue (defined in code or registered by a worker) instead of "
        "the task's.",
    )
    concurrency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="A per-key sub-queue (e.g. a user id) with the queue's concurrency limit.",
    )


_OPTION_NAMES = (
    "delay",
    "tags",
    "idempotency_key",
    "idempotency_key_ttl",
    "ttl",
    "machine",
    "max_attempts",
    "queue",
    "concurrency_key",
)


async def trigger_task(context: ToolContext, args: TriggerTaskArguments) -> Output:
    """Trigger a run; return its id and what to call next (it does not wait)."""
    engine = await context.engine()
    options = {name: getattr(args, name) for name in _OPTION_NAMES}
    handle = await tasks.trigger(
        args.task_id, args.payload, **{k: v for k, v in options.items() if v is not None}
    )
    run = await runs.retrieve(handle.id)
    follow = (
        f"Call wait_for_run_to_complete with run_id {handle.id} to wait for its result, or "
        "get_run_details to see it now."
    )
    if run.is_queued and await engine_reads.live_workers(engine) == []:
        follow += f" No worker is running, so it will not start until one does: {START_A_WORKER}."
    return Output(
        {
            "id": handle.id,
            "task_id": handle.task_identifier,
            "status": str(run.status),
            "is_cached": handle.is_cached,
            "next": follow,
        }
    )


TOOLS = [
    Tool(
        "get_current_worker",
        "List the tasks the project's workers registered: ids, files, queues (with concurrency "
        "limits), retry settings, max duration, machine and the payload's JSON Schema ({} when "
        "the task is untyped), plus the workers running now. Call it first, before "
        "trigger_task, to learn the task ids and the payload each expects.",
        NoArguments,
        get_current_worker,
        title="Current worker and its tasks",
    ),
    Tool(
        "trigger_task",
        "Trigger a run of a task with a JSON payload and optional delay, tags, idempotency key, "
        "TTL, machine, max attempts, queue and concurrency key. Returns the run id at once; it "
        "does not wait. Follow with wait_for_run_to_complete, then get_run_details "
        "(debug=true for the trace).",
        TriggerTaskArguments,
        trigger_task,
        changes=True,
        title="Trigger a task",
    ),
]
