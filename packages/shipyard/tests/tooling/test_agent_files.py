"""The files agents read are true to the code: skills, the agent brief, CLAUDE.md, .mcp.json.

Every ``shipyard <command>`` they mention must exist in the CLI, every path they name in
backticks must exist, every MCP tool they name must be one the ``shipyard`` MCP server has, and
every SKILL.md needs YAML frontmatter whose ``name`` is its folder and whose ``description``
says what it does and when to use it.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from shipyard.cli.main import app
from shipyard.mcp.install import server_entry
from shipyard.mcp.server import ALL_TOOLS

REPO_ROOT = Path(__file__).resolve().parents[4]
SKILLS = REPO_ROOT / ".claude" / "skills"
AGENT_FILES = [
    REPO_ROOT / "CLAUDE.md",
    REPO_ROOT / "README.md",
    REPO_ROOT / "docs" / "deploy.md",
    REPO_ROOT / "docs" / "mcp.md",
    *sorted(SKILLS.glob("*/SKILL.md")),
    *sorted((REPO_ROOT / ".claude" / "agents").glob("*.md")),
]
COMMAND = re.compile(r"(?<!from )\bshipyard ([a-z][a-z-]*)(?: ([a-z][a-z|-]*))?")
GENERATED = {".shipyard", ".venv", ".git"}  # made by running the tools, not in a clone
SKILL_COMMANDS = {"dependencies": "deps", "check-envs": "check-envs", "deployment": "deploy"}
PATH = re.compile(r"`([A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-*]*)+)`")
# An MCP tool is named verb_noun in backticks: `get_run_details`, `pause_queue` …
TOOL_MENTION = re.compile(
    r"`((?:get|list|trigger|wait|cancel|replay|complete|pause|resume|search|start|stop|dev)"
    r"(?:_[a-z]+)+)`"
)
TOOL_NAMES = {tool.name for tool in ALL_TOOLS}
PLANNED_TOOLS: set[str] = set()  # tools docs may name before they exist


def frontmatter(path: Path) -> dict[str, object]:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n"), f"{path} has no frontmatter"
    block = text.split("---\n", 2)[1]
    data = yaml.safe_load(block)
    assert isinstance(data, dict), f"{path}: frontmatter is not a mapping"
    return data


def test_the_three_skills_exist() -> None:
    assert sorted(p.name for p in SKILLS.iterdir() if p.is_dir()) == [
        "check-envs",
        "dependencies",
        "deployment",
    ]


@pytest.mark.parametrize("skill", sorted(SKILLS.glob("*/SKILL.md")), ids=lambda p: p.parent.name)
def test_skill_frontmatter(skill: Path) -> None:
    data = frontmatter(skill)
    assert data["name"] == skill.parent.name
    description = data["description"]
    assert isinstance(description, str) and len(description) > 40
    assert "Use when" in description  # says when, not only what


@pytest.mark.parametrize("skill", sorted(SKILLS.iterdir()), ids=lambda p: p.name)
def test_skill_scripts_are_python_for_every_os(skill: Path) -> None:
    # Bytecode caches (git ignores them) appear once a script has been imported.
    scripts = sorted(p for p in (skill / "scripts").iterdir() if p.name != "__pycache__")
    assert scripts, f"{skill.name} has no scripts"
    for script in scripts:
        assert script.suffix == ".py", f"{script} is not Python"
        spec = importlib.util.spec_from_file_location(f"skill_{skill.name}_{script.stem}", script)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # compiles and imports; main() runs only as a script
        assert module.ROOT == REPO_ROOT
        assert f'"shipyard", "{SKILL_COMMANDS[skill.name]}"' in script.read_text()


def test_agent_brief_frontmatter() -> None:
    agent = REPO_ROOT / ".claude" / "agents" / "shipyard-task-writer.md"
    data = frontmatter(agent)
    assert data["name"] == agent.stem
    assert isinstance(data["description"], str) and "Use when" in data["description"]


def _cli() -> Any:
    command = typer.main.get_command(app)
    assert hasattr(command, "commands")
    return command


def mentioned_commands() -> list[tuple[str, str, str | None]]:
    found = []
    for path in AGENT_FILES:
        for match in COMMAND.finditer(path.read_text(encoding="utf-8")):
            found.append((path.name, match.group(1), match.group(2)))
    return found


def test_every_shipyard_command_mentioned_exists() -> None:
    cli = _cli()
    mentioned = mentioned_commands()
    names = {name for _, name, _ in mentioned}
    for expected in ("dev", "worker", "trigger", "runs", "tasks", "migrate", "check-envs"):
        assert expected in names, f"CLAUDE.md and the skills never mention shipyard {expected}"
    for expected in ("deps", "deploy", "commit-msg"):
        assert expected in names
    ctx = typer.Context(cli)
    for source, name, sub in mentioned:
        command = cli.get_command(ctx, name)
        assert command is not None, f"{source} mentions `shipyard {name}`, which does not exist"
        if hasattr(command, "commands") and sub:
            for part in sub.split("|"):
                assert part in command.commands, (
                    f"{source} mentions `shipyard {name} {part}`, which does not exist"
                )
    assert {"list", "get", "cancel", "replay"} <= set(cli.get_command(ctx, "runs").commands)
    assert "cleanup" in cli.get_command(ctx, "deploy").commands


@pytest.mark.parametrize("path", AGENT_FILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_path_named_exists(path: Path) -> None:
    for match in PATH.finditer(path.read_text(encoding="utf-8")):
        name = match.group(1).rstrip("/")
        first = name.split("/")[0]
        if first in GENERATED or "*" in name:
            continue
        here = path.parent / name
        if not (REPO_ROOT / first).exists() and not here.exists():
            continue  # not a path in this repository (a branch name such as feature/login)
        if not (REPO_ROOT / name).exists() and not here.exists():
            pytest.fail(f"{path.name} names `{name}`, which does not exist")


def section(path: Path, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    text = path.read_text(encoding="utf-8")
    level = heading.split(" ")[0]
    start = text.index(heading + "\n")
    rest = text[start + len(heading) + 1 :]
    ends = [m.start() for m in re.finditer(rf"^#{{1,{len(level)}}} ", rest, re.MULTILINE)]
    return rest[: ends[0]] if ends else rest


MCP_SECTIONS = [
    (REPO_ROOT / "CLAUDE.md", "## MCP servers"),
    (
        REPO_ROOT / ".claude" / "agents" / "shipyard-task-writer.md",
        "## Try it with the Shipyard MCP tools",
    ),
    (REPO_ROOT / "docs" / "mcp.md", "## Tools"),
]


@pytest.mark.parametrize(("path", "heading"), MCP_SECTIONS, ids=lambda v: getattr(v, "name", v))
def test_every_mcp_tool_named_exists(path: Path, heading: str) -> None:
    named = set(TOOL_MENTION.findall(section(path, heading)))
    assert named, f"{path.name} {heading} names no MCP tool"
    unknown = sorted(named - TOOL_NAMES - PLANNED_TOOLS)
    assert not unknown, f"{path.name} names MCP tools that do not exist: {unknown}"
    assert not PLANNED_TOOLS & TOOL_NAMES, "a planned tool exists now: drop it from PLANNED_TOOLS"


def test_claude_md_and_docs_cover_every_mcp_tool() -> None:
    claude = set(TOOL_MENTION.findall(section(REPO_ROOT / "CLAUDE.md", "## MCP servers")))
    assert claude >= TOOL_NAMES, f"CLAUDE.md does not say when to use {TOOL_NAMES - claude}"
    docs = (REPO_ROOT / "docs" / "mcp.md").read_text()
    headings = re.findall(r"^### (.+)$", docs, re.MULTILINE)
    documented = {name.strip() for line in headings for name in line.split(",")}
    assert documented == TOOL_NAMES


def test_mcp_servers() -> None:
    config = json.loads((REPO_ROOT / ".mcp.json").read_text())
    servers = config["mcpServers"]
    assert servers["shipyard"] == server_entry("claude-code")
    assert servers["supabase"] == {"type": "http", "url": "https://mcp.supabase.com/mcp"}
    assert servers["playwright"]["type"] == "stdio"
    assert [servers["playwright"]["command"], *servers["playwright"]["args"]] == [
        "npx",
        "--yes",
        "@playwright/mcp@0.0.83",
    ]


def test_claude_md_lists_the_commit_rules_the_hook_enforces() -> None:
    from shipyard.tooling.commitmsg import MAX_BODY_LINE, MAX_HEADER, TYPES

    text = (REPO_ROOT / "CLAUDE.md").read_text()
    for kind in TYPES:
        assert f"`{kind}`" in text
    assert f"at most {MAX_HEADER} characters" in text
    assert f"body lines at most {MAX_BODY_LINE}" in text
