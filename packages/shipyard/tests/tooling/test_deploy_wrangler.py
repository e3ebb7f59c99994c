"""``shipyard deploy --bundle-only`` with the real wrangler: the workers really bundle.

wrangler — the version the deploy pins — comes from the npm registry (installed once into a
cache folder, bounded in time);
``wrangler deploy --dry-run --outdir`` then builds each worker's upload offline. Skipped, with
the reason, when npm is missing or the registry cannot be reached.

With uv on ``PATH`` the deploy also runs the real pinned pywrangler (``uv tool run --from
workers-py==…``), which vendors each worker's packages into ``python_modules/``: the test
checks what the API's bundle carries. It needs PyPI, Pyodide's package index and — unless uv
already has them — the CPython 3.13 and Pyodide interpreters uv downloads from GitHub; it is
skipped, naming the host, when one cannot be reached, and a failure that reads as the
network's (a DNS error, a refused download) is a skip too. Any other failure fails the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import Result
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


def template_project(tmp_path: Path, *, with_pyproject: bool = False) -> Path:
    """The template's API and functions, and a dry-run-only Cloudflare token in ``.env``."""
    root = tmp_path / "project"
    (root / "apps" / "api").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "apps/api/wrangler.jsonc", root / "apps/api/wrangler.jsonc")
    if with_pyproject:
        shutil.copy(REPO_ROOT / "apps/api/pyproject.toml", root / "apps/api/pyproject.toml")
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
    return root


def bundle_only(
    root: Path,
    path: list[Path],
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    branch: str,
    **env: str,
) -> Result:
    """``shipyard deploy --bundle-only`` with only ``path`` on PATH and a fresh HOME."""
    for name in ("CLOUDFLARE_API", "CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner().invoke(
        app,
        ["deploy", "--bundle-only", "--branch", branch],
        env={
            "SHIPYARD_PROJECT_ROOT": str(root),
            "PATH": os.pathsep.join(str(p) for p in path),
            "NO_COLOR": "1",
            "WRANGLER_SEND_METRICS": "false",
            "HOME": str(home),
            **env,
        },
        catch_exceptions=False,
    )


