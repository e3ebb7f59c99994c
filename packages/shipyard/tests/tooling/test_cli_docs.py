"""``docs/cli.md`` is true to the CLI: one row per command, every option named in its row, a
JSON shape exactly for the commands that take ``--json``, and nothing that does not exist."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from shipyard.cli.main import app

REPO_ROOT = Path(__file__).resolve().parents[4]
DOC = REPO_ROOT / "docs" / "cli.md"
CELL = re.compile(r"(?<!\\)\|")  # a table cell separator: a pipe not escaped as \|


def commands(group: Any, prefix: str = "") -> dict[str, Any]:
    """Every runnable command by its path (``runs logs``); groups with a callback count too.

    Typer ships its own click: groups are told apart by their ``commands``."""
    found: dict[str, Any] = {}
    ctx = typer.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        path = f"{prefix}{name}"
        if hasattr(command, "commands"):
            if command.invoke_without_command:  # `shipyard deploy` runs by itself
                found[path] = command
            found.update(commands(command, path + " "))
        else:
            found[path] = command
    return found


def rows() -> dict[str, tuple[str, str]]:
    """``{command cell: (description, json)}`` of the commands table."""
    found = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in CELL.split(line)]
        if len(cells) == 5 and cells[1].startswith("`shipyard "):
            command = cells[1].removeprefix("`shipyard ").removesuffix("`")
            found[command.replace("\\|", "|")] = (cells[2], cells[3])
    return found


def row_of(path: str, table: dict[str, tuple[str, str]]) -> tuple[str, str, str]:
    matching = [
        cell for cell in table if cell == path or re.match(rf"{re.escape(path)} [A-Z\[-]", cell)
    ]
    assert len(matching) == 1, f"docs/cli.md has {len(matching)} rows for `shipyard {path}`"
    return matching[0], *table[matching[0]]


def options(command: Any) -> set[str]:
    """The option names of a command (``--json``, ``-f`` …), ``--help`` left out."""
    return {
        opt
        for param in command.params
        if param.param_type_name == "option"
        for opt in (*param.opts, *param.secondary_opts)
        if opt != "--help"
    }


def test_every_command_has_a_row_naming_each_of_its_options() -> None:
    table = rows()
    documented = set()
    for path, command in commands(typer.main.get_command(app)).items():
        cell, _, shape = row_of(path, table)
        documented.add(cell)
        names = {name for name in options(command) if name.startswith("--")}
        for name in names:
            assert re.search(rf"{re.escape(name)}\b", cell), f"`shipyard {path}`: {name} missing"
        has_json = "--json" in names
        assert bool(shape.strip()) == has_json, (
            f"`shipyard {path}`: --json {'is' if has_json else 'is not'} an option, "
            f"but its row {'lacks' if has_json else 'has'} a JSON shape"
        )
    assert set(table) - documented == {"--version"}, "rows for commands that do not exist"


def test_every_documented_option_exists() -> None:
    every = commands(typer.main.get_command(app))
    for cell in rows():
        if cell == "--version":
            continue
        path = next(p for p in sorted(every, key=len, reverse=True) if cell.startswith(p))
        real = options(every[path])
        for name in re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-z])\b", cell):
            assert name in real, f"docs/cli.md: `shipyard {path}` has no option {name}"
