"""``shipyard install-mcp``: add the ``shipyard`` server to a coding client's project config.

Each client keeps project-level MCP servers in its own file and key:

========================  =====================  ============  ==========================
client                    file                   key           entry
========================  =====================  ============  ==========================
``claude-code``           ``.mcp.json``          ``mcpServers`` ``type: stdio``
``cursor``                ``.cursor/mcp.json``   ``mcpServers`` command and args
``vscode``                ``.vscode/mcp.json``   ``servers``    ``type: stdio``, ``cwd``
========================  =====================  ============  ==========================

The file is merged, never overwritten: other servers and keys stay as they are, and a file that
already holds the same entry is not rewritten (running it twice changes nothing). A file that
is not valid JSON is left alone with an error.

Example::

    change = plan_install("cursor", Path("."))
    if change.changed:
        change.write()
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from shipyard.errors import ConfigError, ValidationError

Client = Literal["claude-code", "cursor", "vscode"]
CLIENTS: tuple[Client, ...] = ("claude-code", "cursor", "vscode")
SERVER_NAME = "shipyard"
COMMAND = ["uv", "run", "shipyard", "mcp"]


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Where a client keeps project-level MCP servers."""

    path: str
    key: str


CONFIGS: dict[Client, ClientConfig] = {
    "claude-code": ClientConfig(".mcp.json", "mcpServers"),
    "cursor": ClientConfig(".cursor/mcp.json", "mcpServers"),
    "vscode": ClientConfig(".vscode/mcp.json", "servers"),
}


def server_entry(client: Client, flags: list[str] | None = None) -> dict[str, Any]:
    """The ``shipyard`` server's entry in ``client``'s config (``flags``: e.g. --readonly)."""
    command, *args = [*COMMAND, *(flags or [])]
    if client == "claude-code":
        return {"type": "stdio", "command": command, "args": args}
    if client == "vscode":
        return {"type": "stdio", "command": command, "args": args, "cwd": "${workspaceFolder}"}
    return {"command": command, "args": args}


@dataclass(frozen=True, slots=True)
class Installation:
    """The config file of one client after adding the server: what to write, and whether to."""

    client: Client
    path: Path
    content: str
    changed: bool
    replaced: bool

    def write(self) -> None:
        """Write the merged file (creating its folder)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(self.content)


def plan_install(client: str, root: Path, flags: list[str] | None = None) -> Installation:
    """The merged config of ``client`` under ``root`` with the ``shipyard`` server in it."""
    if client not in CONFIGS:
        raise ValidationError(
            f"Unknown client {client!r}; one of {', '.join(CLIENTS)}.", client=client
        )
    config = CONFIGS[client]
    path = root / config.path
    data: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = json.loads(path.read_text() or "{}")
        except ValueError as exc:
            raise ConfigError(
                f"{path} is not valid JSON ({exc}); fix it by hand, nothing was changed."
            ) from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} does not hold a JSON object; nothing was changed.")
        data = loaded
    servers = data.get(config.key)
    if servers is None:
        servers = data[config.key] = {}
    if not isinstance(servers, dict):
        raise ConfigError(f'"{config.key}" in {path} is not a JSON object; nothing was changed.')
    entry = server_entry(client, flags)
    existing = servers.get(SERVER_NAME)
    if existing == entry:
        return Installation(client, path, path.read_text(), changed=False, replaced=False)
    servers[SERVER_NAME] = entry
    content = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return Installation(client, path, content, changed=True, replaced=existing is not None)
