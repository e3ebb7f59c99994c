"""Load named SQL blocks (``-- name: x``) from a backend's ``queries.sql``, once."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@cache
def load_queries(path: Path) -> dict[str, str]:
    """Map each query name in the file to its SQL text (comments kept, trailing ``;`` dropped)."""
    text = path.read_text()
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{path}: query {name!r} is defined twice")
        queries[name] = body.strip().rstrip(";").strip()
    return queries


def migration_files(folder: Path) -> list[Path]:
    """Numbered ``NNNN_name.sql`` migrations in apply order."""
    files = sorted(p for p in folder.glob("*.sql") if re.match(r"^\d{4}_", p.name))
    return files
