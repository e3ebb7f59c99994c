"""Rendering the dashboard's pages: the Jinja2 environment, its filters, and JSON shown
pretty with large values folded.

Templates live in ``templates/`` beside this module; autoescaping is on for every one of them,
so a value is only ever inserted as text (a run's payload cannot inject markup).
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from shipyard.server.dashboard.auth import Session

__all__ = ["FOLD_CHARS", "FOLD_ITEMS", "duration", "pretty_json", "render", "templates"]

HERE = Path(__file__).parent
FOLD_ITEMS = 20
"""An object or array with more entries than this starts folded."""
FOLD_CHARS = 400
"""A string longer than this shows its start, the rest folded."""
MAX_NODES = 5000
"""Past this many values the rest of a document is shown as raw JSON text (still folded)."""

_STATUS_CLASS = {
    "COMPLETED": "ok",
    "CANCELED": "muted",
    "FAILED": "bad",
    "CRASHED": "bad",
    "SYSTEM_FAILURE": "bad",
    "EXPIRED": "bad",
    "TIMED_OUT": "bad",
    "EXECUTING": "live",
    "DEQUEUED": "live",
    "WAITING": "wait",
}


def duration(ms: float | int | None) -> str:
    """``ms`` as a short human duration: ``820 ms``, ``12.4 s``, ``3 m 02 s``, ``1 h 05 m``."""
    if ms is None:
        return "–"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} m"


def when(moment: datetime.datetime | int | None) -> str:
    """A UTC time as ``2026-11-30 09:07:57``; epoch ms too."""
    if moment is None:
        return "–"
    if isinstance(moment, int):
        moment = datetime.datetime.fromtimestamp(moment / 1000, tz=datetime.UTC)
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso(moment: datetime.datetime | None) -> str:
    """ISO 8601 (for ``<time datetime>``), empty for None."""
    return "" if moment is None else moment.isoformat()


def status_class(status: Any) -> str:
    """The CSS class of a status badge."""
    return _STATUS_CLASS.get(str(status), "queued")


class _Budget:
    def __init__(self) -> None:
        self.nodes = 0


def pretty_json(
    value: Any, *, fold_items: int = FOLD_ITEMS, fold_chars: int = FOLD_CHARS
) -> Markup:
    """``value`` as indented, escaped HTML JSON: objects and arrays with more than
    ``fold_items`` entries, and strings longer than ``fold_chars``, start folded
    (``<details>``, keyboard-openable); nested values can be folded by hand."""
    budget = _Budget()
    return Markup('<div class="json">{}</div>').format(
        _node(value, 0, budget, fold_items, fold_chars)
    )


def _scalar(value: Any, fold_chars: int) -> Markup:
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        if len(text) > fold_chars:
            # The start shows; opening shows the rest after it (the text is never repeated).
            return Markup(
                '<details class="fold"><summary><span class="j-str">{}</span>'
                '<span class="j-more">… {} characters</span></summary>'
                '<span class="j-str">{}</span></details>'
            ).format(text[:fold_chars], f"{len(text):,}", text[fold_chars:])
        return Markup('<span class="j-str">{}</span>').format(text)
    if value is None or isinstance(value, bool):
        return Markup('<span class="j-lit">{}</span>').format(json.dumps(value))
    return Markup('<span class="j-num">{}</span>').format(json.dumps(value))


def _node(value: Any, depth: int, budget: _Budget, fold_items: int, fold_chars: int) -> Markup:
    budget.nodes += 1
    if not isinstance(value, dict | list):
        return _scalar(value, fold_chars)
    if not value:
        return Markup("{}").format("{}" if isinstance(value, dict) else "[]")
    if budget.nodes > MAX_NODES:
        text = json.dumps(value, ensure_ascii=False)
        return Markup(
            '<details class="fold"><summary>… <span class="j-more">{} characters of JSON'
            '</span></summary><pre class="j-raw">{}</pre></details>'
        ).format(f"{len(text):,}", text)
    is_dict = isinstance(value, dict)
    opening, closing = ("{", "}") if is_dict else ("[", "]")
    items = value.items() if isinstance(value, dict) else enumerate(value)
    parts = []
    for key, item in items:
        inner = _node(item, depth + 1, budget, fold_items, fold_chars)
        if is_dict:
            label = Markup('<span class="j-key">{}</span>: ').format(
                json.dumps(str(key), ensure_ascii=False)
            )
        else:
            label = Markup("")
        parts.append(Markup('<div class="j-item">{}{}</div>').format(label, inner))
    body = Markup("").join(parts)
    count = len(value)
    noun = "keys" if is_dict else "items"
    open_attr = "" if count > fold_items else " open"
    return Markup(
        '<details class="fold"{}><summary>{}<span class="j-more"> {} {} </span></summary>'
        '<div class="j-body">{}</div>{}</details>'
    ).format(Markup(open_attr), opening, count, noun, body, closing)


def _json_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _build() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        duration=duration,
        when=when,
        iso=iso,
        status_class=status_class,
        pretty=pretty_json,
        json_text=_json_text,
    )
    return env


templates = _build()


def render(
    request: Request,
    name: str,
    session: Session | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render ``templates/<name>`` with the page's context (the session's CSRF token, the
    environment, the current path)."""
    page = templates.get_template(name).render(
        request=request,
        session=session,
        csrf=session.csrf if session else "",
        path=request.url.path,
        **context,
    )
    return HTMLResponse(page, status_code=status_code, headers=_HEADERS)


# Pages are never cached (they show live state) and never framed (clickjacking); scripts and
# styles come only from the dashboard itself.
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
}
