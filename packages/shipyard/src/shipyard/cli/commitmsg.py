"""``shipyard commit-msg FILE``: the commit-msg git hook (rules: shipyard.tooling.commitmsg)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from shipyard.tooling.commitmsg import FORMAT, TYPES, check_message, clean


def commit_msg(
    file: Annotated[
        Path, typer.Argument(help="The commit message file git passes (.git/COMMIT_EDITMSG).")
    ],
) -> None:
    """Check a commit message: <type>(<scope>): <subject>, lowercase, no period, ≤ 100 chars."""
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        message = file.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        console.print(f"[bold red]error:[/] cannot read {file}: {exc.strerror}")
        raise typer.Exit(2) from None
    problems = check_message(message)
    if not problems:
        return
    lines = clean(message)
    console.print(f"[bold red]✖ commit message rejected:[/] {lines[0] if lines else '(empty)'}")
    for problem in problems:
        console.print(f"  ✖ [bold]{problem.rule}[/]: {problem.message}")
    console.print(f"\nFormat: {FORMAT}   types: {', '.join(TYPES)}")
    console.print("Example: fix(api): resolve database connection timeout")
    raise typer.Exit(1)