def test_bundle_only_builds_the_api_and_function_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrangler = real_wrangler()
    root = template_project(tmp_path)
    node = real_node()
    result = bundle_only(
        root, [wrangler.parent, node], tmp_path / "home", monkeypatch, "feature/Real_Wrangler"
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


# -- the real pywrangler ----------------------------------------------------------------------

# What pywrangler (the pinned workers-py) fetches for a worker on Python 3.13 (compatibility
# date from 2025-09-29 on): Pyodide's index, next to PyPI; and, when uv does not have them,
# the interpreters uv downloads from GitHub releases.
PYPI = "https://pypi.org/simple/workers-py/"
PYODIDE_INDEX = "https://index.pyodide.org/0.28.3/"
GITHUB = "https://github.com/"
PYODIDE_INTERPRETER = "cpython-3.13.2-emscripten-wasm32-musl"
NETWORK_SYMPTOMS = (
    "dns error",
    "failed to lookup address",
    "error sending request",
    "failed to download",
    "failed to fetch",
    "client error (connect)",
    "connection refused",
    "timed out",
)
# Never in a Worker: the PostgreSQL driver, the servers and the dev reloader.
HEAVY_MODULES = ("psycopg", "psycopg_pool", "psycopg_binary", "uvicorn", "watchfiles")


def unreachable(url: str) -> str | None:
    """None when ``url`` answers (any HTTP status), else why not."""
    try:
        with urllib.request.urlopen(url, timeout=15) as reply:
            reply.read(1)
    except urllib.error.HTTPError:
        return None
    except (urllib.error.URLError, OSError) as exc:
        return f"{url} cannot be reached ({exc})"
    return None


def real_uv() -> str:
    """The uv binary itself (``uv run`` names it in ``UV``; a PATH entry may be a shim that
    needs the user's HOME)."""
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv is not None, "uv is not on PATH"
    return uv


def uv_dirs(uv: str) -> dict[str, str]:
    """The user's uv cache and interpreters, kept under the test's fresh HOME."""
    found = {}
    for variable, args in (
        ("UV_CACHE_DIR", ["cache", "dir"]),
        ("UV_PYTHON_INSTALL_DIR", ["python", "dir"]),
    ):
        done = subprocess.run([uv, *args], capture_output=True, text=True, timeout=60)
        if done.returncode == 0 and done.stdout.strip():
            found[variable] = done.stdout.strip()
    return found


def system_tools() -> list[Path]:
    """The folders of the shell tools the entry scripts uv writes call (``realpath``,
    ``dirname``)."""
    folders: list[Path] = []
    for tool in ("sh", "realpath", "dirname"):
        found = shutil.which(tool)
        if found and Path(found).parent not in folders:
            folders.append(Path(found).parent)
    return folders


def uv_has(uv: str, request: str) -> bool:
    try:
        found = subprocess.run(
            [uv, "python", "find", "--no-python-downloads", request],
            capture_output=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        return False
    return found.returncode == 0


def pywrangler_network(uv: str) -> None:
    """Skip, naming the host, when something pywrangler fetches cannot be reached."""
    for url, what in ((PYPI, "workers-py and the packages"), (PYODIDE_INDEX, "Pyodide wheels")):
        reason = unreachable(url)
        if reason:
            pytest.skip(f"pywrangler needs {what}: {reason}")
    missing = [r for r in ("3.13", PYODIDE_INTERPRETER) if not uv_has(uv, r)]
    if missing:
        reason = unreachable(GITHUB)
        if reason:
            pytest.skip(f"uv downloads the {' and '.join(missing)} interpreters: {reason}")


def module_names(modules: Path) -> set[str]:
    """Top-level names in a ``python_modules/`` folder (packages, modules, dist-infos)."""
    return {child.name.split("-")[0].removesuffix(".py").lower() for child in modules.iterdir()}


@pytest.mark.timeout(900)
def test_bundle_only_vendors_the_api_packages_with_the_real_pywrangler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real pinned pywrangler vendors what the API worker declares: its bundle carries the
    light shipyard (the client package), fastapi, pydantic, httpx and PyJWT, and none of
    psycopg, uvicorn, watchfiles."""
    uv = real_uv()
    wrangler = real_wrangler()
    node = real_node()
    pywrangler_network(uv)
    root = template_project(tmp_path, with_pyproject=True)
    result = bundle_only(
        root,
        [wrangler.parent, node, Path(uv).parent, *system_tools()],
        tmp_path / "home",
        monkeypatch,
        "feature/Real_Pywrangler",
        **uv_dirs(uv),
    )
    if result.exit_code != 0 and any(s in result.output.lower() for s in NETWORK_SYMPTOMS):
        pytest.skip(f"the network failed pywrangler: {result.output.strip()[-400:]}")
    assert result.exit_code == 0, result.output
    api = root / ".shipyard" / "deploy" / "bundles" / "api-feature-real-pywrangler"
    assert (api / "app" / "main.py").is_file()
    for modules in (root / ".shipyard/deploy/api/python_modules", api / "python_modules"):
        assert (modules / "shipyard" / "client" / "__init__.py").is_file(), modules
        names = module_names(modules)
        assert {"shipyard", "fastapi", "pydantic", "httpx", "jwt"} <= names, names
        assert not names & set(HEAVY_MODULES), names & set(HEAVY_MODULES)
    function = root / ".shipyard" / "deploy" / "bundles" / "hello-world-feature-real-pywrangler"
    names = module_names(function / "python_modules")
    assert "starlette" in names
    assert not names & {"fastapi", "shipyard", *HEAVY_MODULES}, names
