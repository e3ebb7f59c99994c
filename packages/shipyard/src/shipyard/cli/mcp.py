"""``shipyard mcp`` and ``shipyard install-mcp``: the command-line side of the MCP server.

The MCP SDK is imported only when ``shipyard mcp`` runs, so other commands start as fast as
before.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.output import console, err_console, fail
from shipyard.errors import ShipyardError
from shipyard.mcp.context import API_URL_ENV
from shipyard.mcp.install import CLIENTS, plan_install


def mcp(
    readonly: Annotated[
        bool,
        typer.Option(
            "--readonly",
            help="Hide every tool that changes something (trigger, cancel, replay, tokens, "
            "queues, dev server).",
        ),
    ] = False,
    dev_only: Annotated[
        bool,
        typer.Option(
            "--dev-only",
            help="Refuse any engine that is not the local development one.",
        ),
    ] = False,
    api_url: Annotated[
        str | None,
        typer.Option(
            "--api-url",
            envvar=API_URL_ENV,
            help="A remote engine server's URL: the tools reach it over HTTP (SHIPYARD_SECRET_KEY "
            "is the key).",
        ),
    ] = None,
) -> None:
    """Run the MCP server over stdio, for coding agents (see docs/mcp.md)."""
    import asyncio
    import contextlib
    import logging

    from shipyard.cli.session import require_extra

    require_extra("engine", "shipyard mcp", ("mcp",))
    from shipyard.mcp.context import McpOptions
    from shipyard.mcp.server import serve_stdio

    # stdout is the MCP transport: logs go to stderr only (basicConfig's default stream).
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    options = McpOptions.from_flags(readonly=readonly, dev_only=dev_only, api_url=api_url)
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(serve_stdio(options))


def install_mcp(
    client: Annotated[
        str,
        typer.Option("--client", help=f"The coding client: {', '.join(CLIENTS)}."),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the merged file; write nothing.")
    ] = False,
    readonly: Annotated[
        bool, typer.Option("--readonly", help="Install the server with --readonly.")
    ] = False,
    dev_only: Annotated[
        bool, typer.Option("--dev-only", help="Install the server with --dev-only.")
    ] = False,
    root: Annotated[
        Path | None,
        typer.Option("--root", help="Project folder (default: found from the current one)."),
    ] = None,
) -> None:
    """Add the shipyard MCP server to a client's project config, keeping its other servers."""
    from shipyard.config import find_project_root

    flags = [flag for flag, on in (("--readonly", readonly), ("--dev-only", dev_only)) if on]
    folder = (root or find_project_root()).resolve()
    try:
        change = plan_install(client, folder, flags)
    except ShipyardError as exc:
        fail(exc)
    shown = change.path.relative_to(folder).as_posix()
    if dry_run:
        # The header on stderr: stdout is the file exactly as it would be written.
        err_console.print(f"{shown} ({'would change' if change.changed else 'unchanged'}):")
        sys.stdout.write(change.content)
        return
    if not change.changed:
        console.print(f"{shown} already has the shipyard server; nothing changed.")
        return
    change.write()
    verb = "Updated" if change.replaced else "Added"
    console.print(
        f"{verb} the shipyard server in {shown}. Restart {client} to load it "
        "(its other servers are unchanged)."
    )
