"""Placeholder values: what ``.env.example`` ships and nobody should deploy or trust.

One definition, used by ``shipyard check-envs`` (a finding), ``shipyard deploy`` (refused: a
placeholder is never sent as a secret), ``shipyard dev`` (a ``.env`` placeholder is not loaded)
and the template API (a placeholder setting counts as unset). Standard library only, so the
API can import it wherever it runs.

Example::

    placeholder_reason("<your_supabase_url>")   # 'a <placeholder> from .env.example'
    placeholder_reason("https://abc.supabase.co")  # None
"""

from __future__ import annotations

import re

_PLACEHOLDERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^<.*>$"), "a <placeholder> from .env.example"),
    (re.compile(r"your[-_ ].*[-_ ]here", re.IGNORECASE), "a 'your-…-here' placeholder"),
    (re.compile(r"(^|[^a-z0-9])x{4,}([^a-z0-9]|$)", re.IGNORECASE), "an 'xxxx' placeholder"),
    (re.compile(r"change[-_ ]?(this|me)", re.IGNORECASE), "a 'changethis' placeholder"),
    (re.compile(r"^(todo|tbd|replace[-_ ]?me|placeholder|none|null)$", re.IGNORECASE), "a stub"),
)


def placeholder_reason(value: str) -> str | None:
    """Why ``value`` looks like a placeholder (``"empty"`` when blank), or None when it looks
    real."""
    if not value.strip():
        return "empty"
    for pattern, reason in _PLACEHOLDERS:
        if pattern.search(value.strip()):
            return reason
    return None


def is_placeholder(value: str) -> bool:
    """True for a non-blank placeholder value (a blank one is simply empty)."""
    return bool(value.strip()) and placeholder_reason(value) is not None
