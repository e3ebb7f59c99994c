"""``shipyard deps`` with the real ``uv``, on small throwaway workspaces.

A workspace like the template's (a root project, an ``apps/api`` member, a function, and
Shipyard itself from this checkout) is locked and synced into its own ``.venv``: the command
must install it and prove the install by importing and running ``shipyard --version``; a
stale lock and a missing ``uv`` must fail with an actionable message.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.tooling.deps import UV_INSTALL_HINT, workspace_members

REPO_ROOT = Path(__file__).resolve().parents[4]
pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(shutil.which("uv") is None, reason="uv is not on PATH"),
]


def make_workspace(root: Path) -> Path:
    shipyard_src = REPO_ROOT / "packages" / "shipyard"
    (root / "pyproject.toml").write_text(
        '[project]\nname = "demo-root"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        # The template's root takes shipyard[all]; [cli] is what `shipyard deps` itself checks
        # (the command runs), and keeps this throwaway install small.
        'dependencies = ["shipyard[cli]", "demo-api"]\n\n'
        '[tool.uv.workspace]\nmembers = ["apps/*"]\n\n'
        "[tool.uv.sources]\n"
        f'shipyard = {{ path = "{shipyard_src}", editable = true }}\n'
        "demo-api = { workspace = true }\n\n[tool.uv]\npackage = false\n\n"
        '[tool.shipyard]\ndirs = ["trigger"]\n'
    )
    api = root / "apps" / "api"
    (api / "src" / "demo_api").mkdir(parents=True)
    (api / "src" / "demo_api" / "__init__.py").write_text("VALUE = 1\n")
    (api / "pyproject.toml").write_text(
        '[project]\nname = "demo-api"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        "dependencies = []\n\n"
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n'
        '[tool.hatch.build.targets.wheel]\npackages = ["src/demo_api"]\n'
    )
    (root / "functions" / "hello").mkdir(parents=True)
    (root / "functions" / "hello" / "main.py").write_text(
        "async def app(scope, receive, send):\n    pass\n"
    )
    (root / "trigger").mkdir()
    return root


def run_deps(root: Path, **env: str) -> tuple[int, str]:
    environment = {"SHIPYARD_PROJECT_ROOT": str(root), "NO_COLOR": "1"}
    environment.update(env)
    result = CliRunner().invoke(app, ["deps"], env=environment, catch_exceptions=False)
    return result.exit_code, result.output


def uv_lock(root: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    subprocess.run(["uv", "lock"], cwd=root, env=env, check=True, capture_output=True, timeout=240)


def test_members_are_read_from_the_workspace(tmp_path: Path) -> None:
    members = workspace_members(make_workspace(tmp_path))
    assert [(m.name, m.imports) for m in members] == [("demo-api", ("demo_api",))]
    template = {m.name: m.imports for m in workspace_members(REPO_ROOT)}
    assert template["shipyard-api"] == ("app",)
    assert template["shipyard"] == ("shipyard",)


def test_installs_and_verifies_a_workspace(tmp_path: Path) -> None:
    root = make_workspace(tmp_path)
    uv_lock(root)
    code, output = run_deps(root)
    assert code == 0, output
    assert "installed 1 workspace member(s): demo-api" in output
    assert "imported demo_api, functions/hello" in output
    assert "shipyard 0.1.0" in output
    assert (root / ".venv").is_dir()
    result = CliRunner().invoke(app, ["deps", "--json"], env={"SHIPYARD_PROJECT_ROOT": str(root)})
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert [s["name"] for s in report["steps"]] == ["uv", "lock", "sync", "import", "cli"]


def test_stale_lock_says_to_run_uv_lock(tmp_path: Path) -> None:
    root = make_workspace(tmp_path)
    uv_lock(root)
    api = root / "apps" / "api" / "pyproject.toml"
    api.write_text(api.read_text().replace('version = "0.1.0"', 'version = "0.2.0"'))
    code, output = run_deps(root)
    assert code == 1
    assert "uv.lock is out of date" in output
    assert "run `uv lock`" in output
    assert not (root / ".venv").exists()  # nothing was installed from a stale lock


def test_missing_uv_says_how_to_install_it(tmp_path: Path) -> None:
    code, output = run_deps(make_workspace(tmp_path), PATH=str(tmp_path / "empty"))
    assert code == 1
    assert "uv is not installed" in output
    assert "python3 -m pip install uv" in output
    assert UV_INSTALL_HINT.split(".")[0] in output
