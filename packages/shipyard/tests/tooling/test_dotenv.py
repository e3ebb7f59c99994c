"""The ``.env`` parser: the syntax docker compose, python-dotenv and wrangler accept."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from shipyard.tooling.dotenv import load_into_environ, parse_dotenv


def test_syntax() -> None:
    env = parse_dotenv(
        "# comment\n"
        "\n"
        "PLAIN=value\n"
        "SPACED = spaced value  \n"
        "export EXPORTED=yes\n"
        "INLINE=value # a comment\n"
        "HASH=abc#def\n"
        "SINGLE='lit $eral \\n # not a comment'\n"
        'DOUBLE="line\\nbreak \\"quoted\\" # kept"  # comment\n'
        "EMPTY=\n"
        "EQUALS=a=b=c\n"
        "PLAIN=overridden\n"
    )
    assert env.values == {
        "PLAIN": "overridden",
        "SPACED": "spaced value",
        "EXPORTED": "yes",
        "INLINE": "value",
        "HASH": "abc#def",
        "SINGLE": "lit $eral \\n # not a comment",
        "DOUBLE": 'line\nbreak "quoted" # kept',
        "EMPTY": "",
        "EQUALS": "a=b=c",
    }
    assert env.problems == []


def test_problems_name_the_line_not_the_value() -> None:
    env = parse_dotenv("GOOD=1\nsecret-value-without-key\n1BAD=x\nOPEN='abc\n", source=".env")
    assert env.values == {"GOOD": "1"}
    assert env.problems == [
        ".env line 2 is not KEY=value; it was skipped.",
        ".env line 3 is not KEY=value; it was skipped.",
        ".env line 4 (OPEN) has an unclosed quote; it was skipped.",
    ]
    assert not any("secret-value" in p for p in env.problems)


def test_load_into_environ_never_overrides(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("A=from-file\nB=from-file\n")
    environ = {"A": "from-shell"}
    assert load_into_environ(path, environ) == ["B"]
    assert environ == {"A": "from-shell", "B": "from-file"}
    assert load_into_environ(tmp_path / "missing", dict(os.environ)) == []


def test_load_into_environ_skips_placeholders_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``cp .env.example .env`` must behave like no ``.env``: nothing from it is loaded."""
    repo_root = Path(__file__).resolve().parents[4]
    path = tmp_path / ".env"
    path.write_text((repo_root / ".env.example").read_text() + "REAL=value\nBLANK=\n")
    environ: dict[str, str] = {}
    with caplog.at_level(logging.WARNING, logger="shipyard.dotenv"):
        assert load_into_environ(path, environ) == ["REAL"]
    assert environ == {"REAL": "value"}
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines
    assert "placeholder values treated as unset" in lines[0]
    for name in ("CLOUDFLARE_API", "SUPABASE_URL", "SUPABASE_JWT_SECRET"):
        assert name in lines[0]
    assert "<your_" not in lines[0] and "BLANK" not in lines[0]
