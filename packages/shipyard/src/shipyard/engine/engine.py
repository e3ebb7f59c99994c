"""The engine: every domain operation over one environment's store.

The public API (``my_task.trigger``, ``runs.cancel`` …), the worker, the CLI, the HTTP server
and the MCP server all go through one :class:`Engine`; none of them talks to the store.

One class per domain noun, stacked into this one object (each file stays about one thing):

* :mod:`~shipyard.engine.triggers` — trigger, batch trigger, ``*_and_wait``;
* :mod:`~shipyard.engine.runs` — retrieve, list, events, cancel, reschedule, replay, tags;
* :mod:`~shipyard.engine.waitpoints` — wait tokens and their signed callback;
* :mod:`~shipyard.engine.queues` — queue inspection, pause/resume, limit overrides;
* :mod:`~shipyard.engine.claims` — what workers call: claim, finish, release, reap, heartbeat;
* :mod:`~shipyard.engine.schedules` — cron schedules: create, update, list, activate …, the
  declarative sync when a worker registers, and firing each due tick once;
* :mod:`~shipyard.engine.realtime` and :mod:`~shipyard.engine.streams` — subscriptions to runs,
  tags and batches (served by :mod:`~shipyard.engine.feed`), output and input streams;
* :mod:`~shipyard.engine.access` — secret keys, signing keys, single-use tokens, request ids.
"""

from __future__ import annotations

from shipyard.engine.access import AccessOps
from shipyard.engine.schedules import ScheduleOps
from shipyard.engine.streams import StreamOps

__all__ = ["Engine"]


class Engine(AccessOps, StreamOps, ScheduleOps):
    """Domain operations for one environment over one store.

    Example::

        engine = Engine(load_settings())
        await engine.start()
        handle = await engine.trigger("send-email", {"to": "a@b.c"}, {})
        run = await engine.retrieve_run(handle.id)
    """
