"""What each laid-out worker declares in its generated ``pyproject.toml`` — what ``pywrangler
sync`` vendors into the Worker.

The API worker declares the light ``shipyard`` (no extras: the HTTP client and the SDK) and the
distributions the app imports; each function worker only what its own code imports. The fast
tests read the generated file (no network); one resolves the API worker's declarations for
Pyodide against PyPI with ``uv pip compile`` (bounded in time; skipped, with the reason, when
PyPI cannot be reached) and checks the closure has none of the heavy packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from deploy_fakes import install_fakes
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.tooling.deploy import cloudflare

REPO_ROOT = Path(__file__).resolve().parents[4]
# What the API worker must carry, and what must never reach a Worker (native, server-only or
# engine-only distributions).
API_NEEDS = {"shipyard", "fastapi", "pydantic", "httpx", "pyjwt"}
HEAVY = {
    "psycopg",
    "psycopg-binary",
    "psycopg-pool",
    "uvicorn",
    "watchfiles",
    "typer",
    "rich",
    "mcp",
    "sse-starlette",
    "jinja2",
}
# pywrangler 1.17.9 targets Python 3.13 (Pyodide 0.28, ABI pyodide_2025_0) for workers whose
# compatibility_date is 2025-09-29 or later, as the template's is.
PYODIDE_PYTHON = "3.13"
PYODIDE_PLATFORM = "wasm32-pyodide2025"


def name_of(requirement: str) -> str:
    """The normalised distribution name of a requirement string."""
    head = requirement.split("@")[0].split(";")[0]
    for stop in "[<>=!~ ":
        head = head.split(stop)[0]
    return head.strip().lower().replace("_", "-").replace(".", "-")


def declared(folder: Path) -> dict[str, str]:
    """``{name: requirement}`` of a generated worker ``pyproject.toml``."""
    data = tomllib.loads((folder / "pyproject.toml").read_text())
    return {name_of(r): r for r in data["project"]["dependencies"]}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The template's API and functions, copied."""
    root = tmp_path / "project"
    (root / "apps" / "api").mkdir(parents=True)
    for config in ("wrangler.jsonc", "pyproject.toml"):
        shutil.copy(REPO_ROOT / "apps/api" / config, root / "apps/api" / config)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO_ROOT / "apps/api/src", root / "apps/api/src", ignore=ignore)
    shutil.copytree(REPO_ROOT / "functions", root / "functions", ignore=ignore)
    return root


def test_the_api_worker_declares_the_light_shipyard_and_what_the_app_imports(
    project: Path,
) -> None:
    folder = cloudflare.write_api_worker(project, "api")
    deps = declared(folder)
    assert set(deps) == {
        "fastapi",
        "httpx",
        "postgrest",
        "pydantic",
        "pyjwt",
        "shipyard",
        "starlette",
        "supabase",
    }, deps
    # The workspace's shipyard, from this checkout, without any extra.
    package = (REPO_ROOT / "packages" / "shipyard").as_uri()
    assert deps["shipyard"] == f"shipyard @ {package}"
    # The member's ranges and extras; the host's pins are not copied (Pyodide has its own).
    assert deps["pyjwt"] == "pyjwt[crypto]>=2.9"
    assert deps["fastapi"] == "fastapi>=0.115"
    assert deps["httpx"] == "httpx>=0.27"
    assert deps["pydantic"] == "pydantic"  # imported, declared by no one here: any version
    assert not set(deps) & HEAVY
    assert "workers" not in deps  # the Workers runtime's own module


def test_each_function_declares_only_what_its_own_code_imports(project: Path) -> None:
    folder = cloudflare.write_function_worker(project, "hello-world", "hello-world")
    assert declared(folder) == {"starlette": "starlette"}

    other = project / "functions" / "report"
    other.mkdir()
    (other / "helpers.py").write_text("import json\n\nimport httpx\n")
    (other / "main.py").write_text(
        "from __future__ import annotations\n\n"
        "import os\n\n"
        "import pydantic\n"
        "from shipyard import tasks\n"
        "from workers import Response\n\n"
        "from helpers import httpx\n"
        "from . import helpers\n\n"
        "app = None\n"
    )
    (other / "tests").mkdir()
    (other / "tests" / "test_report.py").write_text("import pytest\nimport uvicorn\n")
    folder = cloudflare.write_function_worker(project, "report", "report")
    package = (REPO_ROOT / "packages" / "shipyard").as_uri()
    assert declared(folder) == {
        "httpx": "httpx",
        "pydantic": "pydantic",
        "shipyard": f"shipyard @ {package}",
    }
    # The hello-world worker's declarations are its own, untouched by another function's.
    assert declared(cloudflare.function_build_dir(project, "hello-world")) == {
        "starlette": "starlette"
    }


def test_a_function_with_its_own_pyproject_keeps_it(project: Path) -> None:
    own = '[project]\nname = "hello"\nversion = "1"\ndependencies = ["starlette==1.0"]\n'
    (project / "functions" / "hello-world" / "pyproject.toml").write_text(own)
    folder = cloudflare.write_function_worker(project, "hello-world", "hello-world")
    assert (folder / "pyproject.toml").read_text() == own


