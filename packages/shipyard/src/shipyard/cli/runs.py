"""``shipyard runs``: list, get, logs, cancel and replay runs.

Every command goes through the SDK (``shipyard.runs``), the same calls user code makes, on an
engine opened for the command. ``--json`` shapes are documented in ``docs/cli.md``.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import sys
from collections import deque
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from shipyard.cli.output import console, id_column, print_json, print_json_line
from shipyard.cli.session import ApiUrlOption, load_cli_settings, run_async, with_engine
from shipyard.models.runs import Run, RunEvent

__all__ = ["event_line", "runs_app"]

runs_app = typer.Typer(help="Inspect and manage runs.", no_args_is_help=True)

EVENTS_PAGE = 1000
MAX_ATTRIBUTES_TEXT = 500
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (shapes: docs/cli.md).")]


# -- list -----------------------------------------------------------------------------------


@runs_app.command("list")
def runs_list(
    status: Annotated[list[str] | None, typer.Option(help="Filter by status (repeatable).")] = None,
    task: Annotated[str | None, typer.Option(help="Filter by task id.")] = None,
    tag: Annotated[str | None, typer.Option(help="Filter by tag.")] = None,
    schedule: Annotated[
        str | None, typer.Option(help="Only the runs this schedule created (its id).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many runs.")] = 20,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = None,
) -> None:
    """List runs, newest first."""
    settings = load_cli_settings(api_url=api_url)

    async def body() -> list[dict[str, Any]]:
        from shipyard.sdk.runs import runs

        found = []
        async for run in runs.list(
            status=status or None,
            task_identifier=task,
            tag=tag,
            schedule=schedule,
            limit=min(limit, 1000),
        ):
            found.append(run.to_dict())
            if len(found) >= limit:
                break
        return found

    found = run_async(lambda: with_engine(settings, body))
    if as_json:
        print_json(found)
        return
    table = Table(
        id_column("id", [r["id"] for r in found]),
        "task",
        "status",
        "attempts",
        "created",
        "duration",
    )
    for run in found:
        table.add_row(
            run["id"],
            run["task_identifier"],
            run["status"],
            str(run["attempt_count"]),
            str(run["created_at"])[:19],
            f"{run['duration_ms']} ms",
        )
    console.print(table)


# -- get ------------------------------------------------------------------------------------


@runs_app.command("get")
def runs_get(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    logs: Annotated[
        int, typer.Option("--logs", min=0, help="How many of the last log lines to show.")
    ] = 10,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = None,
) -> None:
    """Show one run: status, payload, output, error, metadata, attempts and its last logs."""
    settings = load_cli_settings(api_url=api_url)

    async def body() -> tuple[Run, list[RunEvent]]:
        from shipyard.sdk.runs import runs

        run = await runs.retrieve(run_id)
        return run, await last_logs(run_id, logs) if logs else []

    run, tail = run_async(lambda: with_engine(settings, body))
    data = run.to_dict()
    if as_json:
        print_json({**data, "logs": [event.to_dict() for event in tail]})
        return
    for key in (
        "id",
        "task_identifier",
        "status",
        "version",
        "attempt_count",
        "created_at",
        "finished_at",
    ):
        console.print(f"[bold]{key}[/]: {escape(str(data[key]))}", highlight=False)
    if data["tags"]:
        console.print(f"[bold]tags[/]: {escape(', '.join(data['tags']))}", highlight=False)
    console.print("[bold]payload[/]:")
    console.print_json(data=data["payload"])
    if data["output"] is not None:
        console.print("[bold]output[/]:")
        console.print_json(data=data["output"])
    if data["error"]:
        error = f"{data['error']['name']}: {data['error']['message']}"
        console.print(f"[bold red]error[/]: {escape(error)}", highlight=False)
    if data["metadata"]:
        console.print("[bold]metadata[/]:")
        console.print_json(data=data["metadata"])
    if run.attempts:
        console.print("[bold]attempts[/]:")
        table = Table("#", "status", "started", "duration", "error")
        for attempt in run.attempts:
            table.add_row(
                str(attempt.number),
                attempt.status,
                _time(attempt.started_at) if attempt.started_at else "",
                _duration(attempt.started_at, attempt.finished_at),
                escape(str(attempt.error)) if attempt.error else "",
            )
        console.print(table)
    if logs:
        if not tail:
            console.print("[bold]logs[/]: none", highlight=False)
        else:
            console.print(
                f"[bold]logs[/] (the last {len(tail)}; every event: "
                f"shipyard runs logs {escape(run.id)}):",
                highlight=False,
                soft_wrap=True,
            )
        for event in tail:
            console.print(event_line(event), markup=False, highlight=False, soft_wrap=True)


async def last_logs(run_id: str, count: int) -> list[RunEvent]:
    """The run's last ``count`` log lines (events of kind ``log``), oldest first."""
    from shipyard.sdk.runs import runs

    tail: deque[RunEvent] = deque(maxlen=count)
    after = 0
    while True:
        page = await runs.events(run_id, after_id=after, limit=EVENTS_PAGE)
        tail.extend(e for e in page if e.kind == "log")
        if len(page) < EVENTS_PAGE:
            return list(tail)
        after = page[-1].id


