"""The overview: runs per status over time and queue depth (SVG drawn here), and counts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from shipyard.durations import parse_duration_ms
from shipyard.server.dashboard.auth import Session
from shipyard.server.dashboard.charts import queue_depth_svg, runs_over_time_svg
from shipyard.server.dashboard.render import render
from shipyard.server.dashboard.site import PREFIX, Dashboard

__all__ = ["OVERVIEW_PERIODS", "register"]

OVERVIEW_PERIODS = {"1h": 30, "6h": 36, "1d": 48, "7d": 56, "30d": 60}
"""Each period the overview offers, and into how many bars it is cut."""


def register(router: APIRouter, dash: Dashboard) -> None:
    """Add the overview to ``router``."""

    async def overview(request: Request, session: Session) -> Response:
        engine = session.engine
        period = request.query_params.get("period", "1d")
        if period not in OVERVIEW_PERIODS:
            period = "1d"
        stats = await engine.run_stats(
            period_ms=parse_duration_ms(period), buckets=OVERVIEW_PERIODS[period]
        )
        queues = await engine.list_queues()
        totals: dict[str, int] = {}
        for counts in stats.counts:
            for status, n in counts.items():
                totals[status] = totals.get(status, 0) + n
        return render(
            request,
            "overview.html",
            session,
            period=period,
            periods=list(OVERVIEW_PERIODS),
            totals=totals,
            total=stats.total,
            runs_chart=runs_over_time_svg(stats),
            queue_chart=queue_depth_svg(queues),
            queues=queues,
        )

    async def root(request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/overview", status_code=307)

    router.add_api_route("", root, methods=["GET"])
    router.add_api_route("/", root, methods=["GET"])
    router.add_api_route("/overview", dash.page(overview), methods=["GET"])
