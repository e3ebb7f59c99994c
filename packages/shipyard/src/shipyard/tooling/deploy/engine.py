"""``shipyard deploy --platform engine``: the engine and workers as a container image.

The image is the project's ``Dockerfile`` (``shipyard server`` by default, ``shipyard worker``
for workers, both against ``SHIPYARD_DATABASE_URL``). A deploy builds it with podman or docker —
the first that is installed *and* answers ``info`` (a docker CLI without a running daemon does
not count) — tags it with the version, and pushes it to ``SHIPYARD_IMAGE_REPOSITORY`` when that
is set; otherwise it prints the commands that run it.

The version is ``SHIPYARD_VERSION`` when set (a release number, a CI build id), else the git
short sha of ``HEAD`` (``-dirty`` appended when the work tree has uncommitted changes).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from shipyard.errors import EngineImageError

DOCKERFILE = "Dockerfile"
LOCAL_REPOSITORY = "shipyard-engine"
CONTAINER_TOOLS = ("podman", "docker")
SERVER_COMMAND = ("shipyard", "server")
WORKER_COMMAND = ("shipyard", "worker", "--wait-for-db")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")

Which = Callable[[str], str | None]
Probe = Callable[[tuple[str, ...]], tuple[int, str]]


@dataclass(frozen=True, slots=True)
class ContainerTool:
    """The container CLI chosen, or why none could be (``problem``)."""

    argv: tuple[str, ...]
    problem: str | None = None


def _probe(argv: tuple[str, ...]) -> tuple[int, str]:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, type(exc).__name__
    return done.returncode, f"{done.stdout}\n{done.stderr}".strip()


def find_container_tool(which: Which = shutil.which, probe: Probe = _probe) -> ContainerTool:
    """podman, else docker — the first one installed whose engine answers ``info``."""
    problems = []
    for name in CONTAINER_TOOLS:
        path = which(name)
        if path is None:
            continue
        code, output = probe((name, "info"))
        if code == 0:
            return ContainerTool((name,))
        last = [line for line in output.splitlines() if line.strip()][-1:] or ["no answer"]
        problems.append(f"`{name} info` failed ({last[0].strip()[:160]})")
    if not problems:
        return ContainerTool((), "neither podman nor docker is installed")
    return ContainerTool((), "; ".join(problems))


def image_version(root: Path, environ: Mapping[str, str]) -> str:
    """``SHIPYARD_VERSION``, else the git short sha (``-dirty`` with uncommitted changes)."""
    version = (environ.get("SHIPYARD_VERSION") or "").strip()
    if version:
        if not _TAG.fullmatch(version):
            raise EngineImageError(
                "SHIPYARD_VERSION is not a valid image tag: letters, digits, '_', '.', '-', "
                "at most 128 characters, not starting with '.' or '-'."
            )
        return version
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=30,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        sha = None
    if sha is None or sha.returncode != 0 or not sha.stdout.strip():
        raise EngineImageError(
            "no version for the image: set SHIPYARD_VERSION (e.g. 1.4.0) or deploy from a git "
            "checkout with a commit."
        )
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def image_reference(environ: Mapping[str, str], version: str) -> tuple[str, bool]:
    """(``repository:version``, pushed?) — pushed when ``SHIPYARD_IMAGE_REPOSITORY`` is set."""
    repository = (environ.get("SHIPYARD_IMAGE_REPOSITORY") or "").strip().rstrip("/")
    if repository and (":" in repository.rsplit("/", 1)[-1] or "@" in repository):
        raise EngineImageError(
            "SHIPYARD_IMAGE_REPOSITORY names a repository without a tag "
            "(registry.example.com/team/shipyard), the version is added."
        )
    return f"{repository or LOCAL_REPOSITORY}:{version}", bool(repository)


def build_args(image: str) -> tuple[str, ...]:
    """``build --file Dockerfile --tag IMAGE .`` (run at the project root)."""
    return ("build", "--file", DOCKERFILE, "--tag", image, ".")


def push_args(image: str) -> tuple[str, ...]:
    return ("push", image)


def run_commands(tool: str, image: str) -> list[str]:
    """How to start the engine server and a worker from ``image`` (printed after a build)."""
    env = "-e SHIPYARD_DATABASE_URL -e SHIPYARD_SECRET_KEY"
    return [
        f"{tool} run -d --name shipyard-server -p 3030:3030 {env} {image} "
        + " ".join(SERVER_COMMAND),
        f"{tool} run -d --name shipyard-worker-1 {env} {image} " + " ".join(WORKER_COMMAND),
    ]
