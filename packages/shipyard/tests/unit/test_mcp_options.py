"""The MCP server's flags and the schema values that mirror the engine's."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from fresh_process import fresh_python

from shipyard.config import load_settings
from shipyard.errors import ConfigError
from shipyard.machines import MACHINES
from shipyard.mcp.context import McpOptions, check_dev_only, database_host
from shipyard.mcp.runs import StatusName
from shipyard.mcp.server import ALL_TOOLS, visible_tools
from shipyard.mcp.tasks import MachineName
from shipyard.statuses import RunStatus


def test_schema_enums_match_the_engine() -> None:
    assert set(typing.get_args(StatusName)) == {str(s) for s in RunStatus}
    assert set(typing.get_args(MachineName)) == set(MACHINES)


def test_tool_names_are_unique_and_readonly_keeps_only_reads() -> None:
    names = [t.name for t in ALL_TOOLS]
    assert len(names) == len(set(names))
    assert all(not t.changes for t in visible_tools(McpOptions(readonly=True)))
    assert visible_tools(McpOptions()) == ALL_TOOLS


def test_api_url_comes_from_the_flag_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIPYARD_API_URL", raising=False)
    assert McpOptions.from_flags().api_url is None
    monkeypatch.setenv("SHIPYARD_API_URL", "https://env.example.com")
    assert McpOptions.from_flags().api_url == "https://env.example.com"
    assert McpOptions.from_flags(api_url="https://flag.example.com").api_url == (
        "https://flag.example.com"
    )


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("sqlite:///.shipyard/shipyard.db", None),
        ("postgresql://postgres@127.0.0.1:5432/app", "127.0.0.1"),
        ("postgresql:///app", ""),
        ("postgres://user:pw@localhost/app", "localhost"),
        ("postgresql://user:pw@db.internal:5432/app", "db.internal"),
    ],
)
def test_database_host(url: str, host: str | None) -> None:
    assert database_host(url) == host


@pytest.mark.parametrize(
    "url",
    ["sqlite:///x.db", "postgresql://postgres@127.0.0.1:5432/app", "postgresql:///app"],
)
def test_dev_only_accepts_local_databases(tmp_path: Path, url: str) -> None:
    check_dev_only(load_settings(project_root=tmp_path, database_url=url))


def test_dev_only_names_every_problem(tmp_path: Path) -> None:
    settings = load_settings(
        project_root=tmp_path,
        environment="production",
        database_url="postgresql://app:hunter2@db.example.com/app",
    )
    with pytest.raises(ConfigError) as caught:
        check_dev_only(settings)
    message = caught.value.message
    assert "its environment is 'production'" in message
    assert "its database is on 'db.example.com'" in message
    assert "hunter2" not in message


def test_the_cli_does_not_import_the_mcp_sdk_until_shipyard_mcp_runs() -> None:
    probe = "import sys, shipyard.cli.main; print('mcp' in sys.modules)"
    assert fresh_python(probe).strip() == "False"
