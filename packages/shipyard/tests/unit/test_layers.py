"""The import rules of the package, checked on its source (AST), so a layering break fails CI.

Layers, each importing only downward: ``sdk → engine → store``. ``worker``, ``server``, ``cli``
and ``mcp`` call the engine (never the store); the engine imports nothing above it; the store
imports nothing but neutral modules; neutral modules (value types, settings, errors …) import
only each other. Imports inside functions and under ``TYPE_CHECKING`` count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "shipyard"

NEUTRAL_MODULES = {
    "clock",
    "config",
    "cron",
    "crontime",
    "discovery",
    "durations",
    "errors",
    "extras",
    "idempotency",
    "ids",
    "logformat",
    "jsonutil",
    "machines",
    "metadata_ops",
    "processes",
    "records",
    "retry_policy",
    "schedule_ticks",
    "statuses",
    "version",
}
NEUTRAL_PACKAGES = {"models", "schemas"}

# What each layer may import, besides itself and the neutral modules.
ALLOWED: dict[str, set[str]] = {
    "neutral": set(),
    "store": set(),
    "engine": {"store"},
    "client": set(),
    "sdk": {"engine", "client"},
    "worker": {"engine"},
    "server": {"engine", "client"},
    "mcp": {"engine", "sdk", "client"},
    "tooling": set(),
    "cli": {"engine", "sdk", "client", "worker", "server", "mcp", "tooling"},
    "package": {"engine", "sdk", "client"},  # shipyard/__init__.py: the public API
    "main": {"cli"},
    "testing": {"store", "engine", "sdk", "client", "worker", "server", "cli", "mcp", "tooling"},
}


def layer_of(module: str) -> str:
    """The layer of a dotted module name inside ``shipyard``."""
    parts = module.split(".")
    assert parts[0] == "shipyard", module
    if len(parts) == 1:
        return "package"
    head = parts[1]
    if head == "__main__":
        return "main"
    if head in NEUTRAL_MODULES or head in NEUTRAL_PACKAGES:
        return "neutral"
    return head


def _module_name(path: Path, src: Path = SRC) -> str:
    rel = path.relative_to(src.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return [(line, name) for line, name in found if name.split(".")[0] == "shipyard"]


def violations(src: Path = SRC) -> list[str]:
    """Every import that breaks the rules, as ``file:line: A imports B``."""
    problems: list[str] = []
    for path in sorted(src.rglob("*.py")):
        module = _module_name(path, src)
        source_layer = layer_of(module)
        allowed = {source_layer, "neutral", *ALLOWED[source_layer]}
        for line, imported in _imports(path, module):
            target = layer_of(imported)
            if target == "package" and source_layer != "package":
                problems.append(f"{path.relative_to(src)}:{line}: imports the package root")
                continue
            if target not in allowed:
                problems.append(
                    f"{path.relative_to(src)}:{line}: {source_layer} imports {imported} ({target})"
                )
    return problems


def test_every_module_belongs_to_a_known_layer() -> None:
    unknown = {
        layer_of(_module_name(p))
        for p in SRC.rglob("*.py")
        if layer_of(_module_name(p)) not in ALLOWED
    }
    assert unknown == set()


def test_imports_follow_the_layers() -> None:
    assert violations() == []


@pytest.mark.parametrize(
    ("module", "layer"),
    [
        ("shipyard.store.sqlite.store", "store"),
        ("shipyard.records", "neutral"),
        ("shipyard.models.runs", "neutral"),
        ("shipyard.engine.claims", "engine"),
        ("shipyard", "package"),
    ],
)
def test_layer_of(module: str, layer: str) -> None:
    assert layer_of(module) == layer


def test_the_checker_catches_a_break(tmp_path: Path) -> None:
    src = tmp_path / "shipyard"
    (src / "store").mkdir(parents=True)
    (src / "sdk").mkdir()
    (src / "store" / "bad.py").write_text("def f():\n    from shipyard.engine import engine\n")
    (src / "sdk" / "worse.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..store import x\n"
    )
    (src / "sdk" / "fine.py").write_text("from shipyard.engine.scope import current_scope\n")
    assert violations(src) == [
        "sdk/worse.py:3: sdk imports shipyard.store (store)",
        "store/bad.py:2: store imports shipyard.engine (engine)",
    ]
