"""The light install (``pip install shipyard``, what the app deployed to Cloudflare Python
Workers carries) and the extras, installed for real into fresh virtualenvs.

Each venv gets exactly what ``uv.lock`` pins for ``shipyard`` (``uv export``, hashes checked)
plus the ``shipyard`` wheel built from this checkout (``uv pip install --no-deps``), so the
tests see what a user of the published distribution gets: the light base alone, or the base
with the ``cli`` extra. Also: the template API's own dependency closure has none of the heavy
packages.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from acceptance_support import REPO_ROOT, Procs, clean_env
from remote_support import SECRET_KEY, start_remote_engine, url_project

pytestmark = pytest.mark.timeout(180)

PACKAGE = REPO_ROOT / "packages" / "shipyard"
# Distributions that must never reach the edge: native, server-only or engine-only.
HEAVY = {
    "psycopg",
    "psycopg-binary",
    "psycopg-pool",
    "uvicorn",
    "watchfiles",
    "typer",
    "rich",
    "click",
    "mcp",
    "fastapi",
    "starlette",
}
HEAVY_MODULES = {
    "psycopg",
    "psycopg_pool",
    "uvicorn",
    "watchfiles",
    "typer",
    "rich",
    "click",
    "mcp",
    "fastapi",
    "starlette",
}


def _uv() -> str:
    uv = shutil.which("uv")
    assert uv is not None, "uv is not on PATH (scripts/test.sh installs it)"
    return uv


def _run(*args: str, cwd: Path = REPO_ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        list(args),
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=150,
    )
    return done


def _names(requirements: str) -> set[str]:
    """Distribution names of a ``uv export`` requirements file (workspace members, written
    as ``-e ./path``, left out)."""
    names = set()
    for line in requirements.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-e", "--")) or line.startswith("\\"):
            continue
        name = line.split("==")[0].split(";")[0].split("[")[0].strip()
        if name and not name.startswith(("-", ".")):
            names.add(name.lower().replace("_", "-"))
    return names


def _export(package: str, *extra: str) -> set[str]:
    done = _run(
        _uv(), "export", "--package", package, "--frozen", "--no-dev", "--no-hashes", *extra
    )
    assert done.returncode == 0, done.stderr
    return _names(done.stdout)


@dataclass(frozen=True)
class Venv:
    """A fresh virtualenv holding the ``shipyard`` wheel and what the lock pins for it."""

    root: Path

    @property
    def python(self) -> str:
        return str(self.root / "bin" / "python")

    @property
    def shipyard(self) -> str:
        return str(self.root / "bin" / "shipyard")

    def run(self, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
        return _run(*args, cwd=cwd, **env)

    def distributions(self) -> set[str]:
        done = _run(_uv(), "pip", "list", "--python", self.python, "--format", "json")
        assert done.returncode == 0, done.stderr
        return {d["name"].lower().replace("_", "-") for d in json.loads(done.stdout)}


def _make_venv(root: Path, *extras: str) -> Venv:
    """``uv export`` the lock's pins for shipyard (+ extras), install them into a new venv,
    then build and install the shipyard wheel from this checkout without dependencies."""
    requirements = root / "requirements.txt"
    flags = [arg for extra in extras for arg in ("--extra", extra)]
    python = str(root / "venv" / "bin" / "python")
    export = ["export", "--package", "shipyard", "--frozen", "--no-dev", "--no-emit-workspace"]
    steps = [
        [_uv(), *export, *flags, "--quiet", "-o", str(requirements)],
        [_uv(), "venv", "--quiet", "--python", sys.executable, str(root / "venv")],
        [_uv(), "pip", "install", "--quiet", "--python", python, "-r", str(requirements)],
        [_uv(), "pip", "install", "--quiet", "--python", python, "--no-deps", str(PACKAGE)],
    ]
    for step in steps:
        done = _run(*step)
        assert done.returncode == 0, f"{' '.join(step)}\n{done.stdout}\n{done.stderr}"
    return Venv(root / "venv")


@pytest.fixture(scope="module")
def light(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """``pip install shipyard``: the base alone."""
    return _make_venv(tmp_path_factory.mktemp("light"))


@pytest.fixture(scope="module")
def cli_only(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """``pip install 'shipyard[cli]'``: the command, without the servers or PostgreSQL."""
    return _make_venv(tmp_path_factory.mktemp("cli"), "cli")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder with one task module."""
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "light"\nversion = "0"\n\n[tool.shipyard]\ndirs = ["trigger"]\n'
    )
    (tmp_path / "trigger").mkdir()
    (tmp_path / "trigger" / "__init__.py").write_text("")
    (tmp_path / "trigger" / "tasks.py").write_text(
        "from shipyard import task\n\n\n"
        '@task(id="double")\nasync def double(payload):\n    return payload["n"] * 2\n'
    )
    return tmp_path


