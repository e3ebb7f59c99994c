"""search_docs: sections cut at headings (never in code), ranked so the right section wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.mcp.docs import DocsIndex, split_sections, tokens

REPO_ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture(scope="module")
def repo_index() -> DocsIndex:
    return DocsIndex.for_project(REPO_ROOT)


@pytest.mark.parametrize(
    ("query", "file", "heading"),
    [
        ("concurrency key", "docs/queues.md", "Concurrency keys: one sub-queue per key"),
        ("debounce", "docs/queues.md", "Debounce"),
        ("ttl expire runs nobody started", "docs/queues.md", "TTL: drop runs nobody started"),
        ("idempotency key", "docs/runs.md", "Idempotency keys"),
        ("retries backoff", "docs/runs.md", "Retries"),
        ("create_token for_token complete a wait token", "docs/waits.md", "Tokens"),
        ("preview cleanup", "docs/deploy.md", "Cleanup"),
        ("commit message hook", "CLAUDE.md", "Git hooks and commits"),
        ("SHIPYARD_DATABASE_URL postgresql", "docs/configuration.md", "PostgreSQL"),
        ("wait_for_run_to_complete timeout", "docs/mcp.md", "wait_for_run_to_complete"),
    ],
)
def test_the_right_section_comes_first(
    repo_index: DocsIndex, query: str, file: str, heading: str
) -> None:
    # Among the first three: the docs grow, and a new page may rank a close section first.
    hits = repo_index.search(query, limit=3)
    assert hits, f"nothing found for {query!r}"
    found = [(h.file, h.heading.split(" › ")[-1].startswith(heading)) for h in hits]
    assert (file, True) in found, [(h.file, h.heading, round(h.score, 2)) for h in hits]


def test_results_carry_file_heading_line_and_passage(repo_index: DocsIndex) -> None:
    hit = repo_index.search("pause a queue", limit=1)[0]
    lines = (REPO_ROOT / hit.file).read_text().splitlines()
    assert lines[hit.line - 1].lstrip("# ").strip() == hit.heading.split(" › ")[-1]
    assert hit.text.startswith(lines[hit.line - 1])
    assert hit.to_dict()["score"] > 0


def test_nothing_matches_gibberish_or_stop_words(repo_index: DocsIndex) -> None:
    assert repo_index.search("zzqxj wvvkp") == []
    assert repo_index.search("the of and") == []


def test_code_fences_do_not_start_sections() -> None:
    text = (
        "# Title\n\nIntro.\n\n## Setup\n\n```python\n# not a heading\nx = 1\n```\n\n"
        "More setup.\n\n### Deep\n\nDeep text.\n"
    )
    sections = split_sections("doc.md", text)
    assert [(s.heading, s.path, s.line) for s in sections] == [
        ("Title", "Title", 1),
        ("Setup", "Title › Setup", 5),
        ("Deep", "Title › Setup › Deep", 14),
    ]
    assert "# not a heading" in sections[1].text and "More setup." in sections[1].text


def test_identifiers_match_whole_and_by_parts() -> None:
    assert tokens("Use concurrency_key= on queues") == [
        "use",
        "concurrency_key",
        "concurrency",
        "key",
        "queue",
    ]
    assert tokens("status class") == ["status", "class"]


def test_the_index_follows_edits(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    page = docs / "a.md"
    page.write_text("# Alpha\n\nabout apples\n")
    index = DocsIndex.for_project(tmp_path)
    assert [h.heading for h in index.search("apples")] == ["Alpha"]
    page.write_text("# Alpha\n\nabout pears\n")
    import os

    os.utime(page, (1, 1))  # a different mtime even within the same clock tick
    assert index.search("apples") == []
    assert [h.file for h in index.search("pears")] == ["docs/a.md"]
