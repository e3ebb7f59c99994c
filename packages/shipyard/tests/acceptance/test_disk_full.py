"""SQLite on a full disk: a real small filesystem (a tmpfs) fills up under a running worker.

Proves, with a real ``shipyard worker`` process and a real full filesystem:

* the application's trigger gets :class:`~shipyard.errors.DatabaseFullError`, whose message
  says the disk is full and that nothing was written — and nothing was;
* the worker treats the full disk as an outage: one line when it starts, one when it ends, no
  traceback, its finished results kept in memory;
* once space is freed, the worker writes them, the application triggers again, and every run
  completes.

Mounting a tmpfs needs root (or CAP_SYS_ADMIN); elsewhere the test is skipped.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from acceptance_support import Procs, make_project, wait_until

from shipyard.config import load_settings
from shipyard.engine.engine import Engine
from shipyard.errors import DatabaseFullError

pytestmark = pytest.mark.timeout(60)

TASKS = """
from shipyard import task


@task(id="hold")
async def hold(payload, ctx):
    go = Path(os.environ["DISK_TEST_GO"])  # outside the full filesystem
    while not go.exists():
        await asyncio.sleep(0.02)
    return payload["i"]
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs of the test's own, unmounted at teardown."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the filesystem has no space left; its path."""
    path = folder / "filler"
    chunk = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as f:
        while len(chunk) >= 512:
            try:
                f.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk = chunk[: len(chunk) // 2]
    return path


@pytest.mark.slow
async def test_full_disk_is_an_outage_the_worker_and_the_trigger_recover_from(
    small_disk: Path, procs: Procs, tmp_path: Path
) -> None:
    project = make_project(small_disk / "project", procs)
    project.write_tasks("hold", TASKS)
    go = tmp_path / "go"
    # A 6 s lease: the short outage below never lets a running attempt's lease expire.
    worker = project.spawn_shipyard(
        "worker", "--heartbeat", "2", "--poll", "0.1", "--concurrency", "4",
        name="worker", DISK_TEST_GO=str(go),
    )  # fmt: skip
    engine = Engine(load_settings(project_root=project.root, database_url=project.database_url))
    await engine.start()
    try:
        await engine.batch_trigger(
            [{"task": "hold", "payload": {"i": i}, "options": {}} for i in range(4)], {}
        )
        await wait_until(
            lambda: len(project.query("SELECT id FROM runs WHERE status = 'EXECUTING'")) == 4,
            timeout=30,
            what="the worker to execute 4 runs",
            context=procs.dump,
        )
        filler = fill(small_disk)

        # The application: a clear error, and nothing written.
        big = [{"task": "hold", "payload": {"i": 100 + i, "pad": "x" * 100_000}} for i in range(20)]
        with pytest.raises(DatabaseFullError) as caught:
            await engine.batch_trigger([{**e, "options": {}} for e in big], {})
        assert "disk is full" in str(caught.value)
        assert "Nothing of this operation was written" in str(caught.value)
        assert len(project.query("SELECT id FROM runs")) == 4

        # The worker: its 4 attempts end while nothing can be written.
        go.touch()
        await wait_until(
            lambda: "database full while" in worker.output(),
            timeout=20,
            what="the worker to report the full disk as an outage",
            context=procs.dump,
        )
        filler.unlink()

        await engine.batch_trigger(
            [{"task": "hold", "payload": {"i": i}, "options": {}} for i in range(4, 8)], {}
        )
        await wait_until(
            lambda: len(project.query("SELECT id FROM runs WHERE status = 'COMPLETED'")) == 8,
            timeout=30,
            what="every run to complete once space was freed",
            context=procs.dump,
        )
    finally:
        await engine.close()
    attempts = project.query("SELECT run_id, number, status FROM attempts ORDER BY run_id")
    assert [(a["number"], a["status"]) for a in attempts] == [(1, "COMPLETED")] * 8
    log = worker.output()
    assert worker.alive(), log[-4000:]
    assert "Traceback" not in log, log[-6000:]
    # One line per outage; SQLite's WAL may take a small write while the disk is full (it
    # reuses its file after a checkpoint), which ends the outage early: a few lines at most.
    assert 1 <= log.count("database full while") <= 3, log[-6000:]
    assert "database reachable again" in log, log[-6000:]
    assert os.listdir(small_disk) == ["project"]
