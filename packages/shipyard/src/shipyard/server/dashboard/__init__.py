"""The dashboard: see, test and operate runs in a browser, under ``/dashboard``
(``docs/dashboard.md``).

Server-rendered pages (Jinja2) with plain JavaScript for the live parts, which follow the
realtime feed over Server-Sent Events; charts are SVG drawn on the server. Nothing is fetched
from another origin. Every read and action goes through the :class:`~shipyard.engine.engine.Engine`.

==============================  ==========================================================
``/dashboard``                   overview: runs per status over time, queue depth
``/dashboard/runs``              runs, filtered, paginated, live
``/dashboard/runs/{id}``         a run: payload, output, error, attempts, trace, metadata
``/dashboard/tasks``             tasks; ``/dashboard/tasks/{id}/test`` triggers one
``/dashboard/queues``            queues: pause, resume, override the limit
``/dashboard/tokens``            wait tokens: complete one with JSON
``/dashboard/batches``           batches and their runs
``/dashboard/login``             the login (unless ``open_access``)
==============================  ==========================================================
"""

from shipyard.server.dashboard.site import dashboard_router

__all__ = ["dashboard_router"]