def _duration(start: datetime.datetime | None, end: datetime.datetime | None) -> str:
    if start is None:
        return ""
    if end is None:
        return "running"
    ms = (end - start).total_seconds() * 1000
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


# -- logs -----------------------------------------------------------------------------------


@runs_app.command("logs")
def runs_logs(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events until the run ends.")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.05, help="Seconds between two looks for new events (--follow).")
    ] = 0.5,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per event and line (docs/cli.md).")
    ] = False,
    api_url: ApiUrlOption = None,
) -> None:
    """A run's logs, spans, metadata, tag and status changes, in the order they were recorded.

    With --follow, new events are printed as they arrive until the run is final.
    """
    settings = load_cli_settings(api_url=api_url)

    def show(event: RunEvent) -> None:
        if as_json:
            print_json_line(event.to_dict())
        else:
            sys.stdout.write(event_line(event) + "\n")

    async def body() -> None:
        await stream_events(run_id, show, follow=follow, interval=interval)

    run_async(lambda: with_engine(settings, body))


async def stream_events(
    run_id: str,
    show: Callable[[RunEvent], None],
    *,
    follow: bool,
    interval: float,
) -> None:
    """Call ``show`` with each of the run's events, oldest first (by cursor). With ``follow``,
    look again every ``interval`` seconds until the run is final, then print what the final
    transition wrote (its events are committed with it) and return."""
    from shipyard.sdk.runs import runs

    await runs.retrieve(run_id)  # an unknown run fails here, before anything is printed
    after = 0
    final = False
    while True:
        page = await runs.events(run_id, after_id=after, limit=EVENTS_PAGE)
        for event in page:
            show(event)
        sys.stdout.flush()
        if page:
            after = page[-1].id
        if len(page) == EVENTS_PAGE:
            continue  # more are stored already: no wait
        if not follow or final:
            return
        # The status is read after the page: events recorded before the run became final are
        # in the next page at the latest, so one more page after seeing it is complete.
        final = (await runs.retrieve(run_id)).is_completed
        if not final:
            await asyncio.sleep(interval)


def event_line(event: RunEvent) -> str:
    """One event as a line: UTC time, kind or level, message and attributes (compact JSON)."""
    attributes = event.attributes
    if event.kind == "log":
        label = (event.level or "log").upper()
        text = event.message
    elif event.kind == "span" and isinstance(attributes, dict):
        label = "SPAN"
        duration = attributes.get("duration_ms")
        took = f"{duration:.1f} ms" if isinstance(duration, int | float) else "? ms"
        text = f"{event.message}  {took}  {attributes.get('status', '?')}"
        if attributes.get("error"):
            text += f"  {attributes['error']}"
        attributes = attributes.get("attributes")
    else:
        label = event.kind.upper()
        text = event.message
    return f"{_time(event.ts)}  {label:<8} {text}{_compact(attributes)}"


def _time(moment: datetime.datetime) -> str:
    utc = moment.astimezone(datetime.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _compact(value: Any) -> str:
    if value in (None, {}, []):
        return ""
    text = json.dumps(value, default=str, ensure_ascii=False, separators=(", ", ": "))
    if len(text) > MAX_ATTRIBUTES_TEXT:
        text = text[: MAX_ATTRIBUTES_TEXT - 1] + "…"
    return "  " + text


# -- cancel, replay -------------------------------------------------------------------------


@runs_app.command("cancel")
def runs_cancel(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    as_json: JsonOption = False,
    api_url: ApiUrlOption = None,
) -> None:
    """Cancel a run (and its non-final children). A finished run is left as it is."""
    settings = load_cli_settings(api_url=api_url)

    async def body() -> Run:
        from shipyard.sdk.runs import runs

        return await runs.cancel(run_id)

    run = run_async(lambda: with_engine(settings, body))
    if as_json:
        print_json(run.to_dict())
    else:
        console.print(f"{run_id}: {run.status}", highlight=False)


@runs_app.command("replay")
def runs_replay(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    as_json: JsonOption = False,
    api_url: ApiUrlOption = None,
) -> None:
    """Trigger a new run with the same task, payload and options."""
    settings = load_cli_settings(api_url=api_url)

    async def body() -> dict[str, Any]:
        from shipyard.sdk.runs import runs

        handle = await runs.replay(run_id)
        return {
            "id": handle.id,
            "task_identifier": handle.task_identifier,
            "is_cached": handle.is_cached,
            "replayed_run_id": run_id,
        }

    replayed = run_async(lambda: with_engine(settings, body))
    if as_json:
        print_json(replayed)
    else:
        console.print(f"Replayed {run_id} as [bold]{replayed['id']}[/]", highlight=False)
