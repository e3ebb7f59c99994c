"""Cloudflare Workers: the pinned CLIs, the commands they run, and each worker's folder.

Every worker is laid out under ``.shipyard/deploy/`` before it is built: the API
(``apps/api``: its ``src/`` and ``wrangler.jsonc``) in ``api/``, each ``functions/<name>/main.py``
(an ASGI ``app``) in ``functions/<name>/`` with a generated entry module and ``wrangler.jsonc``.
Each folder gets a ``pyproject.toml`` declaring the distributions its code imports
(:func:`declared_distributions`; a function's own ``pyproject.toml`` wins), so that
``pywrangler sync`` (PyPI ``workers-py``, pinned to :data:`WORKERS_PY_VERSION`, run with
``uv tool run``) resolves them for Pyodide (``pylock.toml``, kept between deploys) and vendors
them into ``python_modules/``, which ``wrangler deploy`` uploads with the worker.

Tools are pinned: ``wrangler`` on PATH is used as installed, else ``npx --yes
wrangler@`` :data:`WRANGLER_VERSION`. Secrets go in one ``wrangler secret bulk`` call (every
``secret put`` makes a new Worker version), as JSON on the tool's standard input, never on its
command line.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import shutil
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

API_DIR = Path("apps/api")
FUNCTIONS_DIR = Path("functions")
BUILD_DIR = Path(".shipyard/deploy")
COMPATIBILITY_DATE = "2026-01-16"
ENTRY_MODULE = "worker_entry.py"
# Pinned tool versions: a deploy runs the same tools on every machine.
WRANGLER_VERSION = "4.164.0"
WORKERS_PY_VERSION = "1.17.9"
# Modules the Workers runtime provides: never declared as distributions.
RUNTIME_MODULES = frozenset({"workers", "js", "pyodide", "_pyodide"})

WRANGLER_INSTALL_HINT = (
    "install Node.js (for `npx wrangler`) or the Workers CLI: `npm install -g wrangler`; "
    "Python packages are bundled with pywrangler (`uv tool install workers-py`), run pinned "
    "through uv"
)
# What pywrangler fetches besides PyPI: Pyodide's package index, and — the first time, through
# uv — a CPython for its host venv and the Pyodide interpreter (both GitHub release downloads).
PYWRANGLER_HOSTS = "pypi.org, index.pyodide.org and github.com"
_NETWORK_SYMPTOMS = (
    "dns error",
    "failed to lookup address",
    "error sending request",
    "failed to download",
    "failed to fetch",
    "client error (connect)",
    "connection refused",
    "invalid peer certificate",
)
_NO_PYODIDE_BUILD = ("no solution found", "not supported by python workers")


def sync_hint(output: str) -> str | None:
    """What to do when ``pywrangler sync`` failed with ``output``, when the cause is known."""
    low = " ".join(output.lower().split())  # pywrangler's log wraps long lines
    if any(symptom in low for symptom in _NETWORK_SYMPTOMS):
        return (
            f"pywrangler could not download what it needs: it fetches from {PYWRANGLER_HOSTS} "
            "(the Pyodide and CPython 3.13 interpreters, the first time); allow those hosts or "
            "deploy from a machine that reaches them"
        )
    if any(symptom in low for symptom in _NO_PYODIDE_BUILD):
        return (
            "a package this worker imports has no build for Pyodide (the Workers runtime) in a "
            "version its pyproject.toml allows: see the resolver's message above; widen the "
            "range in the member's pyproject.toml or drop the import"
        )
    return None


_WORKERS_DEV_URL = re.compile(r"https://[a-z0-9-]+\.[a-z0-9-]+\.workers\.dev")

Which = Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class CloudflareTools:
    """The command prefixes that bundle Python packages (pywrangler), deploy and manage workers
    (wrangler). An empty tuple: not installed."""

    deploy: tuple[str, ...]
    wrangler: tuple[str, ...]
    sync: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        return bool(self.deploy)


def find_tools(which: Which = shutil.which) -> CloudflareTools:
    """wrangler (else pinned ``npx --yes wrangler@…``), and pywrangler pinned through uv (else
    one on PATH) to vendor each worker's Python packages."""
    if which("wrangler"):
        wrangler: tuple[str, ...] = ("wrangler",)
    elif which("npx"):
        wrangler = ("npx", "--yes", f"wrangler@{WRANGLER_VERSION}")
    else:
        wrangler = ()
    if which("uv"):
        sync: tuple[str, ...] = (
            "uv",
            "tool",
            "run",
            "--from",
            f"workers-py=={WORKERS_PY_VERSION}",
            "pywrangler",
        )
    elif which("pywrangler"):
        sync = ("pywrangler",)
    else:
        sync = ()
    return CloudflareTools(deploy=wrangler, wrangler=wrangler, sync=sync)