# -- the lock ---------------------------------------------------------------------------------


def test_the_api_app_dependency_closure_has_no_heavy_package() -> None:
    """What ``shipyard deploy`` vendors into the API worker: none of the heavy packages."""
    closure = _export("shipyard-api")
    assert "fastapi" in closure  # the app's own, to serve its routes
    assert "supabase" in closure
    assert not (closure & (HEAVY - {"fastapi", "starlette"})), closure & HEAVY


def test_the_light_base_closure_is_small_and_the_extras_add_the_rest() -> None:
    base = _export("shipyard")
    assert not (base & HEAVY), base & HEAVY
    assert {"pydantic", "httpx", "pyjwt"} <= base
    assert {"typer", "rich"} <= _export("shipyard", "--extra", "cli") - base
    engine = _export("shipyard", "--extra", "engine")
    assert {"typer", "rich", "fastapi", "uvicorn", "watchfiles", "mcp"} <= engine
    assert not {"psycopg", "psycopg-binary", "psycopg-pool"} & engine
    assert {"psycopg", "psycopg-binary", "psycopg-pool"} <= _export(
        "shipyard", "--extra", "postgres"
    )
    everything = _export("shipyard", "--extra", "all")
    assert everything >= HEAVY


# -- the light install ------------------------------------------------------------------------


def test_light_install_has_no_heavy_package_and_imports_shipyard(
    light: Venv, project: Path
) -> None:
    installed = light.distributions()
    assert "shipyard" in installed
    assert not (installed & HEAVY), installed & HEAVY
    script = (
        "import sys\n"
        "import shipyard\n"
        "from shipyard import task, tasks, runs, wait, queues, metadata, logger\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(HEAVY_MODULES)!r})\n"
        "print('imported', shipyard.__version__, heavy)\n"
    )
    done = light.run(light.python, "-c", script, cwd=project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("[]"), done.stdout


def test_light_install_console_script_names_the_extra(light: Venv, project: Path) -> None:
    for args in ([light.shipyard, "--version"], [light.python, "-m", "shipyard", "runs", "list"]):
        done = light.run(*args, cwd=project)
        assert done.returncode == 1, done
        assert done.stdout == ""
        assert "Traceback" not in done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "needs the 'cli' extra" in lines[0]
        assert "pip install 'shipyard[cli]'" in lines[0]


def test_light_install_heavy_parts_fail_with_one_line_naming_their_extra(
    light: Venv, project: Path
) -> None:
    script = """
import asyncio
import importlib

import shipyard
from shipyard.errors import MissingExtraError

for module in ("shipyard.server", "shipyard.mcp.server", "shipyard.store.postgres",
               "shipyard.cli.main"):
    try:
        importlib.import_module(module)
    except MissingExtraError as exc:
        print(module, "->", exc.extra, "|", exc.message)
    else:
        print(module, "-> imported")


async def main() -> None:
    try:  # the engine opens its store when it is built: configure() says it at once
        shipyard.configure(database_url="postgresql://nobody@127.0.0.1:1/none")
        await shipyard.tasks.trigger("double", {"n": 1})
    except MissingExtraError as exc:
        print("postgres engine ->", exc.extra, "|", exc.message)


asyncio.run(main())

# The app loaders import anywhere (shipyard deps uses them); serving needs uvicorn.
from shipyard.tooling.apphost import load_functions, server_config
try:
    server_config(None, lifespan="on")
except MissingExtraError as exc:
    print("serving apps ->", exc.extra, "|", exc.message)
"""
    done = light.run(light.python, "-c", script, cwd=project)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(" -> ", 1) for line in done.stdout.strip().splitlines())
    expected = {
        "shipyard.server": "engine",
        "shipyard.mcp.server": "engine",
        "serving apps": "engine",
        "shipyard.store.postgres": "postgres",
        "shipyard.cli.main": "cli",
        "postgres engine": "postgres",
    }
    assert {k: v.split(" | ")[0] for k, v in lines.items()} == expected, done.stdout
    for what, line in lines.items():
        message = line.split(" | ", 1)[1]
        assert f"pip install 'shipyard[{expected[what]}]'" in message, message


