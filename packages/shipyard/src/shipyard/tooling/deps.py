"""``shipyard deps``: install every workspace member and prove the install works.

Steps, each reported with what it did and how long it took; the first failure stops the run:

1. find ``uv`` (with how to install it when it is missing);
2. ``uv lock --check`` — the lock matches every ``pyproject.toml`` (else: run ``uv lock``);
3. ``uv sync --locked --all-packages`` — install every member of the workspace;
4. import each member's packages and each function under ``functions/`` in the synced
   environment, and run ``shipyard --version`` there;
5. when the project has a ``.pre-commit-config.yaml``: install its git hooks
   (``pre-commit install --hook-type pre-commit --hook-type commit-msg``) — skipped, with a
   note, outside a git repository.

Example::

    report = install(Path("."))
    for step in report.steps:
        print(step.ok, step.name, step.detail)
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

UV_INSTALL_HINT = (
    "uv is not installed (or not on PATH). Install it with `python3 -m pip install uv` "
    "or `curl -LsSf https://astral.sh/uv/install.sh | sh`, then run `shipyard deps` again "
    "(see https://docs.astral.sh/uv/getting-started/installation/)."
)

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True, slots=True)
class Step:
    """One step of ``shipyard deps``: its name, outcome, a one-line detail and its duration."""

    name: str
    ok: bool
    detail: str
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "seconds": self.seconds}


@dataclass
class DepsReport:
    """The steps run, in order; ``ok`` when every one succeeded."""

    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "steps": [s.to_dict() for s in self.steps]}


@dataclass(frozen=True, slots=True)
class Member:
    """A workspace member: its distribution name and the import names it provides."""

    name: str
    path: Path
    imports: tuple[str, ...]


def _import_names(pyproject: dict[str, Any], name: str) -> tuple[str, ...]:
    wheel = pyproject.get("tool", {}).get("hatch", {}).get("build", {}).get("targets", {})
    packages = wheel.get("wheel", {}).get("packages") or []
    if packages:
        return tuple(Path(p).name for p in packages)
    return (name.replace("-", "_"),)


def workspace_members(root: Path) -> list[Member]:
    """The members listed under ``[tool.uv.workspace] members`` (globs expanded)."""
    data = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = data.get("tool", {}).get("uv", {}).get("workspace", {}).get("members", [])
    members: list[Member] = []
    for pattern in patterns:
        for folder in sorted(glob.glob(str(root / pattern))):
            pyproject = Path(folder) / "pyproject.toml"
            if not pyproject.is_file():
                continue
            member = tomllib.loads(pyproject.read_text())
            name = member.get("project", {}).get("name", Path(folder).name)
            has_build = "build-system" in member
            imports = _import_names(member, name) if has_build else ()
            members.append(Member(name=name, path=Path(folder), imports=imports))
    return members


def _tail(text: str, lines: int = 3) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def _verify_script(imports: Sequence[str]) -> str:
    return (
        "import importlib, pathlib\n"
        "from shipyard.tooling.apphost import load_functions\n"
        f"for name in {list(imports)!r}:\n"
        "    importlib.import_module(name)\n"
        "found = load_functions(pathlib.Path.cwd())\n"
        "print(','.join(sorted(found)))\n"
    )


def install(root: Path, *, run: Runner = subprocess.run) -> DepsReport:
    """Run the steps in the module docstring against the workspace at ``root``."""
    report = DepsReport()
    uv = shutil.which("uv")
    if uv is None:
        report.steps.append(Step("uv", False, UV_INSTALL_HINT))
        return report
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_FROZEN")}

    def call(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
        started = time.monotonic()
        result = run([uv, *args], cwd=root, env=env, capture_output=True, text=True, timeout=900)
        return result, round(time.monotonic() - started, 2)

    version, seconds = call("--version")
    report.steps.append(Step("uv", True, version.stdout.strip() or "uv found", seconds))

    lock, seconds = call("lock", "--check")
    if lock.returncode != 0:
        report.steps.append(
            Step(
                "lock",
                False,
                "uv.lock is out of date with the pyproject.toml files: run `uv lock`, review "
                f"and commit uv.lock (uv said: {_tail(lock.stderr or lock.stdout)})",
                seconds,
            )
        )
        return report
    report.steps.append(Step("lock", True, "uv.lock matches every pyproject.toml", seconds))

    members = workspace_members(root)
    sync, seconds = call("sync", "--locked", "--all-packages")
    if sync.returncode != 0:
        report.steps.append(
            Step("sync", False, f"uv sync failed: {_tail(sync.stderr or sync.stdout)}", seconds)
        )
        return report
    names = ", ".join(m.name for m in members) or "the root project"
    report.steps.append(
        Step("sync", True, f"installed {len(members)} workspace member(s): {names}", seconds)
    )

    imports = [name for member in members for name in member.imports]
    verify, seconds = call("run", "--no-sync", "python", "-c", _verify_script(imports))
    if verify.returncode != 0:
        report.steps.append(
            Step("import", False, f"import failed: {_tail(verify.stderr, 2)}", seconds)
        )
        return report
    functions = [f for f in verify.stdout.strip().split(",") if f]
    what = ", ".join([*imports, *(f"functions/{f}" for f in functions)]) or "nothing to import"
    report.steps.append(Step("import", True, f"imported {what}", seconds))

    cli, seconds = call("run", "--no-sync", "shipyard", "--version")
    if cli.returncode != 0:
        report.steps.append(
            Step("cli", False, f"shipyard --version failed: {_tail(cli.stderr, 2)}", seconds)
        )
        return report
    report.steps.append(Step("cli", True, cli.stdout.strip(), seconds))

    hooks = install_hooks(root, call)
    if hooks is not None:
        report.steps.append(hooks)
    return report


HOOK_TYPES = ("pre-commit", "commit-msg")


def install_hooks(
    root: Path, call: Callable[..., tuple[subprocess.CompletedProcess[str], float]]
) -> Step | None:
    """Install the git hooks of ``.pre-commit-config.yaml`` with the synced pre-commit.

    ``call(*args)`` runs ``uv *args`` at ``root``. None when the project has no config.
    """
    if not (root / ".pre-commit-config.yaml").is_file():
        return None
    git = shutil.which("git")
    inside = git is not None and (
        subprocess.run(
            [git, "rev-parse", "--git-dir"], cwd=root, capture_output=True, text=True, timeout=30
        ).returncode
        == 0
    )
    if not inside:
        return Step(
            "hooks",
            True,
            "skipped: not a git repository, so no git hooks were installed "
            "(after `git init`, run `shipyard deps` again)",
        )
    types = [arg for kind in HOOK_TYPES for arg in ("--hook-type", kind)]
    result, seconds = call("run", "--no-sync", "pre-commit", "install", *types)
    if result.returncode != 0:
        return Step(
            "hooks",
            False,
            f"pre-commit install failed: {_tail(result.stderr or result.stdout, 2)}",
            seconds,
        )
    return Step("hooks", True, f"git hooks installed: {', '.join(HOOK_TYPES)}", seconds)
