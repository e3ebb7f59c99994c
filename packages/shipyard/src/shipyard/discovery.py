"""Finding tasks: import every module under the configured task folders; the version of that
code.

Files whose names start with ``test_`` or end in ``_test.py`` are skipped, as are folders
starting with ``.`` or ``_``. Modules are imported under their dotted path from the project
root (``trigger/example.py`` → ``trigger.example``), so imports between task modules work.

:func:`code_version` is the version a worker registers when ``SHIPYARD_VERSION`` is unset: a
content hash of the task files, so the same code is the same version on every host.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from collections.abc import Iterable
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


def code_version(settings: Settings, files: Iterable[str | Path] = ()) -> str:
    """``settings.version`` (``SHIPYARD_VERSION``) if set, else a content hash of the task code.

    The hash covers every file under the task folders (:func:`task_files`; folders that do
    not exist are skipped) and ``files`` (where the worker's tasks are defined): 12 hex
    characters of SHA-256 over each file's path — relative to the project root when under it,
    so checkouts in different places agree — and its bytes, in path order. Modules the tasks
    import from elsewhere are not covered: set ``SHIPYARD_VERSION`` (e.g. a git sha) to
    version a whole deploy.

    Example::

        code_version(load_settings())   # "3f9a0c1d2e4b"
    """
    if settings.version:
        return settings.version
    root = settings.project_root.resolve()
    present = [folder for folder in settings.dirs if (root / folder).is_dir()]
    paths = {p.resolve() for p in task_files(settings.model_copy(update={"dirs": present}))}
    for file in files:
        path = Path(file)
        if path.is_absolute() or path.exists():
            paths.add(path.resolve())
    digest = hashlib.sha256()
    for name, path in sorted((_display_name(p, root), p) for p in paths):
        digest.update(name.encode() + b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"<unreadable>")
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def _display_name(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name
