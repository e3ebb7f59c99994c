"""Error bodies: ``{"error": "message"}``, the HTTP status for each Shipyard error, and the
headers that tell Trigger.dev's client whether to retry.

Every error response is an :class:`ErrorResponse`. ``error`` is a sentence a user can act on;
``code`` is the stable :attr:`ShipyardError.code`; ``param`` names the field at fault when there
is one (Trigger.dev's ``ApiError`` reads ``error``, ``code`` and ``param`` from the body).

Statuses (:func:`http_status_for`)::

    400  ValidationError and its subclasses, NotInRunError, a bad query parameter or body
    401  AuthenticationError (no key, a wrong or revoked key, a bad or expired public token)
    403  ForbiddenError (a public token out of its scopes, a single-use token used again)
    404  RunNotFoundError, BatchNotFoundError, WaitpointNotFoundError, UnknownTaskError,
         UnknownQueueError, KeyNotFoundError, ScheduleNotFoundError
    409  IllegalTransitionError, DuplicateTaskError, RunFinishedError,
         RequestInProgressError (retryable: the retry answers what the first attempt did)
    413  PayloadTooLargeError
    422  RequestBodyError (a body that parses but means something else, e.g. a token
         completion that sends ``output`` instead of ``data``)
    429  RateLimitedError (with ``Retry-After``)
    503  StoreUnavailableError, DatabaseBusyError, DatabaseFullError: the database cannot
         serve the request now (unreachable, locked, its disk full); nothing was written, a
         retry after ``Retry-After`` may succeed
    500  anything else

The official client retries 408, 409, 429 and 5xx responses (up to 5 attempts over ~10 s) unless
the response carries ``x-should-retry: false``; :func:`error_headers` adds that header to every
error that retrying cannot fix, so a 409 fails at once instead of after ten seconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from shipyard.errors import (
    AuthenticationError,
    BatchNotFoundError,
    DatabaseBusyError,
    DatabaseFullError,
    DuplicateTaskError,
    ForbiddenError,
    IllegalTransitionError,
    KeyNotFoundError,
    NotInRunError,
    PayloadTooLargeError,
    RateLimitedError,
    RequestBodyError,
    RequestInProgressError,
    RunFinishedError,
    RunNotFoundError,
    ScheduleNotFoundError,
    ShipyardError,
    StoreUnavailableError,
    UnknownQueueError,
    UnknownTaskError,
    ValidationError,
    WaitpointNotFoundError,
)
from shipyard.schemas.wire import WireModel

__all__ = [
    "ErrorDetail",
    "ErrorResponse",
    "RequestBodyError",
    "error_headers",
    "error_response",
    "http_status_for",
    "validation_error_response",
]

UNPROCESSABLE_ERROR_TYPES = frozenset({"wrong_completion_key"})
"""pydantic error types that mean 422 (the body is JSON of the right shape but the wrong
meaning) rather than 400."""


class ErrorDetail(WireModel):
    """One validation problem: where (``param``, e.g. ``options.ttl``) and what."""

    param: str
    message: str


class ErrorResponse(WireModel):
    """The body of every error response.

    Example::

        {"error": "Run run_123 not found.", "code": "RUN_NOT_FOUND"}
    """

    error: str
    code: str | None = None
    param: str | None = None
    details: list[ErrorDetail] | None = None


_STATUS_BY_TYPE: tuple[tuple[type[ShipyardError], int], ...] = (
    (PayloadTooLargeError, 413),
    (RequestBodyError, 422),
    (ValidationError, 400),
    (NotInRunError, 400),
    (RunNotFoundError, 404),
    (BatchNotFoundError, 404),
    (WaitpointNotFoundError, 404),
    (ScheduleNotFoundError, 404),
    (UnknownTaskError, 404),
    (UnknownQueueError, 404),
    (IllegalTransitionError, 409),
    (DuplicateTaskError, 409),
    (RateLimitedError, 429),
    (AuthenticationError, 401),
    (ForbiddenError, 403),
    (KeyNotFoundError, 404),
    (RunFinishedError, 409),
    (RequestInProgressError, 409),
    (StoreUnavailableError, 503),
    (DatabaseBusyError, 503),
    (DatabaseFullError, 503),
)


def http_status_for(error: ShipyardError) -> int:
    """The HTTP status an error maps to (see the module docstring); 500 when unknown.

    Example::

        >>> http_status_for(RunNotFoundError("Run run_1 not found."))
        404
    """
    for error_type, status in _STATUS_BY_TYPE:
        if isinstance(error, error_type):
            return status
    return 500


def error_response(error: ShipyardError) -> ErrorResponse:
    """The body for a Shipyard error: its message, its code and the field it names, if any."""
    param = error.context.get("param")
    return ErrorResponse(
        error=error.message,
        code=error.code,
        param=param if isinstance(param, str) else None,
    )


def error_headers(status: int, error: ShipyardError | None = None) -> dict[str, str]:
    """Headers for an error response of ``status``.

    A 429 gets ``Retry-After`` (whole seconds, rounded up) and ``x-ratelimit-reset`` is left to
    the caller (it needs the clock); a 503 (the database cannot serve now) ``Retry-After: 1``.
    Every other 4xx gets ``x-should-retry: false``, so the
    official client does not retry a 409 for ten seconds; 5xx responses carry no hint and are
    retried.

    Example::

        >>> error_headers(429, RateLimitedError("Slow down.", retry_after_ms=1500))
        {'Retry-After': '2'}
    """
    if status == 429:
        retry_after_ms = getattr(error, "retry_after_ms", None) if error else None
        if isinstance(retry_after_ms, int | float) and retry_after_ms > 0:
            return {"Retry-After": str(max(1, math.ceil(retry_after_ms / 1000)))}
        return {}
    if isinstance(error, RequestInProgressError):
        return {"x-should-retry": "true"}
    if status == 503:
        return {"Retry-After": "1"}
    if 400 <= status < 500 and status != 408:
        return {"x-should-retry": "false"}
    return {}


# pydantic names the union member that failed: "str", "constrained-int", "QueueRef",
# "list[constrained-str]", "literal['a','b']". Field names are camelCase identifiers and query
# parameters look like "page[size]", so the tags can be told apart and dropped.
_UNION_TAG = re.compile(r"^[A-Z]|-|^(list|dict|tuple|set|frozenset|literal)\[")
_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "none", "list", "dict", "any", "bytes"})


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (part in _TYPE_TAGS or bool(_UNION_TAG.search(part)))


def _param(location: Sequence[Any]) -> str:
    # FastAPI prefixes the source ("body", "query", "path"); the field path is what helps.
    parts = list(location)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    text = ""
    for part in parts:
        if _is_union_tag(part):
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "body"


def validation_error_response(
    errors: Sequence[Mapping[str, Any]],
) -> tuple[int, ErrorResponse]:
    """Status and body for request validation errors (pydantic's or FastAPI's ``.errors()``).

    The status is 400, or 422 when any error is one of :data:`UNPROCESSABLE_ERROR_TYPES`. The
    message names every field at fault, e.g. ``Invalid request: options.ttl: Input should be a
    valid string``.

    Example::

        try:
            TriggerTaskRequest.model_validate(body)
        except pydantic.ValidationError as exc:
            status, response = validation_error_response(exc.errors())
    """
    # A value that fits no member of a union fails once per member; report it once per field.
    messages: dict[str, list[str]] = {}
    for error in errors:
        found = messages.setdefault(_param(error.get("loc", ())), [])
        message = str(error.get("msg", "invalid"))
        if message not in found:
            found.append(message)
    details = [
        ErrorDetail(param=param, message=" or ".join(found)) for param, found in messages.items()
    ]
    unprocessable = any(error.get("type") in UNPROCESSABLE_ERROR_TYPES for error in errors)
    if not details:
        return 400, ErrorResponse(error="Invalid request.", code=ValidationError.code)
    summary = "; ".join(f"{detail.param}: {detail.message}" for detail in details[:5])
    if len(details) > 5:
        summary += f"; and {len(details) - 5} more"
    return (
        422 if unprocessable else 400,
        ErrorResponse(
            error=f"Invalid request: {summary}",
            code=RequestBodyError.code if unprocessable else ValidationError.code,
            param=details[0].param,
            details=details,
        ),
    )
