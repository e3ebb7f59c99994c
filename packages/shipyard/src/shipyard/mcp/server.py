"""The MCP server: the tools, the flags that hide or refuse them, and the stdio transport.

Built on the official SDK's low-level server (``mcp.server.Server``): ``tools/list`` returns
each tool's description and JSON input schema, ``tools/call`` validates the arguments with the
tool's model and runs it. Whatever goes wrong comes back as a tool error (``isError``) whose
text is the message the CLI would print — never a traceback, which goes to the log (stderr).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from pydantic import ValidationError as PydanticValidationError

from shipyard.errors import ShipyardError
from shipyard.extras import missing_extra

try:
    import mcp.types as types
    from mcp.server import Server
except ImportError as exc:  # a light install: say which extra has the MCP SDK
    raise missing_extra(exc, "engine", "The MCP server (shipyard mcp)") from None
from shipyard.mcp import devserver, docs, queues, runs, schedules, tasks, tokens
from shipyard.mcp.context import McpOptions, ToolContext
from shipyard.mcp.tool import Output, Tool, to_json_text
from shipyard.version import __version__

log = logging.getLogger("shipyard.mcp")

ALL_TOOLS: list[Tool] = [
    *tasks.TOOLS,
    *runs.TOOLS,
    *tokens.TOOLS,
    *queues.TOOLS,
    *schedules.TOOLS,
    *docs.TOOLS,
    *devserver.TOOLS,
]

INSTRUCTIONS = """\
Shipyard runs durable background tasks (Python functions in trigger/) with Trigger.dev v4
semantics. Typical loop: get_current_worker (task ids and payload schemas) → trigger_task →
wait_for_run_to_complete → get_run_details (debug=true for logs and the span trace). Runs stay
QUEUED while no worker runs: start_dev_server starts the local stack. search_docs answers
questions about retries, queues, waits, idempotency and deploys from the project's docs."""


def visible_tools(options: McpOptions) -> list[Tool]:
    """The tools this server offers: all of them, less those that change something when
    ``readonly``."""
    return [t for t in ALL_TOOLS if not (options.readonly and t.changes)]


def _annotations(tool: Tool) -> types.ToolAnnotations:
    return types.ToolAnnotations(
        title=tool.title or None,
        read_only_hint=not tool.changes,
        destructive_hint=tool.name in ("cancel_run", "stop_dev_server") or None,
        open_world_hint=False,
    )


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)], is_error=True
    )


def _result(output: Output) -> types.CallToolResult:
    blocks = [to_json_text(output.data), *output.text]
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text) for text in blocks],
        structured_content=output.data,
    )


def _arguments_error(tool: Tool, exc: PydanticValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "arguments"
        problems.append(f"{where}: {error['msg']}")
    return f"Invalid arguments for {tool.name}: " + "; ".join(problems) + "."


class ShipyardMcpServer:
    """The tools of one server process over a :class:`ToolContext`."""

    def __init__(self, context: ToolContext) -> None:
        self.context = context
        self.tools = {t.name: t for t in visible_tools(context.options)}

    def list_tools(self) -> list[types.Tool]:
        """Every visible tool with its description, input schema and hints."""
        return [
            types.Tool(
                name=tool.name,
                title=tool.title or None,
                description=tool.description,
                input_schema=tool.input_schema(),
                annotations=_annotations(tool),
            )
            for tool in self.tools.values()
        ]

    async def call_tool(self, name: str, arguments: dict[str, Any] | None) -> types.CallToolResult:
        """Run a tool; every failure is a tool error with a clear message."""
        tool = self.tools.get(name)
        if tool is None:
            hidden = any(t.name == name for t in ALL_TOOLS)
            if hidden:
                return _error(
                    f"{name} is not available: this server runs with --readonly, which hides "
                    "every tool that changes something."
                )
            return _error(f"Unknown tool {name!r}; available: {', '.join(self.tools)}.")
        try:
            args = tool.arguments.model_validate(arguments or {})
        except PydanticValidationError as exc:
            return _error(_arguments_error(tool, exc))
        try:
            if tool.engine:
                self.context.check_engine_allowed()
            return _result(await tool.handler(self.context, args))
        except ShipyardError as exc:
            return _error(exc.message)
        except Exception as exc:
            # A bug, not bad input: the traceback goes to the log, the agent gets one line.
            log.exception("tool %s failed", name)
            return _error(f"{name} failed: {type(exc).__name__}: {exc}")

    def build(self) -> Server[Any]:
        """The SDK server object that serves these tools."""

        async def on_list_tools(
            ctx: Any, params: types.PaginatedRequestParams | None
        ) -> types.ListToolsResult:
            return types.ListToolsResult(tools=self.list_tools())

        async def on_call_tool(
            ctx: Any, params: types.CallToolRequestParams
        ) -> types.CallToolResult:
            return await self.call_tool(params.name, params.arguments)

        @asynccontextmanager
        async def lifespan(_: Server[Any]) -> AsyncIterator[dict[str, Any]]:
            try:
                yield {}
            finally:
                # Shielded: on SIGTERM the serving task is cancelled, and the dev server this
                # process started must still be stopped and the engine closed.
                with anyio.CancelScope(shield=True):
                    await self.context.close()

        return Server(
            "shipyard",
            version=__version__,
            title="Shipyard",
            description="Tasks, runs, queues, docs and the dev server of a Shipyard project.",
            instructions=INSTRUCTIONS,
            lifespan=lifespan,
            on_list_tools=on_list_tools,
            on_call_tool=on_call_tool,
        )


def build_server(options: McpOptions, context: ToolContext | None = None) -> Server[Any]:
    """The MCP server for ``options`` (tests pass a context holding their engine)."""
    return ShipyardMcpServer(context or ToolContext(options)).build()


async def serve_stdio(options: McpOptions) -> None:
    """Serve MCP over this process's stdin/stdout until the client closes them."""
    from mcp.server.stdio import stdio_server

    server = build_server(options)
    serving = asyncio.current_task()
    if serving is not None:
        # SIGTERM (how clients stop servers) ends the session like a closed stdin does.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, serving.cancel)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())
