"""``shipyard install-mcp``: each client's file gains the server, keeping everything else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.mcp.install import CONFIGS, server_entry

runner = CliRunner()
OTHER = {"type": "stdio", "command": "npx", "args": ["some-other-server"]}


def install(root: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["install-mcp", "--root", str(root), *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("client", sorted(CONFIGS))
def test_merges_into_an_existing_file_and_is_idempotent(tmp_path: Path, client: str) -> None:
    config = CONFIGS[client]  # type: ignore[index]
    path = tmp_path / config.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"inputs": [{"id": "token"}], config.key: {"other": OTHER}}))

    code, output = install(tmp_path, "--client", client)
    assert code == 0, output
    assert "Added the shipyard server" in output
    data = json.loads(path.read_text())
    assert data["inputs"] == [{"id": "token"}]  # keys besides the servers are kept
    assert data[config.key]["other"] == OTHER
    assert data[config.key]["shipyard"] == server_entry(client)  # type: ignore[arg-type]
    assert data[config.key]["shipyard"]["args"] == ["run", "shipyard", "mcp"]

    before = path.read_bytes()
    code, output = install(tmp_path, "--client", client)
    assert code == 0 and "nothing changed" in output
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        (
            "claude-code",
            {"type": "stdio", "command": "uv", "args": ["run", "shipyard", "mcp"]},
        ),
        ("cursor", {"command": "uv", "args": ["run", "shipyard", "mcp"]}),
        (
            "vscode",
            {
                "type": "stdio",
                "command": "uv",
                "args": ["run", "shipyard", "mcp"],
                "cwd": "${workspaceFolder}",
            },
        ),
    ],
)
def test_creates_the_file_with_the_clients_shape(
    tmp_path: Path, client: str, expected: dict[str, object]
) -> None:
    code, output = install(tmp_path, "--client", client)
    assert code == 0, output
    config = CONFIGS[client]  # type: ignore[index]
    assert json.loads((tmp_path / config.path).read_text()) == {config.key: {"shipyard": expected}}


def test_flags_update_the_entry_in_place(tmp_path: Path) -> None:
    install(tmp_path, "--client", "cursor")
    code, output = install(tmp_path, "--client", "cursor", "--readonly", "--dev-only")
    assert code == 0 and "Updated the shipyard server" in output
    data = json.loads((tmp_path / ".cursor" / "mcp.json").read_text())
    assert data["mcpServers"]["shipyard"]["args"] == [
        "run",
        "shipyard",
        "mcp",
        "--readonly",
        "--dev-only",
    ]


def test_dry_run_prints_the_merged_file_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / ".mcp.json"
    path.write_text(json.dumps({"mcpServers": {"other": OTHER}}))
    before = path.read_bytes()
    result = CliRunner().invoke(
        app, ["install-mcp", "--root", str(tmp_path), "--client", "claude-code", "--dry-run"]
    )
    assert result.exit_code == 0
    assert path.read_bytes() == before
    printed = json.loads(result.stdout[result.stdout.index("{") :])
    assert set(printed["mcpServers"]) == {"other", "shipyard"}


def test_invalid_json_is_left_alone_with_an_error(tmp_path: Path) -> None:
    path = tmp_path / ".vscode" / "mcp.json"
    path.parent.mkdir()
    path.write_text('{"servers": {"other": ')
    code, output = install(tmp_path, "--client", "vscode")
    assert code == 1
    assert "is not valid JSON" in output and "nothing was changed" in output
    assert path.read_text() == '{"servers": {"other": '


def test_an_unknown_client_is_refused(tmp_path: Path) -> None:
    code, output = install(tmp_path, "--client", "zed")
    assert code == 2
    assert "Unknown client 'zed'; one of claude-code, cursor, vscode." in output
    assert not any(tmp_path.iterdir())


def test_the_repository_mcp_json_already_has_the_server() -> None:
    root = Path(__file__).resolve().parents[4]
    code, output = install(root, "--client", "claude-code", "--dry-run")
    assert code == 0 and "unchanged" in output
