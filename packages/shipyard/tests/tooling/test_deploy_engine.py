"""``shipyard deploy --platform engine`` against fake ``podman``/``docker`` CLIs on PATH.

The deploy picks the first container engine that is installed and answers ``info`` (a docker
CLI without a daemon — this machine — does not count), builds the project's Dockerfile tagged
with ``SHIPYARD_VERSION`` or the git short sha, and pushes to ``SHIPYARD_IMAGE_REPOSITORY`` or
prints how to run the image.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from deploy_fakes import install_fakes
from test_deploy_commands import REPO_ROOT, path_with, run

from shipyard.tooling.deploy.engine import find_container_tool

REPOSITORY = "registry.example.com/team/shipyard"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "trigger").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "Dockerfile", root / "Dockerfile")
    (root / "pyproject.toml").write_text('[project]\nname = "demo"\n\n[tool.shipyard]\n')
    return root


def test_builds_with_docker_and_prints_how_to_run(project: Path, tmp_path: Path) -> None:
    fakes, path = path_with(tmp_path, ("docker",))
    result = run(project, path, "-p", "engine", "-b", "main", SHIPYARD_VERSION="1.4.0")
    assert result.exit_code == 0, result.output
    assert fakes.argvs() == [
        ["docker", "info"],
        ["docker", "build", "--file", "Dockerfile", "--tag", "shipyard-engine:1.4.0", "."],
    ]
    assert fakes.calls()[1]["cwd"] == str(project)
    out = result.output
    assert "built shipyard-engine:1.4.0" in out
    assert "docker run -d --name shipyard-server -p 3030:3030 -e SHIPYARD_DATABASE_URL" in out
    assert "shipyard-engine:1.4.0 shipyard worker --wait-for-db" in out
    assert "SHIPYARD_IMAGE_REPOSITORY" in out


def test_podman_first_and_pushed_to_the_repository(project: Path, tmp_path: Path) -> None:
    fakes, path = path_with(tmp_path, ("podman", "docker"))
    result = run(
        project,
        path,
        "-p",
        "engine",
        "-b",
        "feature/x",
        SHIPYARD_VERSION="2026.11.1",
        SHIPYARD_IMAGE_REPOSITORY=REPOSITORY + "/",
    )
    assert result.exit_code == 0, result.output
    image = f"{REPOSITORY}:2026.11.1"
    assert fakes.argvs() == [
        ["podman", "info"],
        ["podman", "build", "--file", "Dockerfile", "--tag", image, "."],
        ["podman", "push", image],
    ]
    assert f"{image} (pushed)" in result.output


def test_a_docker_cli_without_an_engine_is_not_used(project: Path, tmp_path: Path) -> None:
    fakes, path = path_with(tmp_path, ("podman", "docker"))
    fakes.configure(broken_engines=["podman"])
    result = run(project, path, "-p", "engine", "-b", "main", SHIPYARD_VERSION="1")
    assert result.exit_code == 0, result.output
    assert [a[:2] for a in fakes.argvs()] == [
        ["podman", "info"],
        ["docker", "info"],
        ["docker", "build"],
    ]
    fakes.configure(broken_engines=["podman", "docker"])
    result = run(project, path, "-p", "engine", "-b", "main", SHIPYARD_VERSION="1")
    assert result.exit_code == 1
    assert "cannot build the engine image here" in result.output
    assert "Cannot connect to the Docker daemon" in result.output
    assert not any(a[1] == "build" for a in fakes.argvs()[3:])


def test_no_container_engine_at_all(project: Path, tmp_path: Path) -> None:
    _fakes, path = path_with(tmp_path, ())
    result = run(project, path, "-p", "engine", "-b", "main", SHIPYARD_VERSION="1")
    assert result.exit_code == 1
    assert "neither podman nor docker is installed" in result.output


def test_version_is_the_git_short_sha(project: Path, tmp_path: Path) -> None:
    fakes, path = path_with(tmp_path, ("docker",))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=project, check=True)
    sha = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=project, capture_output=True, text=True
    ).stdout.strip()
    result = run(project, path, "-p", "engine", "-b", "main", "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"docker build --file Dockerfile --tag shipyard-engine:{sha} ." in result.output
    assert [a[1] for a in fakes.argvs()] == ["info"]  # a dry run only probes the engine
    (project / "Dockerfile").write_text("FROM scratch\n")  # uncommitted change
    result = run(project, path, "-p", "engine", "-b", "main", "--dry-run")
    assert f"shipyard-engine:{sha}-dirty" in result.output


def test_bad_version_or_repository_is_refused(project: Path, tmp_path: Path) -> None:
    fakes, path = path_with(tmp_path, ("docker",))
    result = run(project, path, "-p", "engine", "-b", "main", SHIPYARD_VERSION="bad tag!")
    assert result.exit_code == 1
    assert "SHIPYARD_VERSION is not a valid image tag" in result.output
    result = run(
        project,
        path,
        "-p",
        "engine",
        "-b",
        "main",
        SHIPYARD_VERSION="1",
        SHIPYARD_IMAGE_REPOSITORY=f"{REPOSITORY}:v1",
    )
    assert result.exit_code == 1
    assert "without a tag" in result.output
    assert not any(a[1] == "build" for a in fakes.argvs())


def test_this_machines_real_container_tools() -> None:
    """What the real machine offers (documented in docs/scaling.md): here, a docker CLI with no
    engine. Whatever it is, the answer is a working tool or one sentence saying why not."""
    found = find_container_tool()
    if found.argv:
        assert found.argv[0] in ("podman", "docker")
    else:
        assert found.problem and ("installed" in found.problem or "info` failed" in found.problem)


def test_fakes_record_container_calls(tmp_path: Path) -> None:
    fakes = install_fakes(tmp_path / "bin", ("docker",))
    subprocess.run([str(fakes.bin / "docker"), "push", "x:1"], check=True, capture_output=True)
    assert fakes.argvs() == [["docker", "push", "x:1"]]
