"""Cloudflare Python Workers entry point: hands each request to the FastAPI app.

The Workers runtime provides the ``workers`` module and its ASGI adapter; the adapter puts the
Worker's bindings (vars and secrets) in ``request.scope["env"]``, where
:func:`app.config.get_config` reads them. Locally, ``shipyard dev`` serves the same app with
uvicorn and this file is not used.
"""

from app.main import app
from workers import WorkerEntrypoint, asgi


class Default(WorkerEntrypoint):
    """The Worker's fetch handler."""

    async def fetch(self, request):  # type: ignore[no-untyped-def]
        return await asgi.fetch(app, request, self.env)
