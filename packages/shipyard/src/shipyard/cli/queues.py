"""``shipyard queues``: see why runs wait (running, queued, limit, paused) and hold a queue
back or let it go (``queues.list``, ``queues.pause``, ``queues.resume``)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from shipyard.cli.output import console, print_json
from shipyard.cli.session import ApiUrlOption, load_cli_settings, run_async, with_engine
from shipyard.models.queues import QueueInfo

__all__ = ["queues_app"]

queues_app = typer.Typer(
    help="Queues: their load and limits; pause and resume.", no_args_is_help=True
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (shapes: docs/cli.md).")]


@queues_app.command("list")
def queues_list(as_json: JsonOption = False, api_url: ApiUrlOption = None) -> None:
    """Every queue of the environment: running and queued runs, its limit, paused or not."""
    settings = load_cli_settings(api_url=api_url)

    async def body() -> list[QueueInfo]:
        from shipyard.sdk.queues import queues

        return await queues.list()

    found = run_async(lambda: with_engine(settings, body))
    if as_json:
        print_json([queue.to_dict() for queue in found])
        return
    table = Table("name", "running", "queued", "limit", "paused")
    for queue in found:
        limit = str(queue.effective_limit)
        if queue.limit_override is not None:
            limit += " (override)"
        table.add_row(
            queue.name, str(queue.running), str(queue.queued), limit, "yes" if queue.paused else ""
        )
    console.print(table)


def _set_paused(name: str, paused: bool, as_json: bool, api_url: str | None) -> None:
    settings = load_cli_settings(api_url=api_url)

    async def body() -> QueueInfo:
        from shipyard.sdk.queues import queues

        return await (queues.pause(name) if paused else queues.resume(name))

    queue = run_async(lambda: with_engine(settings, body))
    if as_json:
        print_json(queue.to_dict())
    else:
        state = "paused" if queue.paused else "resumed"
        console.print(
            f"Queue {queue.name} {state}: {queue.running} running, {queue.queued} queued.",
            highlight=False,
            markup=False,
        )


@queues_app.command("pause")
def queues_pause(
    name: Annotated[str, typer.Argument(help="The queue name (a task's id names its queue).")],
    as_json: JsonOption = False,
    api_url: ApiUrlOption = None,
) -> None:
    """Pause a queue: its runs stay queued (running ones finish) until it is resumed."""
    _set_paused(name, True, as_json, api_url)


@queues_app.command("resume")
def queues_resume(
    name: Annotated[str, typer.Argument(help="The queue name.")],
    as_json: JsonOption = False,
    api_url: ApiUrlOption = None,
) -> None:
    """Resume a paused queue: its queued runs start again."""
    _set_paused(name, False, as_json, api_url)
