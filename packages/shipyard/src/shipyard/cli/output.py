"""How the CLI prints: rich tables for people, ``--json`` for scripts, errors on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console

from shipyard.errors import ShipyardError, UnknownTaskError, ValidationError

console = Console()
err_console = Console(stderr=True)


def fail(error: ShipyardError | str, code: int | None = None) -> NoReturn:
    """Print an error as one clear line and exit (2 for bad input, 1 otherwise)."""
    message = error.message if isinstance(error, ShipyardError) else error
    # soft_wrap: one line even when stderr is not a terminal (rich wraps at 80 columns).
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    if code is None:
        code = 2 if isinstance(error, ValidationError | UnknownTaskError) else 1
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    """Machine-readable output on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
