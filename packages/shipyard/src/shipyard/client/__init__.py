"""The remote client: Shipyard's engine operations over the engine server's HTTP API.

With ``SHIPYARD_API_URL`` (and ``SHIPYARD_SECRET_KEY``) set, the SDK's calls outside a running
task (``tasks.trigger``, ``runs.retrieve``, ``wait.complete_token``, ``queues.pause`` …) go
through a :class:`RemoteClient` instead of an engine in this process (``shipyard.sdk.backend``
decides). The package imports only Shipyard's neutral modules and httpx: it runs in the light
install, on Cloudflare Python Workers included.

Example::

    from shipyard.client import RemoteClient

    client = RemoteClient("https://engine.example.com", secret_key)
    handle = await client.trigger("send-email", {"to": "a@b.c"}, {})
"""

from shipyard.client.client import RemoteClient

__all__ = ["RemoteClient"]
