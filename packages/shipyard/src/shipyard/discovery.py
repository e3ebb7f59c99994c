"""Finding tasks: import every module under the configured task folders.

Files whose names start with ``test_`` or end in ``_test.py`` are skipped, as are folders
starting with ``.`` or ``_``. Modules are imported under their dotted path from the project
root (``trigger/example.py`` → ``trigger.example``), so imports between task modules work.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from shipyard.config import Settings
from shipyard.errors import ConfigError


def task_files(settings: Settings) -> list[Path]:
    """Every Python file that defines tasks, in a stable order."""
    files: list[Path] = []
    for folder in settings.dirs:
        root = (settings.project_root / folder).resolve()
        if not root.is_dir():
            raise ConfigError(
                f"Task folder '{folder}' does not exist under {settings.project_root} "
                "(set [tool.shipyard] dirs in pyproject.toml)."
            )
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root)
            if any(part.startswith((".", "_")) and part != "__init__.py" for part in rel.parts):
                continue
            if path.name.startswith("test_") or path.name.endswith("_test.py"):
                continue
            files.append(path)
    return files


def _module_name(path: Path, project_root: Path) -> str:
    rel = path.resolve().relative_to(project_root.resolve()).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def discover(settings: Settings, *, reload: bool = False) -> list[str]:
    """Import the task modules; returns their module names.

    With ``reload`` the modules are imported afresh (hot reload in ``shipyard dev``).
    """
    root = str(settings.project_root.resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    names = []
    for path in task_files(settings):
        name = _module_name(path, settings.project_root)
        cached = sys.modules.get(name)
        # A module of the same dotted name from another project root is a different module.
        stale = cached is not None and Path(getattr(cached, "__file__", "") or "") != path
        if (reload or stale) and cached is not None:
            del sys.modules[name]
        importlib.import_module(name)
        names.append(name)
    return names