def test_shipyard_extras_never_reach_a_worker(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member that declares ``shipyard[engine,postgres]`` still gets the light base: an
    installed (non-workspace) shipyard is written as the installed version, without extras."""
    pyproject = project / "apps" / "api" / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('"shipyard",', '"shipyard[engine, postgres]>=0.1",')
    )
    real = cloudflare.importlib.metadata.distribution

    class Installed:
        """shipyard as a user's project has it: from PyPI, no direct URL."""

        def __init__(self, name: str) -> None:
            self.dist = real(name)
            self.metadata = self.dist.metadata
            self.version = self.dist.version

        def read_text(self, filename: str) -> str | None:
            return None if filename == "direct_url.json" else self.dist.read_text(filename)

    monkeypatch.setattr(cloudflare.importlib.metadata, "distribution", Installed)
    deps = declared(cloudflare.write_api_worker(project, "api"))
    version = cloudflare.importlib.metadata.version("shipyard")
    assert deps["shipyard"] == f"shipyard=={version}"
    assert deps["pyjwt"] == "pyjwt[crypto]>=2.9"  # other members keep their extras


def test_the_pyodide_lock_is_kept_between_deploys(project: Path) -> None:
    """pywrangler writes ``pylock.toml`` (the versions it resolved for Pyodide) into the
    worker's folder; laying the worker out again keeps it, unless the member has its own."""
    folder = cloudflare.write_api_worker(project, "api")
    (folder / "pylock.toml").write_text("# resolved for pyodide\n")
    (folder / "python_modules").mkdir()
    folder = cloudflare.write_api_worker(project, "api")
    assert (folder / "pylock.toml").read_text() == "# resolved for pyodide\n"
    assert not (folder / "python_modules").exists()
    (project / "apps" / "api" / "pylock.toml").write_text("# committed\n")
    folder = cloudflare.write_api_worker(project, "api")
    assert (folder / "pylock.toml").read_text() == "# committed\n"

    function = cloudflare.write_function_worker(project, "hello-world", "hello-world")
    (function / "pylock.toml").write_text("# function lock\n")
    function = cloudflare.write_function_worker(project, "hello-world", "hello-world")
    assert (function / "pylock.toml").read_text() == "# function lock\n"


# -- the closure, resolved for Pyodide against PyPI --------------------------------------------


def pypi_reachable() -> str | None:
    """None when PyPI answers, else why not."""
    index = os.environ.get("UV_INDEX_URL") or "https://pypi.org/simple/"
    try:
        with urllib.request.urlopen(f"{index.rstrip('/')}/pip/", timeout=15) as reply:
            reply.read(1)
    except (urllib.error.URLError, OSError) as exc:
        return f"{index} cannot be reached: {exc}"
    return None


NETWORK_ERRORS = ("dns error", "failed to fetch", "connect", "timed out", "network")


@pytest.mark.timeout(240)
def test_the_api_worker_closure_for_pyodide_has_no_heavy_package(project: Path) -> None:
    """``uv pip compile`` of the generated ``pyproject.toml`` for Pyodide (Python 3.13,
    ``wasm32-pyodide2025``, what pywrangler targets), against PyPI: the Worker's closure holds
    the light shipyard, fastapi, pydantic, httpx, PyJWT and none of the heavy packages."""
    uv = shutil.which("uv")
    assert uv is not None, "uv is not on PATH"
    unreachable = pypi_reachable()
    if unreachable:
        pytest.skip(unreachable)
    folder = cloudflare.write_api_worker(project, "api")
    try:
        done = subprocess.run(
            [
                uv,
                "pip",
                "compile",
                str(folder / "pyproject.toml"),
                "--python-version",
                PYODIDE_PYTHON,
                "--python-platform",
                PYODIDE_PLATFORM,
                "--no-header",
                "--no-annotate",
                "--quiet",
            ],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=180,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("uv pip compile against PyPI took over 180 s")
    if done.returncode != 0 and any(s in done.stderr.lower() for s in NETWORK_ERRORS):
        pytest.skip(f"PyPI failed mid-resolution: {done.stderr.strip()[-300:]}")
    assert done.returncode == 0, done.stderr
    closure = {
        name_of(line)
        for line in done.stdout.splitlines()
        if line.strip() and not line.startswith(("#", " "))
    }
    assert closure >= API_NEEDS | {"supabase", "starlette", "pydantic-core"}, closure
    assert not closure & HEAVY, closure & HEAVY
    assert "click" not in closure  # the cli extra's, pulled by nothing the API imports


# -- when pywrangler fails ----------------------------------------------------------------------

# What the pinned pywrangler printed on a machine that cannot resolve github.com (uv fetching
# the Pyodide interpreter), and what it prints when a package has no Pyodide build.
NO_NETWORK = """error: Request failed after 3 retries in 5.9s
  cause: Failed to download `https://github.com/pyodide/pyodide/releases/download/0.29.5/xbuildenv-0.29.5.tar.gz`
  cause: client error (Connect)
  cause: dns error
ERROR    Error running command: uv venv .venv-workers/pyodide-venv --python
         cpython-3.13.2-emscripten-wasm32-musl"""
NO_PYODIDE_BUILD = """  x No solution found when resolving dependencies:
  `-> Because there is no version of pydantic-core==2.50.5 and pydantic==2.14.4 depends on
      pydantic-core==2.50.5, we can conclude that pydantic==2.14.4 cannot be used.
ERROR    Installation failed because the packages you requested are not supported by
         Python Workers."""


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (NO_NETWORK, "index.pyodide.org and github.com"),
        (NO_PYODIDE_BUILD, "has no build for Pyodide"),
    ],
)
def test_a_failing_sync_says_why(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str, expected: str
) -> None:
    fakes = install_fakes(tmp_path / "fakebin", ("wrangler", "pywrangler"))
    fakes.configure(fail={"pywrangler sync": {"stderr": output}})
    (project / "pyproject.toml").write_text("[tool.shipyard]\n")
    (project / ".env").write_text(
        "CLOUDFLARE_API=token-for-a-dry-run-only\n"
        "CLOUDFLARE_ACCOUNT_ID=0123456789abcdef0123456789abcdef\n"
    )
    for name in ("CLOUDFLARE_API", "CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(
        app,
        ["deploy", "--bundle-only", "--branch", "main"],
        env={
            "SHIPYARD_PROJECT_ROOT": str(project),
            "PATH": str(fakes.bin),
            "NO_COLOR": "1",
            "COLUMNS": "250",
        },
        catch_exceptions=False,
    )
    assert result.exit_code == 1, result.output
    assert expected in " ".join(result.output.split()), result.output
    assert fakes.argvs() == [["pywrangler", "sync"]]  # nothing is bundled without its packages
    assert "Traceback" not in result.output
