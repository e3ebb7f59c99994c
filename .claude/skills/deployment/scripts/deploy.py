"""Deploy this branch: `uv run shipyard deploy ARGS` from the project root, on every OS.

Examples: `deploy.py --platform both --dry-run`, `deploy.py cleanup --branch feature/login`.
Arguments are passed through; the exit code is shipyard's.
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
    return subprocess.call([uv, "run", "shipyard", "deploy", *sys.argv[1:]], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
