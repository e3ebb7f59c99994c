"""``shipyard tokens``: list wait tokens and complete them (what ``wait.list_tokens`` and
``wait.complete_token`` do), so a person or a script can resume a run waiting on one."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from shipyard.cli.output import console, fail, id_column, print_json
from shipyard.cli.session import ApiUrlOption, load_cli_settings, run_async, with_engine
from shipyard.models.tokens import WaitTokenInfo

__all__ = ["tokens_app"]

tokens_app = typer.Typer(help="Wait tokens: list them, complete them.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (shapes: docs/cli.md).")]


@tokens_app.command("list")
def tokens_list(
    status: Annotated[
        list[str] | None,
        typer.Option(help="WAITING, COMPLETED or TIMED_OUT (repeatable: any of them)."),
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option(help="A tag the token has (repeatable: all of them).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many tokens.")] = 20,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = None,
) -> None:
    """List wait tokens, newest first."""
    settings = load_cli_settings(api_url=api_url)

    async def body() -> list[WaitTokenInfo]:
        from shipyard.sdk.wait import wait

        found: list[WaitTokenInfo] = []
        async for token in wait.list_tokens(
            status=[s.upper() for s in status or []], tags=tag or [], limit=min(limit, 1000)
        ):
            found.append(token)
            if len(found) >= limit:
                break
        return found

    found = run_async(lambda: with_engine(settings, body))
    if as_json:
        print_json([token.to_dict() for token in found])
        return
    table = Table(
        id_column("id", [t.id for t in found]), "status", "created", "timeout", "completed", "tags"
    )
    for token in found:
        data = token.to_dict()
        table.add_row(
            token.id,
            token.status,
            _short(data["created_at"]),
            _short(data["timeout_at"]),
            _short(data["completed_at"]),
            escape(", ".join(token.tags)),
        )
    console.print(table)


@tokens_app.command("complete")
def tokens_complete(
    token_id: Annotated[str, typer.Argument(help="The token id (waitpoint_…).")],
    data: Annotated[
        str, typer.Option(help="The JSON the waiting run resumes with (wait.for_token's output).")
    ] = "null",
    as_json: JsonOption = False,
    api_url: ApiUrlOption = None,
) -> None:
    """Complete a wait token with --data; the run waiting on it resumes. Completing a token
    again changes nothing: the first data is kept."""
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        fail(f"--data is not valid JSON: {exc}", code=2)
    settings = load_cli_settings(api_url=api_url)

    async def body() -> tuple[str, WaitTokenInfo]:
        from shipyard.sdk.wait import wait

        before = await wait.retrieve_token(token_id)  # an unknown token fails here
        await wait.complete_token(token_id, value)
        return before.status, await wait.retrieve_token(token_id)

    before, token = run_async(lambda: with_engine(settings, body))
    if as_json:
        print_json(token.to_dict())
    elif before == "WAITING":
        console.print(f"Completed {token.id}: {token.status}", highlight=False)
    else:
        console.print(f"{token.id} was already {before}; nothing changed.", highlight=False)


def _short(iso: Any) -> str:
    """``2026-01-16T12:00:00.123+00:00`` → ``2026-01-16 12:00:00``."""
    return str(iso)[:19].replace("T", " ") if iso else ""