def test_light_install_runs_tasks_in_process_on_sqlite(light: Venv, project: Path) -> None:
    """The engine core is light too: a script triggers a run and an in-process worker runs it
    on SQLite (the migrations ship in the wheel)."""
    script = """
import asyncio

import shipyard
from shipyard.engine.registry import get_engine
from shipyard.worker.worker import Worker
from trigger.tasks import double


async def main() -> None:
    engine = get_engine()
    await engine.start()
    worker = Worker(engine)
    await worker.start()
    handle = await double.trigger({"n": 21})
    run = await shipyard.runs.poll(handle.id, poll_interval_ms=50, max_attempts=600)
    await worker.stop(grace=1)
    await shipyard.aclose()
    print(run.status, run.output)


asyncio.run(main())
"""
    done = light.run(
        light.python,
        "-c",
        script,
        cwd=project,
        SHIPYARD_PROJECT_ROOT=str(project),
        SHIPYARD_DATABASE_URL=f"sqlite:///{project / 'light.db'}",
        PYTHONPATH=str(project),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "COMPLETED 42", done.stdout + done.stderr


async def test_light_install_triggers_over_http(
    light: Venv, project: Path, tmp_path: Path, procs: Procs
) -> None:
    """With only ``SHIPYARD_API_URL`` and ``SHIPYARD_SECRET_KEY`` set, a script in the light
    venv triggers a task of a real ``shipyard server`` + worker (started from this workspace)
    and polls it to COMPLETED, importing none of the heavy packages and opening no database."""
    engine = url_project(tmp_path / "engine", procs, f"sqlite:///{tmp_path / 'engine.db'}")
    remote = await start_remote_engine(engine)
    script = f"""
import asyncio
import sys

import shipyard


async def main() -> None:
    handle = await shipyard.tasks.trigger("double", {{"n": 21}}, tags=["light"])
    run = await shipyard.runs.poll(handle.id, poll_interval_ms=50, max_attempts=600)
    try:
        await shipyard.runs.retrieve("run_doesnotexist")
    except shipyard.RunNotFoundError as exc:
        print("not found:", exc.message)
    await shipyard.aclose()
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in {sorted(HEAVY_MODULES)!r})
    print(run.status, run.output, heavy)


asyncio.run(main())
"""
    done = await asyncio.to_thread(
        light.run,
        light.python,
        "-c",
        script,
        cwd=project,
        SHIPYARD_API_URL=remote.url,
        SHIPYARD_SECRET_KEY=SECRET_KEY,
    )
    assert done.returncode == 0, done.stderr + procs.dump()
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("not found:") and "run_doesnotexist" in lines[0], done.stdout
    assert lines[-1] == "COMPLETED 42 []", done.stdout
    assert not (project / ".shipyard").exists(), "the light script opened a database"


# -- the cli extra ----------------------------------------------------------------------------


def test_cli_extra_runs_commands_and_names_the_extra_a_command_needs(
    cli_only: Venv, project: Path
) -> None:
    installed = cli_only.distributions()
    assert {"typer", "rich"} <= installed
    assert not (installed & (HEAVY - {"typer", "rich", "click"})), installed & HEAVY
    sqlite = {"SHIPYARD_DATABASE_URL": f"sqlite:///{project / 'cli.db'}"}

    listed = cli_only.run(cli_only.shipyard, "runs", "list", "--json", cwd=project, **sqlite)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []

    for command, extra in (
        (["dev"], "engine"),
        (["server"], "engine"),
        (["mcp"], "engine"),
    ):
        done = cli_only.run(cli_only.shipyard, *command, cwd=project, **sqlite)
        assert done.returncode == 1, done
        assert "Traceback" not in done.stderr
        line = " ".join(done.stderr.split())
        assert f"shipyard {command[0]} needs the '{extra}' extra" in line, done.stderr
        assert f"pip install 'shipyard[{extra}]'" in line, done.stderr

    worker = cli_only.run(
        cli_only.shipyard,
        "worker",
        cwd=project,
        SHIPYARD_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
    )
    assert worker.returncode == 1, worker
    assert "Traceback" not in worker.stderr
    line = " ".join(worker.stderr.split())
    assert "The PostgreSQL store needs the 'postgres' extra" in line, worker.stderr
    assert "pip install 'shipyard[postgres]'" in line, worker.stderr
