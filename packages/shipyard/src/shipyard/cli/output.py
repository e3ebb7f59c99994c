"""How the CLI prints: rich tables for people, ``--json`` for scripts, errors on stderr."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column

from shipyard.errors import ShipyardError, UnknownTaskError, ValidationError

# Piped (no terminal, no COLUMNS), rich would wrap and cut tables at 80 columns; a pipe into
# grep or a file is better served by whole rows.
PIPE_WIDTH = 200
console = Console(
    width=PIPE_WIDTH if not sys.stdout.isatty() and "COLUMNS" not in os.environ else None
)
err_console = Console(stderr=True)


def fail(error: ShipyardError | str, code: int | None = None) -> NoReturn:
    """Print an error as one clear line and exit (2 for bad input, 1 otherwise)."""
    message = error.message if isinstance(error, ShipyardError) else error
    # soft_wrap: one line even when stderr is not a terminal (rich wraps at 80 columns).
    # escape: a message is text, not markup ("shipyard[engine]" must print as written).
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    if code is None:
        code = 2 if isinstance(error, ValidationError | UnknownTaskError) else 1
    raise typer.Exit(code)


def id_column(name: str, values: list[str]) -> Column:
    """A table column of ids: never wrapped or cut short (people copy them into commands)."""
    return Column(name, no_wrap=True, min_width=max((len(v) for v in values), default=len(name)))


def print_json(data: Any) -> None:
    """Machine-readable output on stdout: one JSON document."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_json_line(data: Any) -> None:
    """One JSON object on one line (a stream of them is JSON Lines), flushed at once so a
    reader of a pipe sees it as it happens."""
    sys.stdout.write(json.dumps(data, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()
