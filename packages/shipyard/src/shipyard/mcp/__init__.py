"""``shipyard mcp``: an MCP server that lets coding agents see, trigger, watch and debug tasks.

Tools are named as Trigger.dev's MCP server names them (``get_current_worker``,
``trigger_task``, ``get_run_details``, ``wait_for_run_to_complete`` …), so an agent that knows
one knows the other. One module per noun: ``tasks``, ``runs``, ``tokens``, ``queues``,
``docs``, ``devserver``; ``server`` assembles them and ``install`` writes the clients' config
files. See ``docs/mcp.md``.

The names below are imported on first use: the CLI imports this package for its commands and
must not pay for the MCP SDK unless ``shipyard mcp`` runs.

Example::

    from shipyard.mcp import McpOptions, build_server

    server = build_server(McpOptions(readonly=True))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.mcp.context import McpOptions, ToolContext
    from shipyard.mcp.server import build_server, serve_stdio

__all__ = ["McpOptions", "ToolContext", "build_server", "serve_stdio"]
_HOMES = {
    "McpOptions": "shipyard.mcp.context",
    "ToolContext": "shipyard.mcp.context",
    "build_server": "shipyard.mcp.server",
    "serve_stdio": "shipyard.mcp.server",
}


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first access."""
    if name not in _HOMES:
        raise AttributeError(f"module 'shipyard.mcp' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
