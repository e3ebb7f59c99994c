"""Reading ``.env`` files the way docker compose, python-dotenv and wrangler read them.

One ``KEY=value`` per line; blank lines and ``#`` comments are ignored; ``export KEY=value``
works; values may be quoted with ``'…'`` (taken literally) or ``"…"`` (``\\n``, ``\\t``, ``\\"``
and ``\\\\`` are unescaped); an unquoted value ends at `` #`` (an inline comment). A later line
wins over an earlier one with the same key. Malformed lines are reported by number, never by
content: a ``.env`` holds secrets, and an error message must not print one.

Example::

    env = read_dotenv(Path(".env"))
    env.values["SUPABASE_URL"]
"""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.tooling.placeholders import is_placeholder

log = logging.getLogger("shipyard.dotenv")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


@dataclass
class DotEnv:
    """The values of one or more ``.env`` files, and the lines that could not be read."""

    values: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def update(self, other: DotEnv) -> None:
        """Overlay ``other`` (its values win), keeping both files' problems."""
        self.values.update(other.values)
        self.problems.extend(other.problems)
        self.files.extend(other.files)


def _unquote_double(text: str) -> str:
    out: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
        else:
            out.append(char)
    return "".join(out)


def _parse_value(raw: str) -> str | None:
    """The value after ``=``; None when a quote is not closed."""
    raw = raw.strip()
    if raw[:1] in ("'", '"'):
        quote = raw[0]
        end = 1
        while True:
            end = raw.find(quote, end)
            if end == -1:
                return None
            if quote == '"' and raw[end - 1] == "\\" and not raw[: end - 1].endswith("\\"):
                end += 1
                continue
            break
        rest = raw[end + 1 :].strip()
        if rest and not rest.startswith("#"):
            return None
        inner = raw[1:end]
        return _unquote_double(inner) if quote == '"' else inner
    comment = re.search(r"\s#", raw)
    return (raw[: comment.start()] if comment else raw).strip()


def parse_dotenv(text: str, source: str = ".env") -> DotEnv:
    """Parse the text of a ``.env`` file; ``source`` names it in problem messages."""
    env = DotEnv()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped.removeprefix("export ").lstrip()
        key, sep, rest = stripped.partition("=")
        key = key.strip()
        if not sep or not _KEY.fullmatch(key):
            env.problems.append(f"{source} line {number} is not KEY=value; it was skipped.")
            continue
        value = _parse_value(rest)
        if value is None:
            env.problems.append(
                f"{source} line {number} ({key}) has an unclosed quote; it was skipped."
            )
            continue
        env.values[key] = value
    return env


def read_dotenv(path: Path) -> DotEnv:
    """Read and parse one ``.env`` file (FileNotFoundError when it does not exist)."""
    env = parse_dotenv(path.read_text(encoding="utf-8", errors="replace"), source=path.name)
    env.files.append(path)
    return env


def load_into_environ(path: Path, environ: MutableMapping[str, str]) -> list[str]:
    """Copy ``path``'s values into ``environ`` without overriding what is already set.

    Returns the names that were added; a missing file adds nothing. This is how
    ``shipyard dev`` gives the app API its ``.env`` (as ``wrangler dev`` does with ``.dev.vars``).
    Placeholder values (``<your_…>`` and the like, :mod:`shipyard.tooling.placeholders`) and
    blank ones are not loaded, so a ``.env`` copied from ``.env.example`` behaves like no
    ``.env``; one warning line names the placeholders (never their values).
    """
    if not path.is_file():
        return []
    added = []
    placeholders = []
    for key, value in read_dotenv(path).values.items():
        if not value.strip():
            continue
        if is_placeholder(value):
            placeholders.append(key)
            continue
        if key not in environ:
            environ[key] = value
            added.append(key)
    if placeholders:
        log.warning(
            "%s: placeholder values treated as unset (fill them in to use them): %s",
            path.name,
            ", ".join(placeholders),
        )
    return added
