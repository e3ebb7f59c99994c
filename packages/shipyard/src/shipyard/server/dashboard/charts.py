"""Charts as SVG drawn on the server (no chart library, nothing fetched): runs per status
over time as stacked bars, and queue depth as horizontal bars. Text is escaped; each chart
has a ``<title>`` and ``role="img"`` with a label for screen readers."""

from __future__ import annotations

import datetime

from markupsafe import Markup, escape

from shipyard.models.queues import QueueInfo
from shipyard.models.runs import RunStats

__all__ = ["STATUS_COLORS", "queue_depth_svg", "runs_over_time_svg"]

# Colours with readable contrast on white, one per status group (final failures share red).
STATUS_COLORS = {
    "COMPLETED": "#1a7f37",
    "FAILED": "#cf222e",
    "CRASHED": "#a40e26",
    "SYSTEM_FAILURE": "#82071e",
    "TIMED_OUT": "#bc4c00",
    "EXPIRED": "#9a6700",
    "CANCELED": "#6e7781",
    "EXECUTING": "#0969da",
    "DEQUEUED": "#218bff",
    "WAITING": "#8250df",
    "QUEUED": "#57606a",
    "PENDING_VERSION": "#953800",
    "DELAYED": "#4d2d00",
}
_WIDTH, _HEIGHT, _PAD_L, _PAD_B, _PAD_T = 720, 220, 40, 28, 10


def _nice_max(value: int) -> int:
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000):
        if value <= step * 4:
            return step * 4
    return value


def runs_over_time_svg(stats: RunStats) -> Markup:
    """Stacked bars of runs created per window, coloured by their status now, with a legend."""
    buckets = len(stats.counts)
    top = _nice_max(max((sum(c.values()) for c in stats.counts), default=0) or 1)
    plot_w, plot_h = _WIDTH - _PAD_L - 10, _HEIGHT - _PAD_B - _PAD_T
    bar_w = plot_w / max(buckets, 1)
    parts: list[str] = []
    for i in range(5):  # grid lines and their labels
        value = top * i // 4
        y = _PAD_T + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{_PAD_L}" y1="{y:.1f}" x2="{_WIDTH - 10}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{_PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">{value}</text>'
        )
    seen: list[str] = []
    for i, counts in enumerate(stats.counts):
        y = _PAD_T + plot_h
        start = stats.start + datetime.timedelta(milliseconds=stats.bucket_ms * i)
        for status in STATUS_COLORS:
            n = counts.get(status, 0)
            if not n:
                continue
            if status not in seen:
                seen.append(status)
            h = plot_h * n / top
            y -= h
            parts.append(
                f'<rect x="{_PAD_L + i * bar_w + 1:.1f}" y="{y:.1f}" '
                f'width="{max(bar_w - 2, 1):.1f}" height="{h:.1f}" '
                f'fill="{STATUS_COLORS[status]}"><title>'
                f"{escape(start.strftime('%Y-%m-%d %H:%M'))} UTC: {n} {status}</title></rect>"
            )
    for i in (0, buckets // 2, buckets - 1) if buckets else ():
        moment = stats.start + datetime.timedelta(milliseconds=stats.bucket_ms * i)
        parts.append(
            f'<text x="{_PAD_L + (i + 0.5) * bar_w:.1f}" y="{_HEIGHT - 8}" text-anchor="middle">'
            f"{escape(moment.strftime('%m-%d %H:%M'))}</text>"
        )
    legend = "".join(
        f'<span class="legend-item">{_swatch(STATUS_COLORS[s])}{s}</span>' for s in seen
    )
    total = stats.total
    svg = (
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
        f'aria-label="Runs created per period by status: {total} in all" '
        f'preserveAspectRatio="xMidYMid meet"><title>Runs per status over time</title>'
        + "".join(parts)
        + "</svg>"
    )
    return Markup(svg + f'<p class="legend">{legend or "No runs in this period."}</p>')


def queue_depth_svg(queues: list[QueueInfo]) -> Markup:
    """Horizontal bars per queue: running and queued runs now, with the limit marked."""
    shown = sorted(queues, key=lambda q: -(q.queued + q.running))[:15]
    if not shown:
        return Markup('<p class="legend">No queues registered yet.</p>')
    row_h, label_w = 26, 220
    height = row_h * len(shown) + 10
    top = _nice_max(max(max(q.queued + q.running, q.effective_limit or 0) for q in shown) or 1)
    scale = (_WIDTH - label_w - 60) / top
    parts = []
    for i, q in enumerate(shown):
        y = 5 + i * row_h
        name = escape(q.name if len(q.name) <= 30 else q.name[:29] + "…")
        run_w, queue_w = q.running * scale, q.queued * scale
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{name}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{run_w:.1f}" height="16" fill="#0969da">'
            f"<title>{name}: {q.running} running</title></rect>"
            f'<rect x="{label_w + run_w:.1f}" y="{y + 4}" width="{queue_w:.1f}" height="16" '
            f'fill="#57606a"><title>{name}: {q.queued} queued</title></rect>'
            f'<text x="{label_w + run_w + queue_w + 6:.1f}" y="{y + 16}">'
            f"{q.running} / {q.queued}{' (paused)' if q.paused else ''}</text>"
        )
        if q.effective_limit:
            x = label_w + q.effective_limit * scale
            parts.append(
                f'<line x1="{x:.1f}" y1="{y + 1}" x2="{x:.1f}" y2="{y + 23}" class="limit">'
                f"<title>limit {q.effective_limit}</title></line>"
            )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {height}" role="img" '
        f'aria-label="Queue depth: running and queued runs per queue">'
        f"<title>Queue depth</title>{''.join(parts)}</svg>"
        f'<p class="legend"><span class="legend-item">{_swatch("#0969da")}running</span>'
        f'<span class="legend-item">{_swatch("#57606a")}queued</span>'
        '<span class="legend-item">| limit</span></p>'
    )


def _swatch(color: str) -> str:
    # An SVG square, not a styled span: the pages' CSP allows no inline styles.
    return (
        f'<svg class="swatch" viewBox="0 0 10 10" aria-hidden="true">'
        f'<rect width="10" height="10" fill="{color}"/></svg>'
    )
