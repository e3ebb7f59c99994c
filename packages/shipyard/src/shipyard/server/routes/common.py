"""Helpers the route modules share: the error responses every route documents, and answering
a retried request (``x-trigger-request-idempotency-key``) with what its first attempt did."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from shipyard.engine.engine import Engine
from shipyard.engine.idempotency import IdempotencyKey
from shipyard.errors import RequestInProgressError
from shipyard.jsonutil import dumps, loads
from shipyard.schemas.errors import ErrorResponse
from shipyard.schemas.headers import REQUEST_IDEMPOTENCY_HEADER, TRIGGER_JWT_HEADER

__all__ = ["ERRORS", "PUBLIC_ERRORS", "final_keys", "once"]

_HASHED = re.compile(r"^[0-9a-f]{64}$")


def final_keys(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with an ``idempotency_key`` that is already a SHA-256 hex taken as final.

    Trigger.dev's SDKs hash a key client-side (``sha256`` of its parts and scope) and its
    server stores what it receives; Shipyard's engine hashes a raw key once. Taking a 64-hex
    key as received keeps both agreeing: the official SDK's ``"k1"`` arrives as
    ``sha256("k1")``, which is what ``trigger(idempotency_key="k1")`` stores from Python (and
    what a raw ``"k1"`` sent with curl becomes), so ``idempotencyKeys.reset`` finds it.
    """
    key = options.get("idempotency_key")
    if isinstance(key, str) and _HASHED.match(key):
        return {**options, "idempotency_key": IdempotencyKey(key)}
    return options


_ERROR = {"model": ErrorResponse}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {**_ERROR, "description": "Invalid input (the message names the field)."},
    401: {**_ERROR, "description": "Missing, wrong or revoked secret key."},
    403: {**_ERROR, "description": "A public access token on a secret-key route."},
    404: {**_ERROR, "description": "Not found in the key's environment."},
}
PUBLIC_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    401: {**_ERROR, "description": "Missing or wrong key; a public token invalid or expired."},
    403: {**_ERROR, "description": "A public access token out of its scopes."},
}

Outcome = tuple[int, dict[str, Any]]
"""A route's answer to remember: its status and JSON body."""


async def once(
    engine: Engine,
    request: Request,
    run: Callable[[], Awaitable[Outcome]],
    token_for: Callable[[dict[str, Any]], str],
) -> JSONResponse:
    """Run a creating request once per request id.

    Without the header ``run`` just runs. With it, the first request claims the id, runs and
    records its answer; a retry answers that same body (with a fresh ``x-trigger-jwt`` from
    ``token_for``: tokens are not stored) and creates nothing; a retry while the first still
    runs is 409, which the client retries. A failed first attempt forgets the id, so its retry
    runs again.
    """
    raw = request.headers.get(REQUEST_IDEMPOTENCY_HEADER)
    if not raw:
        status, body = await run()
        return JSONResponse(body, status_code=status, headers={TRIGGER_JWT_HEADER: token_for(body)})
    key = hashlib.sha256(f"{request.method} {request.url.path} {raw}".encode()).hexdigest()
    claim = await engine.claim_request(key)
    if not claim.claimed:
        if claim.response is None:
            raise RequestInProgressError(
                "A request with this x-trigger-request-idempotency-key is still running; "
                "retry shortly for its answer."
            )
        stored = loads(claim.response)
        body = stored["body"]
        return JSONResponse(
            body, status_code=int(stored["status"]), headers={TRIGGER_JWT_HEADER: token_for(body)}
        )
    try:
        status, body = await run()
    except BaseException:
        await engine.release_request(key)
        raise
    await engine.answer_request(key, dumps({"status": status, "body": body}))
    return JSONResponse(body, status_code=status, headers={TRIGGER_JWT_HEADER: token_for(body)})
