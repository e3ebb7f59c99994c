"""The remote client's HTTP layer: one ``httpx.AsyncClient`` per client, the bearer key,
timeouts, retries with backoff, and error bodies turned back into Shipyard's exceptions.

Retries: a request that could not be sent (connection refused or reset, DNS, connect timeout),
an answer of 500, 502, 503 or 504 without ``x-should-retry: false``, and any answer with
``x-should-retry: true`` (a 409 while the first attempt of the same request id still runs) are
tried again, up to ``retries`` more times with exponential backoff and jitter. Every logical call
carries one ``x-trigger-request-idempotency-key`` on all its attempts, so a trigger the server
received but whose answer was lost is not created twice. Other 4xx answers are not retried (the
same request would fail the same way); a 429 raises :class:`~shipyard.errors.RateLimitedError`
at once, as the in-process engine does.

An error answer ``{"error", "code", "param"}`` becomes the exception class whose ``code`` it
names (``RUN_NOT_FOUND`` → :class:`~shipyard.errors.RunNotFoundError` …) with the server's
message, so code catching ``RunNotFoundError`` works the same in-process and over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from shipyard.errors import (
    AuthenticationError,
    ForbiddenError,
    IllegalTransitionError,
    PayloadTooLargeError,
    RateLimitedError,
    RemoteEngineError,
    RequestBodyError,
    ShipyardError,
    ValidationError,
)
from shipyard.jsonutil import dumps
from shipyard.schemas.headers import REQUEST_IDEMPOTENCY_HEADER, SHOULD_RETRY_HEADER
from shipyard.version import __version__

__all__ = ["Transport", "error_from_response", "public_url"]

QueryParams = list[tuple[str, str]]
RETRY_STATUSES = frozenset({500, 502, 503, 504})
_STATUS_CLASSES: dict[int, type[ShipyardError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: ForbiddenError,
    409: IllegalTransitionError,
    413: PayloadTooLargeError,
    422: RequestBodyError,
}


def public_url(url: str) -> str:
    """``url`` without a user name or password, fit for a message."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _error_classes() -> dict[str, type[ShipyardError]]:
    found: dict[str, type[ShipyardError]] = {}
    pending: list[type[ShipyardError]] = [ShipyardError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


def _build(cls: type[ShipyardError], message: str, **context: Any) -> ShipyardError:
    # Some errors take their own constructor arguments (RateLimitedError, SubtaskUnwrapError);
    # the base initialiser sets what every one of them has: the message and its context.
    error = cls.__new__(cls)
    ShipyardError.__init__(error, message, **context)
    return error


def error_from_response(
    response: httpx.Response,
    *,
    not_found: type[ShipyardError] | None = None,
    context: Mapping[str, Any] | None = None,
) -> ShipyardError:
    """The Shipyard exception an error answer stands for.

    The body's ``code`` picks the class; without a known code the status does (404:
    ``not_found``, the class the caller expects for a missing thing). The message is the
    server's ``error``; ``param`` and ``status`` are added to the error's context.
    """
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    message = body.get("error") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        message = f"The engine server answered HTTP {status} {response.reason_phrase}".rstrip()
        message += "." if status < 500 else f" ({public_url(str(response.url))})."
    extra: dict[str, Any] = dict(context or {})
    extra["status"] = status
    if isinstance(body, dict) and isinstance(body.get("param"), str):
        extra["param"] = body["param"]
    code = body.get("code") if isinstance(body, dict) else None
    cls = _error_classes().get(code) if isinstance(code, str) else None
    if status == 429:
        cls = RateLimitedError
        extra["retry_after_ms"] = _retry_after_ms(response)
    if cls is None:
        if status == 404 and not_found is not None:
            cls = not_found
        else:
            cls = _STATUS_CLASSES.get(status, RemoteEngineError)
    if cls is AuthenticationError and "SHIPYARD_SECRET_KEY" not in message:
        message = (
            f"{message.rstrip('.')}. Set SHIPYARD_SECRET_KEY to a secret key of the engine "
            "server's environment."
        )
    return _build(cls, message, **extra)


def _retry_after_ms(response: httpx.Response) -> int:
    raw = response.headers.get("retry-after", "")
    try:
        return max(0, int(float(raw) * 1000))
    except ValueError:
        return 1000


class Transport:
    """HTTP to one engine server: ``base_url`` + ``Authorization: Bearer <key>``.

    Example::

        transport = Transport("https://engine.example.com", secret_key)
        response = await transport.request("GET", "/api/v3/runs/run_1")
    """

    def __init__(
        self,
        base_url: str,
        secret_key: str | None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.25,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        headers = {"user-agent": f"shipyard-python/{__version__}", "accept": "application/json"}
        if secret_key:
            headers["authorization"] = f"Bearer {secret_key}"
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: QueryParams | None = None,
        not_found: type[ShipyardError] | None = None,
        context: Mapping[str, Any] | None = None,
        resend: bool = True,
    ) -> httpx.Response:
        """Send one logical call (retried as the module says) and return a 2xx answer.

        ``resend=False``: after a request that may have reached the server, do not send it
        again (only a connection that was never made is retried).

        Raises:
            ShipyardError: the error answer as its exception (see :func:`error_from_response`).
            RemoteEngineError: the server could not be reached or kept failing.
        """
        headers = {REQUEST_IDEMPOTENCY_HEADER: str(uuid.uuid4())}
        content: str | None = None
        if json is not None:
            # Shipyard's JSON rules (dates, pydantic models, no NaN) as the engine applies
            # them; the server checks depth and sizes.
            content = dumps(json, what="The request body", max_depth=None)
            headers["content-type"] = "application/json"
        query = httpx.QueryParams(tuple(params)) if params else None
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    method, path, content=content, params=query, headers=headers
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                if attempt >= self.retries:
                    raise self._unreachable(exc, attempt + 1) from None
            except httpx.TransportError as exc:
                if not resend or attempt >= self.retries:
                    raise self._unreachable(exc, attempt + 1) from None
            else:
                if response.is_success:
                    return response
                hint = response.headers.get(SHOULD_RETRY_HEADER)
                # The server's hint wins: "true" on a 409 says the first attempt of this request
                # id still runs, and a retry answers what it did.
                retry = resend and (
                    hint == "true" or (response.status_code in RETRY_STATUSES and hint != "false")
                )
                if not retry or attempt >= self.retries:
                    raise error_from_response(response, not_found=not_found, context=context)
            await asyncio.sleep(self.backoff * (2**attempt) * (0.5 + random.random()))
            attempt += 1

    @contextlib.asynccontextmanager
    async def stream(
        self,
        path: str,
        *,
        params: QueryParams | None = None,
        headers: Mapping[str, str] | None = None,
        not_found: type[ShipyardError] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """A ``GET`` whose body is read as it arrives (Server-Sent Events); an error answer
        raises as :meth:`request` does. Not retried here: the caller resumes from its last
        event."""
        query = httpx.QueryParams(tuple(params)) if params else None
        request = self._http.build_request(
            "GET",
            path,
            params=query,
            headers={"accept": "text/event-stream", **(headers or {})},
        )
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise self._unreachable(exc, 1) from None
        try:
            if not response.is_success:
                await response.aread()
                raise error_from_response(response, not_found=not_found, context=context)
            yield response
        finally:
            await response.aclose()

    def _unreachable(self, exc: httpx.TransportError, attempts: int) -> RemoteEngineError:
        url = public_url(self.base_url)
        what = (
            "did not answer in time"
            if isinstance(exc, httpx.TimeoutException)
            else ("could not be reached")
        )
        error = _build(
            RemoteEngineError,
            f"The engine server at {url} {what} ({type(exc).__name__}, {attempts} attempt"
            f"{'s' if attempts > 1 else ''}). Is it running, and is SHIPYARD_API_URL right?",
            url=url,
        )
        assert isinstance(error, RemoteEngineError)
        return error
