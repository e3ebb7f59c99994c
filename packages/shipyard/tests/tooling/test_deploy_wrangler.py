"""``shipyard deploy --bundle-only`` with the real wrangler: the workers really bundle.

wrangler — the version the deploy pins — comes from the npm registry (installed once into a
cache folder, bounded in time);
``wrangler deploy --dry-run --outdir`` then builds each worker's upload offline. Skipped, with
the reason, when npm is missing or the registry cannot be reached.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.tooling.deploy.cloudflare import WRANGLER_VERSION

REPO_ROOT = Path(__file__).resolve().parents[4]
WRANGLER_SPEC = f"wrangler@{WRANGLER_VERSION}"
NODE_MAJOR = 22
NODE_SPEC = f"node@{NODE_MAJOR}"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "shipyard-tests"

pytestmark = pytest.mark.timeout(420)


def real_wrangler() -> Path:
    folder = CACHE / f"wrangler-{WRANGLER_VERSION}"
    binary = folder / "node_modules" / ".bin" / "wrangler"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("npm/node are not installed: cannot install wrangler")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(folder), WRANGLER_SPEC],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("npm install wrangler took over 300 s")
    if result.returncode != 0 or not binary.exists():
        pytest.skip(f"npm install wrangler failed: {result.stderr.strip()[-300:]}")
    return binary


def node_major(node: Path) -> int:
    try:
        out = subprocess.run([str(node), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return int(out.stdout.strip().lstrip("v").split(".")[0] or 0) if out.returncode == 0 else 0


def real_node() -> Path:
    """A folder with a ``node`` that the pinned wrangler accepts (22+): the system's, else the
    npm registry's ``node@22`` package (its binary ships inside the package)."""
    system = shutil.which("node")
    if system and node_major(Path(system)) >= NODE_MAJOR:
        return Path(system).parent
    folder = CACHE / f"node{NODE_MAJOR}"
    binary = folder / "node_modules" / ".bin" / "node"
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed: cannot install node")
        try:
            subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--prefix", str(folder), NODE_SPEC],
                capture_output=True,
                timeout=300,
            )
        except subprocess.TimeoutExpired:
            pytest.skip(f"npm install {NODE_SPEC} took over 300 s")
    if node_major(binary) < NODE_MAJOR:
        pytest.skip(f"no node {NODE_MAJOR}+ (the pinned wrangler needs it)")
    return binary.parent


def test_bundle_only_builds_the_api_and_function_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrangler = real_wrangler()
    root = tmp_path / "project"
    (root / "apps" / "api").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "apps/api/wrangler.jsonc", root / "apps/api/wrangler.jsonc")
    shutil.copytree(
        REPO_ROOT / "apps/api/src", root / "apps/api/src", ignore=shutil.ignore_patterns("__py*")
    )
    shutil.copytree(
        REPO_ROOT / "functions", root / "functions", ignore=shutil.ignore_patterns("__py*")
    )
    (root / "pyproject.toml").write_text("[tool.shipyard]\n")
    (root / ".env").write_text(
        "CLOUDFLARE_API=token-for-a-dry-run-only\n"
        "CLOUDFLARE_ACCOUNT_ID=0123456789abcdef0123456789abcdef\n"
    )
    node = real_node()
    for name in ("CLOUDFLARE_API", "CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(
        app,
        ["deploy", "--bundle-only", "--branch", "feature/Real_Wrangler"],
        env={
            "SHIPYARD_PROJECT_ROOT": str(root),
            "PATH": f"{wrangler.parent}{os.pathsep}{node}",
            "NO_COLOR": "1",
            "WRANGLER_SEND_METRICS": "false",
            "HOME": str(tmp_path / "home"),
        },
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    bundles = root / ".shipyard" / "deploy" / "bundles"
    api = bundles / "api-feature-real-wrangler"
    assert (api / "entry.py").is_file()
    assert (api / "app" / "main.py").is_file()
    function = bundles / "hello-world-feature-real-wrangler"
    assert (function / "worker_entry.py").is_file()
    assert (function / "main.py").is_file()
    assert "Bundles built." in result.output
    assert "token-for-a-dry-run-only" not in result.output
