"""Named SQL blocks (``-- name: x``), loaded once: the shared queries plus a dialect's own.

Every query is written once with ``:name`` placeholders. ``sql/shared.sql`` holds the queries
both backends run as they are; ``sqlite/queries.sql`` and ``postgres/queries.sql`` hold only
the ones that differ (list parameters, row locks, the hot paths). A name lives in exactly one
file. A condition several queries share is a ``-- fragment:`` block, used as ``{{name}}``
(shared.sql's fragments serve both dialects). For PostgreSQL the placeholders become
psycopg's ``%(name)s`` at load time (``::type`` casts and ``%`` are left intact). Comments are
dropped at load time.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

STORE_DIR = Path(__file__).parent
DIALECTS = ("sqlite", "postgres")

_BLOCK = re.compile(r"^--\s*(name|fragment):\s*(\w+)\s*$", re.MULTILINE)
# "{{x}}" in a query: the SQL of the block "-- fragment: x" (its own file's, or shared.sql's).
_USE = re.compile(r"\{\{(\w+)\}\}")
# ":name" but not the second colon of a "::type" cast, nor "a:b" inside a word.
_PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_QUOTED = re.compile(r"('(?:[^']|'')*')")


def parse_blocks(text: str, source: str, fragments: dict[str, str] | None = None) -> dict[str, str]:
    """Map each ``-- name:`` block of ``text`` to its SQL (comments and trailing ``;`` dropped),
    each ``{{x}}`` in it replaced by the SQL of ``-- fragment: x``: a condition several
    statements share, written once (of ``text``, or of ``fragments``)."""
    known = {**(fragments or {}), **parse_fragments(text, source)}
    return {
        name: _expand(sql, known, f"{source}: query {name!r}")
        for name, sql in _blocks(text, source, "name").items()
    }


def parse_fragments(text: str, source: str) -> dict[str, str]:
    """The ``-- fragment:`` blocks of ``text`` by name (comments dropped)."""
    return _blocks(text, source, "fragment")


def _blocks(text: str, source: str, kind: str) -> dict[str, str]:
    parts = _BLOCK.split(text)
    found: dict[str, str] = {}
    for each, name, body in zip(parts[1::3], parts[2::3], parts[3::3], strict=True):
        if each != kind:
            continue
        if name in found:
            noun = "query" if kind == "name" else kind
            raise ValueError(f"{source}: {noun} {name!r} is defined twice")
        found[name] = _strip_comments(body).strip().rstrip(";").strip()
    return found


def _expand(sql: str, known: dict[str, str], where: str) -> str:
    def fragment(use: re.Match[str]) -> str:
        if use[1] not in known:
            raise ValueError(f"{where} uses an unknown fragment {use[1]!r}")
        return known[use[1]]

    return _USE.sub(fragment, sql)


def _strip_comments(body: str) -> str:
    lines = []
    for line in body.splitlines():
        quoted = False
        for index, char in enumerate(line):
            if char == "'":
                quoted = not quoted
            elif char == "-" and not quoted and line.startswith("--", index):
                line = line[:index]
                break
        if line.strip():
            lines.append(line.rstrip())
    return "\n".join(lines)


def to_psycopg(sql: str) -> str:
    """``:name`` → ``%(name)s`` outside string literals; a literal ``%`` is doubled so psycopg
    keeps it."""
    parts = _QUOTED.split(sql.replace("%", "%%"))
    parts[::2] = [_PLACEHOLDER.sub(r"%(\1)s", part) for part in parts[::2]]
    return "".join(parts)


def placeholders(sql: str) -> set[str]:
    """The ``:name`` placeholders of a query written in the shared style."""
    return {name for part in _QUOTED.split(sql)[::2] for name in _PLACEHOLDER.findall(part)}


@cache
def dialect_sources(dialect: str) -> tuple[dict[str, str], dict[str, str]]:
    """The shared queries and the dialect's own, as written (``:name`` placeholders)."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}")
    shared_path = STORE_DIR / "sql" / "shared.sql"
    own_path = STORE_DIR / dialect / "queries.sql"
    shared_text = shared_path.read_text()
    shared = parse_blocks(shared_text, str(shared_path))
    own = parse_blocks(
        own_path.read_text(), str(own_path), parse_fragments(shared_text, str(shared_path))
    )
    both = sorted(shared.keys() & own.keys())
    if both:
        raise ValueError(f"{own_path}: {', '.join(both)} already defined in {shared_path}")
    return shared, own


@cache
def load_queries(dialect: str) -> dict[str, str]:
    """Every query a backend runs, by name, ready for its driver (loaded once per process)."""
    shared, own = dialect_sources(dialect)
    queries = {**shared, **own}
    if dialect == "postgres":
        return {name: to_psycopg(_unindent(sql)) for name, sql in queries.items()}
    return queries


def _unindent(sql: str) -> str:
    """``sql`` without its indentation (no string literal spans lines: _strip_comments reads
    each line alone). psycopg converts a query's placeholders once and caches the result only
    for texts up to 4,096 characters: the claim, indented, was over, and paid the conversion
    (~80 µs of the worker's CPU) at every execution."""
    return "\n".join(line.strip() for line in sql.splitlines())


def migration_files(folder: Path) -> list[Path]:
    """Numbered ``NNNN_name.sql`` migrations in apply order."""
    return sorted(p for p in folder.glob("*.sql") if re.match(r"^\d{4}_", p.name))
