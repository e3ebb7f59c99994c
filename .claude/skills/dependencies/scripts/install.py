"""Install the project's dependencies and git hooks: `uv run shipyard deps` from the project root.

Works on every OS: installs uv with pip when it is missing, then hands over to shipyard.
Extra arguments (such as --json) are passed through. The exit code is shipyard's.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]


def uv() -> str:
    found = shutil.which("uv")
    if found:
        return found
    print("uv is not installed: installing it with pip …", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "uv"], check=True)
    return shutil.which("uv") or "uv"


def main() -> int:
    return subprocess.call([uv(), "run", "shipyard", "deps", *sys.argv[1:]], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
