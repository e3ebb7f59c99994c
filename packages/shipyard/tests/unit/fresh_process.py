"""What a fresh interpreter prints: for tests of what importing a module loads, which the test
process itself (everything imported long ago) cannot show."""

from __future__ import annotations

import subprocess
import sys


def fresh_python(code: str) -> str:
    """Run ``code`` in a new Python process (this one's interpreter); its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout
