"""Many processes creating the development secret key at once all read the same full key.

24 real Python processes start, import Shipyard, and wait at a barrier (a file appearing);
then all of them resolve the key of a fresh project at the same moment. Repeated over several
fresh projects to give a race many chances: before the key file was written atomically, a
process could read it empty and sign with an empty key.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from acceptance_support import Procs, clean_env, wait_until

from shipyard.config import SECRET_KEY_MIN_BYTES

pytestmark = [pytest.mark.timeout(120)]

PROCESSES = 24
ROUNDS = 5

RACER = """
import sys, time
from pathlib import Path
from shipyard.config import load_settings

base = Path(sys.argv[1])
(base / f"ready-{sys.argv[2]}").touch()
for round in range(int(sys.argv[3])):
    go = base / f"go-{round}"
    while not go.exists():
        time.sleep(0.001)
    try:
        key = load_settings(project_root=base / f"project-{round}").resolved_secret_key()
    except Exception as exc:
        key = f"ERROR {type(exc).__name__}: {exc}"
    print(f"{round} {key!r}", flush=True)
"""


async def test_concurrent_processes_all_read_the_same_complete_key(
    tmp_path: Path, procs: Procs
) -> None:
    for round_ in range(ROUNDS):
        project = tmp_path / f"project-{round_}"
        project.mkdir()
        (project / "pyproject.toml").write_text("[project]\nname='x'\n\n[tool.shipyard]\n")
    children = [
        procs.spawn(
            [sys.executable, "-c", RACER, str(tmp_path), str(i), str(ROUNDS)],
            env=clean_env(),
            cwd=tmp_path,
            name=f"racer{i}",
        )
        for i in range(PROCESSES)
    ]
    await wait_until(
        lambda: len(list(tmp_path.glob("ready-*"))) == PROCESSES,
        timeout=90,
        what="every racer to import shipyard",
        context=procs.dump,
    )
    for round_ in range(ROUNDS):
        (tmp_path / f"go-{round_}").touch()
    for child in children:
        assert await child.wait_exit(60) == 0, child.output()

    for round_ in range(ROUNDS):
        keys = set()
        for child in children:
            lines = [ln for ln in child.output().splitlines() if ln.startswith(f"{round_} ")]
            assert len(lines) == 1, child.output()
            keys.add(lines[0].split(" ", 1)[1])
        assert len(keys) == 1, f"round {round_}: {len(keys)} different keys: {sorted(keys)}"
        key = ast.literal_eval(keys.pop())  # the repr printed by each racer
        assert key.startswith("sk_dev_") and len(key) >= SECRET_KEY_MIN_BYTES, key
        folder = tmp_path / f"project-{round_}" / ".shipyard"
        assert (folder / "secret_key").read_text() == key
        assert [p.name for p in folder.iterdir()] == ["secret_key"], "temp files left behind"
