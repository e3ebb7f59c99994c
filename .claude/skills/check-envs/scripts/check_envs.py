"""Check .env: `uv run shipyard check-envs` from the project root, on every OS.

Arguments (--env-file, -e ENV, --json) are passed through; the exit code is shipyard's.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]


def main() -> int:
    uv = shutil.which("uv")
    if uv is None:
        print("uv is not installed: run `python3 -m pip install uv`, then try again.")
        return 1
    return subprocess.call([uv, "run", "shipyard", "check-envs", *sys.argv[1:]], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
