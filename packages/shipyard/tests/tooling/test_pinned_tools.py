"""Every tool the template runs through ``npx`` (or ``uv tool run``) is pinned to a version.

An unpinned ``npx tool`` (or the "latest" tag) runs whatever was published last: a deploy or an
agent session that worked yesterday can break (or run something else) today. The repository is
scanned for the moving tag, and the deploy's and ``.mcp.json``'s commands for exact versions.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from shipyard.tooling.deploy import cloudflare, supabase

REPO_ROOT = Path(__file__).resolve().parents[4]
MOVING = "@" + "latest"  # spelled in two parts so this file does not match itself
EXACT = re.compile(r"(@?[a-z0-9][a-z0-9._/-]*)@(\d+\.\d+\.\d+)")


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [REPO_ROOT / name for name in listed if (REPO_ROOT / name).is_file()]


def test_no_file_asks_for_the_latest_version() -> None:
    offenders = []
    for path in tracked_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if MOVING in line:
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}")
    assert offenders == [], "\n".join(offenders)


def test_mcp_servers_run_through_npx_are_pinned() -> None:
    servers = json.loads((REPO_ROOT / ".mcp.json").read_text())["mcpServers"]
    for name, server in servers.items():
        if server.get("command") != "npx":
            continue
        packages = [a for a in server["args"] if not a.startswith("-")]
        assert packages and EXACT.fullmatch(packages[0]), (name, server["args"])


def test_deploy_tools_are_pinned() -> None:
    def which(name: str) -> str | None:
        return f"/usr/bin/{name}" if name in ("npx", "uv") else None

    tools = cloudflare.find_tools(which)
    assert tools.wrangler == ("npx", "--yes", f"wrangler@{cloudflare.WRANGLER_VERSION}")
    assert tools.sync[:5] == ("uv", "tool", "run", "--from", "workers-py==1.17.9")
    assert supabase.find_tool(which) == (
        "npx",
        "--yes",
        f"supabase@{supabase.SUPABASE_CLI_VERSION}",
    )
    for version in (
        cloudflare.WRANGLER_VERSION,
        cloudflare.WORKERS_PY_VERSION,
        supabase.SUPABASE_CLI_VERSION,
    ):
        assert re.fullmatch(r"\d+\.\d+\.\d+", version)