def deploy_args(name: str, *, preview: bool, bundle_dir: Path | None = None) -> tuple[str, ...]:
    """``deploy --name NAME`` (+ ``--var APP_ENV:preview``; + ``--dry-run --outdir`` to bundle)."""
    args: tuple[str, ...] = ("deploy", "--name", name)
    if preview:
        args += ("--var", "APP_ENV:preview")
    if bundle_dir is not None:
        args += ("--dry-run", "--outdir", str(bundle_dir))
    return args


def secret_bulk_args(worker: str) -> tuple[str, ...]:
    """``secret bulk --name WORKER``; the secrets go on standard input as one JSON object."""
    return ("secret", "bulk", "--name", worker)


def secrets_json(values: dict[str, str]) -> str:
    """The standard input of ``wrangler secret bulk``: ``{"NAME": "value", …}``."""
    return json.dumps(values)


def sync_args() -> tuple[str, ...]:
    """``sync``: pywrangler vendors the ``pyproject.toml`` dependencies into python_modules/."""
    return ("sync",)


def delete_args(worker: str) -> tuple[str, ...]:
    """``delete --name WORKER --force`` (no confirmation prompt)."""
    return ("delete", "--name", worker, "--force")


def find_url(output: str) -> str | None:
    """The ``https://<name>.<subdomain>.workers.dev`` URL that ``wrangler deploy`` prints."""
    match = _WORKERS_DEV_URL.search(output)
    return match.group(0) if match else None


def function_names(root: Path) -> list[str]:
    """The functions to deploy: each ``functions/<name>/main.py`` (hidden folders skipped)."""
    folder = root / FUNCTIONS_DIR
    if not folder.is_dir():
        return []
    return sorted(
        main.parent.name
        for main in folder.glob("*/main.py")
        if not main.parent.name.startswith((".", "_"))
    )


def function_build_dir(root: Path, function: str) -> Path:
    """Where :func:`write_function_worker` lays out a function's worker."""
    return root / BUILD_DIR / "functions" / function


def api_build_dir(root: Path) -> Path:
    """Where :func:`write_api_worker` lays out the API worker."""
    return root / BUILD_DIR / "api"


# -- what a worker's code imports ---------------------------------------------------------


def imported_modules(files: Iterable[Path]) -> set[str]:
    """The top-level names of every absolute import in ``files`` (relative ones are local)."""
    names: set[str] = set()
    for path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def _local_modules(folder: Path) -> set[str]:
    """Modules and packages that live in the worker's own folder (or its ``src/``)."""
    local: set[str] = set()
    for base in (folder, folder / "src"):
        if base.is_dir():
            for child in base.iterdir():
                if child.suffix == ".py":
                    local.add(child.stem)
                elif (child / "__init__.py").is_file():
                    local.add(child.name)
    return local


# A worker runs shipyard's light base (the SDK and the HTTP client), never its extras (cli,
# engine, postgres: the servers and drivers), at the version that deploys it.
SHIPYARD = "shipyard"


def _requirement(distribution: str, declared: dict[str, str]) -> str:
    """What the worker declares for an installed ``distribution``.

    A local (workspace) install → ``name @ file:///…`` (this checkout's code); ``shipyard`` →
    ``shipyard==<installed version>``, never with an extra (the client speaks the engine
    server's API of the same release); declared in the member's own ``pyproject.toml`` → that
    requirement (its range and extras, e.g. ``pyjwt[crypto]>=2.9``); otherwise the bare name.
    The host's other versions are not copied: pywrangler resolves for Pyodide, whose index
    carries its own, often older, builds of the native packages (pydantic-core,
    cryptography), and records the result in ``pylock.toml``.
    """
    dist = importlib.metadata.distribution(distribution)
    name = dist.metadata["Name"]
    key = _normal(name)
    direct = dist.read_text("direct_url.json")
    if direct:
        url = json.loads(direct).get("url", "")
        if url.startswith("file://"):
            return f"{name} @ {url}"
    if key == SHIPYARD:
        return f"{name}=={dist.version}"
    return declared.get(key, name)


def declared_distributions(folder: Path) -> tuple[list[str], list[str]]:
    """(requirements, unresolved modules) for the Python files under ``folder``.

    Each imported module outside the standard library, the worker's own files and the Workers
    runtime maps to the installed distribution that provides it (:func:`_requirement` says
    how it is written). Modules no installed distribution provides are returned apart, to be
    reported.
    """
    files = [
        p
        for p in folder.rglob("*.py")
        if "tests" not in p.relative_to(folder).parts and "python_modules" not in p.parts
    ]
    modules = imported_modules(files) - _local_modules(folder) - RUNTIME_MODULES
    modules -= set(sys.stdlib_module_names) | {"__future__"}
    providers = importlib.metadata.packages_distributions()
    declared = _declared_requirements(folder)
    requirements: set[str] = set()
    unresolved: list[str] = []
    for module in sorted(modules):
        # Editable (workspace) installs are not in packages_distributions(): try the name.
        candidates = providers.get(module) or [module]
        try:
            requirement = _requirement(candidates[0], declared)
        except importlib.metadata.PackageNotFoundError:
            unresolved.append(module)
            continue
        requirements.add(requirement)
    return sorted(requirements, key=str.lower), unresolved


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9_.-]*)")


def _declared_requirements(folder: Path) -> dict[str, str]:
    """``{normalised name: requirement}`` from the member's own ``pyproject.toml``, so a
    declared ``pyjwt[crypto]>=2.9`` keeps its extra and range (imports alone cannot tell)."""
    import tomllib

    path = folder / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        declared = tomllib.loads(path.read_text(encoding="utf-8"))["project"]["dependencies"]
    except (KeyError, TypeError, tomllib.TOMLDecodeError):
        return {}
    requirements: dict[str, str] = {}
    for requirement in declared:
        match = _NAME.match(str(requirement))
        if match:
            requirements[_normal(match.group(1))] = str(requirement).strip()
    return requirements


_PYPROJECT = """# Generated by `shipyard deploy`: the distributions this worker's code imports.
[project]
name = "{name}"
version = "0.0.0"
requires-python = ">=3.12"
dependencies = [{dependencies}]
"""


def write_pyproject(folder: Path, worker: str) -> list[str]:
    """Write the worker's generated ``pyproject.toml``; returns the unresolved modules."""
    requirements, unresolved = declared_distributions(folder)
    return _write_pyproject(folder, worker, requirements, unresolved)


def _write_pyproject(
    folder: Path, worker: str, requirements: list[str], unresolved: list[str]
) -> list[str]:
    listed = "".join(f"\n    {json.dumps(r)}," for r in requirements)
    (folder / "pyproject.toml").write_text(
        _PYPROJECT.format(name=worker, dependencies=listed + ("\n" if listed else "")),
        encoding="utf-8",
    )
    return unresolved


# -- laying out workers ---------------------------------------------------------------------

_ENTRY = '''"""Generated by `shipyard deploy`: serves the function's ASGI `app` as a Worker."""

from main import app
from workers import WorkerEntrypoint, asgi


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return await asgi.fetch(app, request, self.env)
'''

_WRANGLER = """// Generated by `shipyard deploy` for functions/{function}; rewritten on each deploy.
{{
  "name": "{name}",
  "main": "{entry}",
  "compatibility_date": "{date}",
  "compatibility_flags": ["python_workers"],
  "observability": {{ "logs": {{ "enabled": true }} }}
}}
"""
_IGNORED = shutil.ignore_patterns("tests", "__pycache__", "*.pyc", ".*", "python_modules")


LOCKFILE = "pylock.toml"


def _fresh(target: Path) -> bytes | None:
    """Empty ``target``; returns the ``pylock.toml`` pywrangler wrote there last time, so the
    versions it resolved for Pyodide carry over to the next deploy."""
    lock = target / LOCKFILE
    kept = lock.read_bytes() if lock.is_file() else None
    if target.exists():
        shutil.rmtree(target)
    return kept


def _keep_lock(target: Path, kept: bytes | None) -> None:
    """Put back the previous ``pylock.toml`` unless the member brought its own."""
    if kept is not None and not (target / LOCKFILE).is_file():
        (target / LOCKFILE).write_bytes(kept)


def write_function_worker(root: Path, function: str, worker: str) -> Path:
    """Lay out ``functions/<function>`` as a deployable worker; returns its folder."""
    source = root / FUNCTIONS_DIR / function
    target = function_build_dir(root, function)
    kept = _fresh(target)
    shutil.copytree(source, target, ignore=_IGNORED)
    _keep_lock(target, kept)
    (target / ENTRY_MODULE).write_text(_ENTRY, encoding="utf-8")
    (target / "wrangler.jsonc").write_text(
        _WRANGLER.format(
            function=function, name=worker, entry=ENTRY_MODULE, date=COMPATIBILITY_DATE
        ),
        encoding="utf-8",
    )
    if not (target / "pyproject.toml").is_file():
        write_pyproject(target, worker)
    return target


def write_api_worker(root: Path, worker: str) -> Path:
    """Lay out ``apps/api`` (its ``src/`` and Workers config) as a deployable worker."""
    source = root / API_DIR
    target = api_build_dir(root)
    kept = _fresh(target)
    shutil.copytree(source / "src", target / "src", ignore=_IGNORED)
    for config in ("wrangler.jsonc", "wrangler.toml", "pyproject.toml", LOCKFILE):
        if (source / config).is_file():
            shutil.copy2(source / config, target / config)
    _keep_lock(target, kept)
    # The member's pyproject.toml lends its ranges and extras (pyjwt[crypto]>=2.9); the
    # generated one replaces it.
    requirements, unresolved = declared_distributions(target)
    _write_pyproject(target, worker, requirements, unresolved)
    return target


def lay_out(root: Path, source: str, worker: str) -> Path:
    """Lay out the worker built from ``source`` (``apps/api`` or ``functions/<name>``)."""
    if source == str(API_DIR):
        return write_api_worker(root, worker)
    return write_function_worker(root, source.removeprefix(f"{FUNCTIONS_DIR}/"), worker)
