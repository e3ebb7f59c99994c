"""``shipyard schedules``: list, inspect, create, change, pause (deactivate) and delete cron
schedules (``shipyard.schedules``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from shipyard.cli.output import console, id_column, print_json
from shipyard.cli.session import ApiUrlOption, load_cli_settings, run_async, with_engine
from shipyard.models.schedules import Schedule, ScheduleList

__all__ = ["schedules_app"]

T = TypeVar("T")

schedules_app = typer.Typer(
    help="Cron schedules: list, create, update, activate, deactivate, delete.",
    no_args_is_help=True,
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (shapes: docs/cli.md).")]
IdArgument = Annotated[str, typer.Argument(help="The schedule id (sched_…).")]


def _call(action: Callable[[Any], Awaitable[T]], api_url: str | None) -> T:
    """Run ``action(schedules)`` against the engine the settings name (or, with an API URL,
    the engine server there)."""
    settings = load_cli_settings(api_url=api_url)

    async def body() -> T:
        from shipyard.sdk.schedules import schedules

        return await action(schedules)

    return run_async(lambda: with_engine(settings, body))


def _when(schedule: Schedule) -> str:
    if schedule.next_run is None:
        return "(inactive)"
    return schedule.next_run.strftime("%Y-%m-%d %H:%M UTC")


def _show(schedule: Schedule, as_json: bool, what: str = "") -> None:
    if as_json:
        print_json(schedule.to_dict())
        return
    lines = [
        f"{schedule.id}{what}",
        f"  task        {schedule.task} ({schedule.type.lower()})",
        f"  cron        {schedule.generator.expression} ({schedule.generator.description})",
        f"  timezone    {schedule.timezone}",
        f"  active      {'yes' if schedule.active else 'no'}",
        f"  next run    {_when(schedule)}",
    ]
    if schedule.window:
        lines.append(f"  window      {schedule.window}")
    if schedule.deduplication_key:
        lines.append(f"  dedup key   {schedule.deduplication_key}")
    if schedule.external_id:
        lines.append(f"  external id {schedule.external_id}")
    if schedule.last_run:
        lines.append(f"  last run    {schedule.last_run.strftime('%Y-%m-%d %H:%M UTC')}")
    console.print("\n".join(lines), highlight=False, markup=False)


@schedules_app.command("list")
def schedules_list(
    task: Annotated[str | None, typer.Option(help="Only this task's schedules.")] = None,
    page: Annotated[int, typer.Option(min=1, help="Page number (from 1).")] = 1,
    per_page: Annotated[int, typer.Option(min=1, max=100, help="Schedules per page.")] = 20,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = None,
) -> None:
    """The environment's schedules, oldest first, one page at a time."""
    found: ScheduleList = _call(lambda s: s.list(page=page, per_page=per_page, task=task), api_url)
    if as_json:
        print_json(found.to_dict())
        return
    table = Table(
        id_column("id", [s.id for s in found.data]),
        "task",
        "type",
        "cron",
        "timezone",
        "next run",
        "active",
    )
    for s in found.data:
        table.add_row(
            s.id,
            s.task,
            s.type.lower(),
            s.generator.expression,
            s.timezone,
            _when(s),
            "yes" if s.active else "no",
        )
    console.print(table)
    pages = found.pagination
    console.print(
        f"page {pages.current_page} of {max(pages.total_pages, 1)} ({pages.count} schedules)",
        highlight=False,
    )


@schedules_app.command("get")
def schedules_get(
    schedule_id: IdArgument, as_json: JsonOption = False, api_url: ApiUrlOption = None
) -> None:
    """One schedule: task, cron and its description, time zone, next and last run."""
    _show(_call(lambda s: s.retrieve(schedule_id), api_url), as_json)


@schedules_app.command("create")
def schedules_create(
    task: Annotated[str, typer.Option(help="The task to run (its id).")],
    cron: Annotated[str, typer.Option(help="5-field cron expression, e.g. '0 9 * * 1-5'.")],
    deduplication_key: Annotated[
        str, typer.Option(help="Creating again with this key updates the schedule.")
    ],
    timezone: Annotated[str, typer.Option(help="IANA time zone.")] = "UTC",
    external_id: Annotated[
        str | None, typer.Option(help="Your own id (e.g. a user's), passed to each run.")
    ] = None,
    window: Annotated[
        str | None, typer.Option(help="Spread each fire over '30m', '2h' or 'N%'.")
    ] = None,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = None,
) -> None:
    """Create an imperative schedule (the same deduplication key updates it)."""
    schedule = _call(
        lambda s: s.create(
            task=task,
            cron=cron,
            deduplication_key=deduplication_key,
            timezone=timezone,
            external_id=external_id,
            window=window,
        ),
        api_url,
    )
    _show(schedule, as_json)


@schedules_app.command("update")
def schedules_update(
    schedule_id: IdArgument,
    task: Annotated[str | None, typer.Option(help="Another task to run.")] = None,
    cron: Annotated[str | None, typer.Option(help="A new cron expression.")] = None,
    timezone: Annotated[str | None, typer.Option(help="A new IANA time zone.")] = None,
    external_id: Annotated[str | None, typer.Option(help="A new external id.")] = None,
    deduplication_key: Annotated[str | None, typer.Option(help="A new deduplication key.")] = None,
    window: Annotated[str | None, typer.Option(help="A new window ('30m', '2h', 'N%').")] = None,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = None,
) -> None:
    """Change an imperative schedule; options not given stay as they are."""
    schedule = _call(
        lambda s: s.update(
            schedule_id,
            task=task,
            cron=cron,
            timezone=timezone,
            external_id=external_id,
            deduplication_key=deduplication_key,
            window=window,
        ),
        api_url,
    )
    _show(schedule, as_json)


@schedules_app.command("activate")
def schedules_activate(
    schedule_id: IdArgument, as_json: JsonOption = False, api_url: ApiUrlOption = None
) -> None:
    """Fire again, from the next tick after now (ticks missed meanwhile never fire)."""
    _show(_call(lambda s: s.activate(schedule_id), api_url), as_json, " activated")


@schedules_app.command("deactivate")
def schedules_deactivate(
    schedule_id: IdArgument, as_json: JsonOption = False, api_url: ApiUrlOption = None
) -> None:
    """Stop firing until activated again."""
    _show(_call(lambda s: s.deactivate(schedule_id), api_url), as_json, " deactivated")


@schedules_app.command("delete")
def schedules_delete(
    schedule_id: IdArgument, as_json: JsonOption = False, api_url: ApiUrlOption = None
) -> None:
    """Delete an imperative schedule (a declarative one goes when its task loses ``cron``)."""
    _show(_call(lambda s: s.delete(schedule_id), api_url), as_json, " deleted")
