"""``shipyard.schemas`` is a neutral package: it imports pydantic, the standard library and
Shipyard's neutral modules only, never the engine, SDK, store or server. Its public surface is
a sorted, complete ``__all__``."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import shipyard.schemas as schemas

PACKAGE = Path(schemas.__file__).parent
NEUTRAL = {
    "shipyard.errors",
    "shipyard.jsonutil",
    "shipyard.durations",
    "shipyard.metadata_ops",
    "shipyard.records",
}
THIRD_PARTY = {"pydantic", "pydantic_core"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_schemas_import_only_neutral_modules() -> None:
    offending: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        bad = set()
        for name in _imports(path):
            top = name.split(".")[0]
            if name.startswith("shipyard.schemas") or name in NEUTRAL or top in THIRD_PARTY:
                continue
            if top in sys.stdlib_module_names or name == "__future__":
                continue
            bad.add(name)
        if bad:
            offending[path.name] = bad
    assert offending == {}


def test_all_is_sorted_complete_and_documented() -> None:
    assert list(schemas.__all__) == sorted(set(schemas.__all__), key=lambda n: (not n.isupper(), n))
    missing = [name for name in schemas.__all__ if not hasattr(schemas, name)]
    assert missing == []
    public = {
        name
        for name, value in vars(schemas).items()
        if not name.startswith("_")
        and not isinstance(value, type(schemas))
        and name != "annotations"
    }
    assert public - set(schemas.__all__) == set()
    undocumented = [
        name
        for name in schemas.__all__
        if callable(getattr(schemas, name))
        and isinstance(getattr(schemas, name), type)
        and not getattr(schemas, name).__doc__
    ]
    assert undocumented == []


def test_modules_stay_small() -> None:
    too_long = {
        path.name: count
        for path in PACKAGE.glob("*.py")
        if (count := len(path.read_text().splitlines())) > 600
    }
    assert too_long == {}
