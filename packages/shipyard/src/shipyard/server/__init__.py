"""The engine server: HTTP API, realtime and dashboard (FastAPI).

Needs the ``engine`` extra (``pip install 'shipyard[engine]'``): importing this package without
it raises :class:`~shipyard.errors.MissingExtraError`, one line naming the extra.
"""

from shipyard.extras import require

require("engine", "The engine server", ("fastapi", "uvicorn"))
