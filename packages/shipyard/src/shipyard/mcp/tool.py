"""What one MCP tool is: a name, a description for agents, typed arguments and a handler.

Every tool module (``tasks.py``, ``runs.py`` …) exports a ``TOOLS`` list of :class:`Tool`.
Arguments are a pydantic model per tool: its JSON Schema (with descriptions and bounds) is the
tool's ``inputSchema``, and the same model validates a call's arguments, so the schema an
agent sees and the checks a call gets cannot drift apart.

Example::

    class CancelRunArguments(Arguments):
        run_id: str = Field(description="The run to cancel (run_…).")

    async def cancel_run(context: ToolContext, args: CancelRunArguments) -> Output:
        ...

    TOOLS = [Tool("cancel_run", "Cancel a run …", CancelRunArguments, cancel_run, changes=True)]
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from shipyard.mcp.context import ToolContext


class Arguments(BaseModel):
    """Base of every tool's arguments: unknown arguments are refused (a typo is an error)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


@dataclass(slots=True)
class Output:
    """A tool's result: ``data`` (a JSON object, sent as structured content and as JSON text)
    and optional extra ``text`` blocks meant to be read as they are (an indented trace)."""

    data: dict[str, Any]
    text: list[str] = field(default_factory=list)


Handler = Callable[["ToolContext", Any], Awaitable[Output]]


@dataclass(frozen=True, slots=True)
class Tool:
    """One MCP tool.

    ``changes``: the tool changes something (hidden by ``--readonly``). ``engine``: it reads or
    writes the engine (refused when the engine is remote or, with ``--dev-only``, not the local
    development one).
    """

    name: str
    description: str
    arguments: type[Arguments]
    handler: Handler
    changes: bool = False
    engine: bool = True
    title: str = ""

    def input_schema(self) -> dict[str, Any]:
        """The arguments' JSON Schema, as ``tools/list`` reports it.

        Pydantic's output is trimmed of what only adds tokens for an agent: titles, the model's
        docstring, and the ``null`` alternative of optional arguments (leaving one out is how
        an agent says "none"; an explicit null is still accepted).
        """
        schema = self.arguments.model_json_schema(by_alias=True)
        schema.pop("title", None)
        schema.pop("description", None)
        properties: dict[str, Any] = schema.setdefault("properties", {})
        for prop in properties.values():
            _trim_optional(prop)
        return schema


def _trim_optional(prop: dict[str, Any]) -> None:
    prop.pop("title", None)
    alternatives = prop.get("anyOf")
    if alternatives is None or "default" not in prop or prop["default"] is not None:
        return
    rest = [alt for alt in alternatives if alt != {"type": "null"}]
    del prop["default"]
    if len(rest) == 1:
        del prop["anyOf"]
        prop.update({k: v for k, v in rest[0].items() if k not in prop})
    else:
        prop["anyOf"] = rest


def iso(ms: int | None) -> str | None:
    """Epoch milliseconds as an ISO-8601 UTC string (None stays None)."""
    if ms is None:
        return None
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_json_text(data: Any) -> str:
    """JSON for a text content block: indented, dates and other objects as strings."""
    return json.dumps(data, indent=2, default=str, ensure_ascii=False)
