"""Fixtures for the acceptance tests: real ``shipyard`` processes against temp projects."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from acceptance_support import Procs, Project, make_project

from shipyard.config import load_settings
from shipyard.engine.engine import Engine


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: spawns several worker processes (deselect with -m 'not slow')"
    )


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    """Child processes of this test; each one's process group is SIGKILLed at teardown."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    group = Procs(log_dir)
    try:
        yield group
    finally:
        group.kill_all()


@pytest.fixture
def project(tmp_path: Path, procs: Procs) -> Project:
    """A fresh project folder with ``[tool.shipyard] dirs = ["trigger"]``."""
    return make_project(tmp_path / "project", procs)


@pytest.fixture
async def client_engine(project: Project) -> AsyncIterator[Engine]:
    """An engine in the test process on the project's database (to trigger with options)."""
    engine = Engine(load_settings(project_root=project.root, database_url=project.database_url))
    await engine.start()
    try:
        yield engine
    finally:
        await engine.close()
