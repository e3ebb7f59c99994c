"""The exception tree drawn in ``shipyard/errors.py``'s docstring is the real class tree, and
every Shipyard error class lives in that module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import shipyard.errors as errors

SRC = Path(errors.__file__).resolve().parent
_LINE = re.compile(r"^(?P<indent>[\s│]*)(?:[├└]── )?(?P<name>[A-Z]\w+)\b")


def drawn_tree() -> dict[str, str | None]:
    """``{class name: parent name}`` as the docstring draws it."""
    doc = errors.__doc__ or ""
    block = doc.split("The tree::", 1)[1]
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for raw in block.splitlines():
        if not raw.strip():
            continue
        match = _LINE.match(raw)
        if match is None:
            break
        depth = match.start("name")
        name = match.group("name")
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[name] = stack[-1][1] if stack else None
        stack.append((depth, name))
    return parents


def real_tree() -> dict[str, str | None]:
    """``{class name: parent name}`` of every ShipyardError class in ``errors``."""
    tree: dict[str, str | None] = {}
    for name, value in vars(errors).items():
        if isinstance(value, type) and issubclass(value, errors.ShipyardError):
            base = value.__bases__[0]
            tree[name] = None if value is errors.ShipyardError else base.__name__
    return tree


def test_the_docstring_draws_exactly_the_class_tree() -> None:
    assert drawn_tree() == real_tree()


def test_every_error_has_a_stable_unique_code() -> None:
    codes = [
        value.code
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.ShipyardError)
    ]
    assert len(codes) == len(set(codes))


def test_no_error_class_is_defined_outside_errors_py() -> None:
    stray = []
    for path in SRC.rglob("*.py"):
        if path.name == "errors.py" and path.parent == SRC:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            bases = [
                b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                for b in getattr(node, "bases", [])
            ]
            if (
                isinstance(node, ast.ClassDef)
                and not node.name.startswith("_")
                and any(b.endswith(("Error", "Exception")) for b in bases)
            ):
                stray.append(f"{path.relative_to(SRC)}:{node.lineno}: {node.name}")
    assert stray == []
