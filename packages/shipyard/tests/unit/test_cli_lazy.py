"""The CLI imports a command's module only when it runs it (or shows its help), and a process
that talks to a remote engine server never loads the engine: a worker or ``--api-url`` command
starts without the deploy tooling, the MCP installer or the store."""

from __future__ import annotations

import json

from fresh_process import fresh_python
from typer.testing import CliRunner

from shipyard.cli.lazy import LAZY_COMMANDS
from shipyard.cli.main import app

LAZY_MODULES = sorted({module for module, _ in LAZY_COMMANDS.values()})


def test_importing_the_cli_leaves_every_lazy_command_unimported() -> None:
    loaded = json.loads(
        fresh_python(
            "import json, sys\n"
            "import shipyard.cli.main\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('shipyard.'))))\n"
        )
    )
    assert [m for m in LAZY_MODULES if m in loaded] == []
    assert "shipyard.tooling.deploy.plan" not in loaded
    assert "shipyard.mcp.install" not in loaded


def test_a_lazy_command_is_listed_then_imported_when_named() -> None:
    out = json.loads(
        fresh_python(
            "import json, sys, typer\n"
            "from shipyard.cli.main import app\n"
            "group = typer.main.get_command(app)\n"
            "ctx = typer.Context(group)\n"
            "names = group.list_commands(ctx)\n"
            "before = 'shipyard.cli.deploy' in sys.modules\n"
            "deploy = group.get_command(ctx, 'deploy')\n"
            "print(json.dumps({'names': names, 'before': before,\n"
            "    'after': 'shipyard.cli.deploy' in sys.modules,\n"
            "    'subcommands': sorted(deploy.commands)}))\n"
        )
    )
    assert set(LAZY_COMMANDS) <= set(out["names"])
    assert len(out["names"]) == len(set(out["names"]))
    assert out["before"] is False and out["after"] is True
    assert out["subcommands"] == ["cleanup"]


def test_a_lazy_command_runs_and_a_typo_is_matched_against_it() -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["commit-msg", "--help"])
    assert done.exit_code == 0, done.output
    assert "commit message" in done.output
    typo = runner.invoke(app, ["deplyo"])
    assert typo.exit_code == 2
    assert "deploy" in typo.output


def test_a_remote_backend_never_loads_the_engine() -> None:
    out = json.loads(
        fresh_python(
            "import json, sys\n"
            "import shipyard.cli.main, shipyard\n"
            "from shipyard.sdk.backend import default_backend\n"
            "shipyard.configure(api_url='http://127.0.0.1:9', secret_key='k' * 32)\n"
            "remote = type(default_backend()).__name__\n"
            "loaded = 'shipyard.engine.engine' in sys.modules\n"
            "shipyard.configure(database_url='sqlite:///:memory:')\n"
            "local = type(default_backend()).__name__\n"
            "print(json.dumps({'remote': remote, 'loaded': loaded, 'local': local}))\n"
        )
    )
    assert out == {"remote": "RemoteClient", "loaded": False, "local": "Engine"}
