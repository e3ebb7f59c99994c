"""Cloudflare Python Workers entry point: hands each request to the FastAPI app.

The Workers runtime provides the ``workers`` module and its ASGI adapter; the adapter puts the
Worker's bindings (vars and secrets) in ``request.scope["env"]``, where
:func:`app.config.get_config` reads them. Bindings are not environment variables, so the
engine's two (``SHIPYARD_API_URL``, ``SHIPYARD_SECRET_KEY``, set by ``shipyard deploy``) are
handed to Shipyard here, once: ``shipyard.tasks.trigger`` and ``shipyard.runs.retrieve`` then go
to the engine server over HTTP. Locally, ``shipyard dev`` serves the same app with uvicorn and
this file is not used.
"""

from app.main import app
from workers import WorkerEntrypoint, asgi

import shipyard

_configured: list[tuple[str, str | None]] = []


def configure_engine(env):  # type: ignore[no-untyped-def]
    """Point Shipyard at the engine server named by the bindings (again only if they change)."""
    url = getattr(env, "SHIPYARD_API_URL", None)
    if not url:
        return
    key = getattr(env, "SHIPYARD_SECRET_KEY", None)
    wanted = (str(url), str(key) if key else None)
    if _configured and _configured[-1] == wanted:
        return
    shipyard.configure(api_url=wanted[0], secret_key=wanted[1])
    _configured.append(wanted)


class Default(WorkerEntrypoint):
    """The Worker's fetch handler."""

    async def fetch(self, request):  # type: ignore[no-untyped-def]
        configure_engine(self.env)
        return await asgi.fetch(app, request, self.env)
