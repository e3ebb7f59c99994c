"""``shipyard commit-msg FILE``: the repository's commit message rules (Conventional Commits).

The header is ``<type>(<scope>): <subject>`` (the scope and a ``!`` for breaking changes are
optional). Each rule has its own id and message:

=====================  ===========================================================
``header-format``      the header reads ``<type>(<scope>): <subject>``
``type-case``          the type is lowercase (``feat``, not ``Feat``)
``type-enum``          the type is one of :data:`TYPES`
``scope-empty``        parentheses hold a scope (``feat(): …`` is wrong)
``subject-empty``      a subject follows ``: ``
``subject-case``       the subject starts in lowercase (``add x``, not ``Add x``)
``subject-full-stop``  the subject does not end with a period
``header-max-length``  the header is at most 100 characters
``body-leading-blank`` a blank line separates the header from the body
``body-max-line-length`` body and footer lines are at most 100 characters
=====================  ===========================================================

Merge commits (``Merge …``), git's reverts (``Revert "…"``) and ``fixup!``/``squash!``/
``amend!`` commits are accepted as git writes them. Lines starting with ``#`` are git's
comments and are ignored, as is everything below a ``--verbose`` scissors line.

Example::

    check_message("feat(api): add user authentication")   # []
    check_message("Fixed stuff.")                          # [Problem('header-format', …)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TYPES = (
    "feat",
    "fix",
    "docs",
    "style",
    "refactor",
    "perf",
    "test",
    "build",
    "ci",
    "chore",
    "revert",
)
MAX_HEADER = 100
MAX_BODY_LINE = 100
FORMAT = "<type>(<scope>): <subject>"
SCISSORS = "# ------------------------ >8 ------------------------"

_HEADER = re.compile(
    r"^(?P<type>[^\s(:!]+)(?:\((?P<scope>[^)]*)\))?(?P<bang>!)?:(?: (?P<subject>.*))?$"
)
_EXEMPT = re.compile(r"^(Merge |Revert \"|(fixup|squash|amend)! )")


@dataclass(frozen=True, slots=True)
class Problem:
    """A broken rule: its id and a sentence saying what to change."""

    rule: str
    message: str


def clean(message: str) -> list[str]:
    """The message's lines as git keeps them: comments and the scissors part removed."""
    lines = []
    for line in message.splitlines():
        if line.startswith(SCISSORS):
            break
        if line.startswith("#"):
            continue
        lines.append(line.rstrip())
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def check_message(message: str) -> list[Problem]:
    """Every rule ``message`` breaks (empty when it is a good commit message)."""
    lines = clean(message)
    if not lines:
        return [Problem("header-format", f"the message is empty: write {FORMAT}")]
    header = lines[0]
    if _EXEMPT.match(header):
        return []
    problems: list[Problem] = []
    if len(header) > MAX_HEADER:
        problems.append(
            Problem(
                "header-max-length",
                f"the header is {len(header)} characters; keep it to {MAX_HEADER} or fewer",
            )
        )
    match = _HEADER.match(header)
    if match is None:
        problems.append(
            Problem(
                "header-format",
                f"the header must read {FORMAT}, e.g. 'feat(api): add user authentication'",
            )
        )
    else:
        problems.extend(_check_header(match))
    problems.extend(_check_body(lines))
    return problems


def _check_header(match: re.Match[str]) -> list[Problem]:
    problems: list[Problem] = []
    kind, scope, subject = match["type"], match["scope"], match["subject"] or ""
    if kind != kind.lower():
        problems.append(Problem("type-case", f"the type must be lowercase: '{kind.lower()}'"))
    if kind.lower() not in TYPES:
        problems.append(
            Problem("type-enum", f"the type '{kind}' is not one of: {', '.join(TYPES)}")
        )
    if scope is not None and not scope.strip():
        problems.append(
            Problem("scope-empty", "the scope is empty: name one, e.g. 'fix(api): …', or drop ()")
        )
    subject = subject.strip()
    if not subject:
        problems.append(Problem("subject-empty", "the subject is missing after ': '"))
        return problems
    if subject[0].isupper():
        problems.append(
            Problem(
                "subject-case",
                f"the subject must start in lowercase: '{subject[0].lower()}{subject[1:]}'",
            )
        )
    if subject.endswith("."):
        problems.append(Problem("subject-full-stop", "the subject must not end with a period"))
    return problems


def _check_body(lines: list[str]) -> list[Problem]:
    problems: list[Problem] = []
    if len(lines) > 1 and lines[1].strip():
        problems.append(
            Problem("body-leading-blank", "leave a blank line between the header and the body")
        )
    for number, line in enumerate(lines[1:], start=2):
        if len(line) > MAX_BODY_LINE:
            problems.append(
                Problem(
                    "body-max-line-length",
                    f"line {number} is {len(line)} characters; wrap body lines at {MAX_BODY_LINE}",
                )
            )
    return problems
