"""``await shipyard.aclose()``: a plain script that triggers a run, then closes the default
engine, leaves nothing running (no pool task, no thread, no warning) and exits cleanly — on
both backends. An engine installed with ``set_engine`` belongs to its owner and stays open.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from acceptance_support import clean_env

import shipyard
from shipyard.config import load_settings
from shipyard.engine import registry
from shipyard.engine.engine import Engine
from shipyard.engine.registry import get_engine, set_engine

SCRIPT = """
import asyncio
import threading

import shipyard
from shipyard import task


@task(id="script-task")
async def script_task(payload):
    return payload


async def main() -> None:
    handle = await script_task.trigger({"n": 1})
    run = await shipyard.runs.retrieve(handle.id)
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    print("triggered", handle.id, run.status, "tasks-before", len(others), flush=True)
    await shipyard.aclose()
    await shipyard.aclose()  # a second call does nothing
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    print("tasks-after", len(others), "threads-after", threads, flush=True)


asyncio.run(main())
"""


def test_a_script_that_triggers_then_acloses_exits_cleanly(
    tmp_path: Path, database_url: str
) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "script"\nversion = "0"\n')
    (tmp_path / "script.py").write_text(SCRIPT)
    done = subprocess.run(
        # Every warning shown (ResourceWarning and unclosed-resource ones are hidden by default).
        [sys.executable, "-W", "always", "script.py"],
        cwd=tmp_path,
        env=clean_env(SHIPYARD_DATABASE_URL=database_url, SHIPYARD_PROJECT_ROOT=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # no "Task was destroyed but it is pending", no warning
    first, second = done.stdout.splitlines()
    assert first.startswith("triggered run_") and " QUEUED " in first, first
    assert second == "tasks-after 0 threads-after []", done.stdout


async def test_aclose_leaves_an_engine_installed_by_its_owner_open(tmp_path: Path) -> None:
    """``shipyard dev`` installs its engine for the app API it serves; the app's lifespan
    calls ``aclose()`` on shutdown, which must not close dev's engine under it."""
    settings = load_settings(
        project_root=tmp_path, database_url=f"sqlite:///{tmp_path / 'owner.db'}"
    )
    owned = Engine(settings)
    await owned.start()
    set_engine(owned)
    try:
        await shipyard.aclose()
        assert get_engine() is owned
        assert await owned.list_tasks() == []  # still open: it answers
    finally:
        set_engine(None)
        await owned.close()


async def test_aclose_closes_the_engine_configure_built(tmp_path: Path) -> None:
    shipyard.configure(project_root=tmp_path, database_url=f"sqlite:///{tmp_path / 'own.db'}")
    built = get_engine()
    await built.start()
    await shipyard.aclose()
    assert registry._registry.engine is None  # the next SDK call builds a new one
    await shipyard.aclose()  # nothing to close: does nothing


@pytest.fixture(autouse=True)
def _no_default_engine_left() -> Iterator[None]:
    """Each test starts and ends without a process default engine."""
    set_engine(None)
    yield
    set_engine(None)
