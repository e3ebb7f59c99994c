"""The README's first command, run literally, starts a stack that runs the template's tasks.

The command is read from README.md (first fenced ``bash`` block, first line, ``# comment``
stripped) and run with ``bash -c`` in the repository root, as a user would in a fresh shell
(no activated virtualenv on PATH). Only the database file and the server port are redirected
to temp values through ``SHIPYARD_*`` variables so the test never touches the developer's
``.shipyard/shipyard.db`` or port 3030.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from acceptance_support import REPO_ROOT, Procs, clean_env, free_port, wait_until

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


def readme_first_command() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.DOTALL)
    assert block, "README.md has no ```bash block"
    first = next(line for line in block.group(1).splitlines() if line.strip())
    return re.sub(r"\s+#.*$", "", first).strip()


def fresh_shell_env(tmp_path: Path, port: int) -> dict[str, str]:
    """The environment of a new terminal: no project virtualenv on PATH, no SHIPYARD_* set."""
    venv = os.environ.get("VIRTUAL_ENV") or str(REPO_ROOT / ".venv")
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if not p.startswith(venv)]
    env = clean_env(
        PATH=os.pathsep.join(path),
        SHIPYARD_DATABASE_URL=f"sqlite:///{tmp_path / 'dev.db'}",
        SHIPYARD_SERVER_PORT=str(port),
    )
    for name in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "UV_PROJECT_ENVIRONMENT"):
        env.pop(name, None)
    return env


def get_json(url: str) -> tuple[int, dict[str, Any]] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, json.loads(response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
        return None


def test_readme_command_is_the_expected_one() -> None:
    assert readme_first_command() == "python3 -m pip install --quiet uv && uv run shipyard dev"


async def test_readme_first_command_starts_a_working_stack(tmp_path: Path, procs: Procs) -> None:
    command = readme_first_command()
    port = free_port()
    env = fresh_shell_env(tmp_path, port)
    dev = procs.spawn(["bash", "-c", command], env=env, cwd=REPO_ROOT, name="dev")

    health_url = f"http://127.0.0.1:{port}/healthz"

    def healthy() -> dict[str, Any] | None:
        if not dev.alive():
            raise AssertionError(f"`{command}` exited early:\n{dev.output()[-4000:]}")
        answer = get_json(health_url)
        if answer is None:
            return None
        status, body = answer
        assert status == 200, body
        return body if body.get("status") == "ok" else None

    started = time.monotonic()
    body = await wait_until(
        healthy, timeout=60, interval=0.2, what=f"{health_url} to answer ok", context=dev.output
    )
    assert body["environment"] == "development"
    # The worker is a separate child: wait until it registered the template's tasks.
    body = await wait_until(
        lambda: (b := healthy()) is not None and b["tasks"] >= 2 and b,
        timeout=30,
        interval=0.2,
        what="the dev worker to register the template tasks",
        context=dev.output,
    )
    startup = time.monotonic() - started

    output = dev.output()
    assert f"http://127.0.0.1:{port}" in output, output
    assert f"http://127.0.0.1:{port}/healthz" in output, output
    worker_pid = re.search(r"worker\s+pid (\d+)", output)
    assert worker_pid, output

    payload = json.dumps({"documents": ["a b c"], "flaky_rate": 0})
    trigger = ["uv", "run", "shipyard", "trigger", "fetch-and-summarise", "--payload", payload]
    result = await asyncio.to_thread(
        subprocess.run,
        [*trigger, "--wait", "--json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{dev.output()[-3000:]}"
    triggered = json.loads(result.stdout)
    assert triggered["status"] == "COMPLETED", triggered
    assert triggered["output"]["count"] == 1
    assert triggered["output"]["summaries"] == ["a b c"]
    assert triggered["error"] is None

    stop_sent = time.monotonic()
    dev.signal_group(signal.SIGINT)
    code = await dev.wait_exit(20)
    stopped_in = time.monotonic() - stop_sent
    assert code in (0, 130, -signal.SIGINT), f"exit code {code}:\n{dev.output()[-3000:]}"
    assert "Stopping" in dev.output()
    # The worker child went away with it.
    await wait_until(
        lambda: not _alive(int(worker_pid.group(1))),
        timeout=5,
        what="the dev worker process to exit",
    )
    print(f"dev healthy + tasks registered in {startup:.1f} s, stopped in {stopped_in:.1f} s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purposes once it has no cmdline.
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())
    except OSError:
        return False
