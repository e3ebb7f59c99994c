"""The dashboard: see, test and operate runs in a browser, under ``/dashboard``
(``docs/dashboard.md``).

Server-rendered pages (Jinja2) with plain JavaScript for the live parts, which follow the
realtime feed over Server-Sent Events; charts are SVG drawn on the server. Nothing is fetched
from another origin. Every read and action goes through the
:class:`~shipyard.engine.engine.Engine` of the environment shown.

==============================  ==========================================================
``/dashboard``                   overview: runs per status over time, queue depth
``/dashboard/runs``              runs, filtered, paginated, live
``/dashboard/runs/{id}``         a run: payload, output, error, attempts, trace, metadata
``/dashboard/tasks``             tasks; ``/dashboard/tasks/{id}/test`` triggers one
``/dashboard/schedules``         schedules: next runs, create, activate, deactivate, run now
``/dashboard/queues``            queues: pause, resume, override the limit
``/dashboard/tokens``            wait tokens: complete one with JSON
``/dashboard/batches``           batches and their runs
``/dashboard/keys``              secret keys of the environment: create (shown once), revoke
``/dashboard/login``             the login with a secret key (unless ``open_access``)
``/dashboard/environment``       the environment switcher (POST)
==============================  ==========================================================

One router serves every environment that has a key: a session holds the environments its
keys opened and shows one of them (``auth.py``).
"""

from shipyard.extras import require

require("engine", "The dashboard", ("jinja2", "multipart"))

from shipyard.server.dashboard.site import dashboard_router  # noqa: E402

__all__ = ["dashboard_router"]
