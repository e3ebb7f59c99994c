"""search_docs: the project's own documentation, searched offline.

The corpus is ``docs/*.md``, ``README.md`` and ``CLAUDE.md`` of the project root. Each file is
cut into sections at its Markdown headings (never inside a fenced code block, where ``#`` is a
comment); a section is ranked with BM25 over its words, its heading words counting three times,
plus a bonus when the whole query appears in it as written. The index is rebuilt when a file
changes, so an agent that edits the docs searches what it wrote.

Example::

    index = DocsIndex.for_project(Path("."))
    for hit in index.search("concurrency key", limit=3):
        print(hit.file, hit.heading, hit.score)
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from shipyard.mcp.context import ToolContext
from shipyard.mcp.tool import Arguments, Output, Tool

HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
WORD = re.compile(r"[a-z0-9]+(?:[_\-.][a-z0-9]+)*")
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "their",
        "then",
        "there",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "with",
        "you",
        "your",
    }
)
HEADING_WEIGHT = 3
PHRASE_BONUS = 2.0
K1 = 1.2
B = 0.75
MAX_PASSAGE_CHARS = 1500


def _stem(word: str) -> str:
    # Plural and verb "s" only: queues → queue, runs → run, but not status or class.
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """Search terms of ``text``: lowercase words, and the parts of ``snake_case``/``kebab-case``
    identifiers as well as the identifiers themselves, stop words dropped, plurals folded."""
    out: list[str] = []
    for match in WORD.finditer(text.lower()):
        word = match.group(0)
        parts = re.split(r"[_\-.]", word)
        if len(parts) > 1:
            out.append(word)
        out.extend(_stem(p) for p in parts if p and p not in STOPWORDS)
    return out


@dataclass(slots=True)
class Section:
    """A heading and the text under it, up to the next heading of any level."""

    file: str
    heading: str
    path: str
    line: int
    text: str
    terms: Counter[str] = field(default_factory=Counter)
    length: int = 0


@dataclass(frozen=True, slots=True)
class Hit:
    """A section that matched a query."""

    file: str
    heading: str
    line: int
    score: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "file": self.file,
            "heading": self.heading,
            "line": self.line,
            "score": round(self.score, 3),
            "text": self.text,
        }


def split_sections(relative: str, text: str) -> list[Section]:
    """Cut a Markdown file into sections at its headings (outside code fences)."""
    sections: list[Section] = []
    trail: list[tuple[int, str]] = []  # the enclosing headings, for the section's path
    heading, start = relative, 1
    body: list[str] = []
    in_fence = False

    def close() -> None:
        content = "\n".join(body).strip()
        if content:
            path = " › ".join(title for _, title in trail) or relative
            sections.append(Section(relative, heading, path, start, content))

    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else HEADING.match(line)
        if match is None:
            body.append(line)
            continue
        close()
        level, title = len(match.group(1)), match.group(2).strip()
        trail = [(lvl, t) for lvl, t in trail if lvl < level] + [(level, title)]
        heading, start, body = title, number, [line]
    close()
    return sections


def _passage(text: str) -> str:
    if len(text) <= MAX_PASSAGE_CHARS:
        return text
    cut = text.rfind("\n\n", 0, MAX_PASSAGE_CHARS)
    return text[: cut if cut > MAX_PASSAGE_CHARS // 2 else MAX_PASSAGE_CHARS].rstrip() + "\n…"


class DocsIndex:
    """BM25 over the sections of a project's documentation files."""

    def __init__(self, root: Path, files: list[Path]) -> None:
        self.root = root
        self.files = files
        self._signature: tuple[tuple[str, float], ...] | None = None
        self.sections: list[Section] = []
        self._document_frequency: Counter[str] = Counter()
        self._average_length = 0.0

    @classmethod
    def for_project(cls, root: Path) -> DocsIndex:
        """The index of ``root``'s ``docs/*.md``, ``README.md`` and ``CLAUDE.md``."""
        return cls(root, [root / "README.md", root / "CLAUDE.md", root / "docs"])

    def _paths(self) -> list[Path]:
        found: list[Path] = []
        for path in self.files:
            if path.is_dir():
                found.extend(sorted(path.glob("*.md")))
            elif path.is_file():
                found.append(path)
        return found

    def refresh(self) -> None:
        """Re-read the files if any was added, removed or changed since the last build."""
        paths = self._paths()
        signature = tuple((str(p), p.stat().st_mtime) for p in paths)
        if signature == self._signature:
            return
        sections: list[Section] = []
        for path in paths:
            relative = path.relative_to(self.root).as_posix()
            sections.extend(split_sections(relative, path.read_text(errors="replace")))
        frequency: Counter[str] = Counter()
        for section in sections:
            terms = Counter(tokens(section.text))
            for term in tokens(section.path) * HEADING_WEIGHT:
                terms[term] += 1
            section.terms = terms
            section.length = sum(terms.values())
            frequency.update(terms.keys())
        self.sections = sections
        self._document_frequency = frequency
        self._average_length = sum(s.length for s in sections) / len(sections) if sections else 0
        self._signature = signature

    def search(self, query: str, limit: int = 5) -> list[Hit]:
        """The best ``limit`` sections for ``query``, best first (none when nothing matches)."""
        self.refresh()
        terms = list(dict.fromkeys(tokens(query)))
        if not terms or not self.sections:
            return []
        count = len(self.sections)
        phrase = " ".join(query.lower().split())
        scored: list[tuple[float, Section]] = []
        for section in self.sections:
            score = 0.0
            for term in terms:
                tf = section.terms.get(term, 0)
                if not tf:
                    continue
                df = self._document_frequency[term]
                idf = math.log(1 + (count - df + 0.5) / (df + 0.5))
                norm = K1 * (1 - B + B * section.length / (self._average_length or 1))
                score += idf * tf * (K1 + 1) / (tf + norm)
            if score and len(terms) > 1 and phrase in " ".join(section.text.lower().split()):
                score += PHRASE_BONUS
            if score:
                scored.append((score, section))
        scored.sort(key=lambda pair: (-pair[0], pair[1].file, pair[1].line))
        return [Hit(s.file, s.path, s.line, score, _passage(s.text)) for score, s in scored[:limit]]


class SearchDocsArguments(Arguments):
    """Arguments of search_docs."""

    query: str = Field(
        min_length=1,
        max_length=400,
        description='What to look for, in words or identifiers: "concurrency key", '
        '"retry backoff", "wait.for_token", "deploy preview".',
    )
    limit: int = Field(default=5, ge=1, le=20, description="Passages to return at most.")


async def search_docs(context: ToolContext, args: SearchDocsArguments) -> Output:
    """The documentation sections that best match a query."""
    index = context.docs
    hits = index.search(args.query, args.limit)
    data: dict[str, Any] = {"query": args.query, "results": [h.to_dict() for h in hits]}
    if not index.sections:
        data["message"] = (
            f"No documentation found under {index.root} (docs/*.md, README.md, CLAUDE.md)."
        )
    elif not hits:
        data["message"] = "Nothing matched; try other words or an identifier."
    return Output(data)


TOOLS = [
    Tool(
        "search_docs",
        "Search this project's own documentation (docs/*.md, README.md, CLAUDE.md) offline. "
        "Returns the best-matching sections with their file, heading and line. Use it before "
        "writing a task or changing configuration: how retries, queues, waits, idempotency, "
        "metadata, deploys or the CLI work here.",
        SearchDocsArguments,
        search_docs,
        engine=False,
        title="Search the docs",
    ),
]
