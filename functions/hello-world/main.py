"""``hello-world``: the template's serverless function (the seed's Supabase function, in Python).

Contract: ``GET ?name=Ada`` or ``POST {"name": "Ada"}`` →
``{"message": "Hello Ada!", "timestamp": <ISO 8601 UTC>, "function": "hello-world",
"runtime": "python-3.x"}``; ``name`` defaults to ``World``. A POST body that is not a JSON object
with an optional string ``name`` (including JSON nested too deeply to parse) → 400
``{"error": …}``.

``shipyard dev`` serves it at http://localhost:54321/functions/v1/hello-world. ``app`` is a plain
ASGI app, so any ASGI host (uvicorn, a Cloudflare Python Worker) can serve it.
"""

from __future__ import annotations

import datetime
import json
import platform

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

FUNCTION_NAME = "hello-world"
RUNTIME = f"python-{platform.python_version()}"
MAX_NAME_LENGTH = 200
# Deeper JSON than this is refused before parsing: json.loads recurses once per level, and how
# deep it may go depends on the interpreter's recursion limit, which a host can change.
MAX_NESTING = 64


def _nesting_exceeds(raw: bytes, limit: int) -> bool:
    """Whether arrays/objects in ``raw`` nest deeper than ``limit`` (brackets inside strings
    do not count)."""
    depth = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # closing quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def _error(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


async def hello(request: Request) -> JSONResponse:
    """Greet ``name`` from the query string (GET) or the JSON body (POST)."""
    name: object = request.query_params.get("name") or "World"
    if request.method == "POST":
        raw = await request.body()
        if raw.strip():
            if _nesting_exceeds(raw, MAX_NESTING):
                return _error("Request body is nested too deeply.")
            try:
                body = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                return _error('Request body must be JSON, like {"name": "Ada"}.')
            except RecursionError:
                # json.loads recurses once per nesting level; a few thousand levels exhaust it.
                return _error("Request body is nested too deeply.")
            if not isinstance(body, dict):
                return _error('Request body must be a JSON object, like {"name": "Ada"}.')
            name = body.get("name", name)
    if not isinstance(name, str) or not name.strip():
        return _error('"name" must be a non-empty string.')
    if len(name) > MAX_NAME_LENGTH:
        return _error(f'"name" must be at most {MAX_NAME_LENGTH} characters.')
    return JSONResponse(
        {
            "message": f"Hello {name.strip()}!",
            "timestamp": datetime.datetime.now(datetime.UTC).isoformat(),
            "function": FUNCTION_NAME,
            "runtime": RUNTIME,
        }
    )


app = Starlette(routes=[Route("/", hello, methods=["GET", "POST"])])
