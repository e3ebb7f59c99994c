"""The commands a process imports only when it runs them (click's "lazily loading subcommands").

Every ``shipyard`` process imports the CLI, and a worker (the process the suite and the peers
benchmark start most) or a ``--api-url`` command uses none of the deploy tooling, the MCP
installer, the commit-message rules or the noun groups' models: about a quarter of the CLI's
import time at every start.
:class:`LazyGroup` names them up front (``--help``, typo suggestions) and imports one when it
is run or its help is shown; it is then built by typer exactly as an eager one would be.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperGroup

__all__ = ["LAZY_COMMANDS", "LazyGroup"]

LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "check-envs": ("shipyard.cli.tooling", "check_envs"),
    "deps": ("shipyard.cli.tooling", "deps"),
    "commit-msg": ("shipyard.cli.commitmsg", "commit_msg"),
    "mcp": ("shipyard.cli.mcp", "mcp"),
    "install-mcp": ("shipyard.cli.mcp", "install_mcp"),
    "runs": ("shipyard.cli.runs", "runs_app"),
    "tokens": ("shipyard.cli.tokens", "tokens_app"),
    "queues": ("shipyard.cli.queues", "queues_app"),
    "keys": ("shipyard.cli.keys", "keys_app"),
    "schedules": ("shipyard.cli.schedules", "schedules_app"),
    "deploy": ("shipyard.cli.deploy", "deploy_app"),
}
"""Command name → (module, attribute): a command function or a ``typer.Typer`` group."""


def _build(name: str) -> Any:
    """The click command typer makes of ``name``'s function or group (as ``app.command`` or
    ``app.add_typer`` on the root app would)."""
    module, attribute = LAZY_COMMANDS[name]
    target = getattr(importlib.import_module(module), attribute)
    holder = typer.Typer()
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    return typer.main.get_group(holder).commands[name]


class LazyGroup(TyperGroup):
    """The root command group: the eager commands, then :data:`LAZY_COMMANDS` on demand."""

    def list_commands(self, ctx: Any) -> list[str]:
        """Every command's name, the lazy ones included (unimported until shown)."""
        names = super().list_commands(ctx)
        return names + [name for name in LAZY_COMMANDS if name not in names]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The command named ``cmd_name``, importing it first if it is a lazy one."""
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            self.add_command(_build(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """Resolve as typer does; an unknown name first loads every command, so the "Did
        you mean" suggestion can name a lazy one."""
        if args and args[0] not in self.commands and args[0] not in LAZY_COMMANDS:
            for name in LAZY_COMMANDS:
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)
