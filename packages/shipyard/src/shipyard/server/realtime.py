"""Realtime over HTTP: Server-Sent Events for run, tag and batch subscriptions and for streams,
and sending to input streams (``docs/realtime.md``).

=========================================  =================================================
``GET  /realtime/v1/runs/{runId}``           a run's updates; ends after its final status
``GET  /realtime/v1/runs?tags=a,b``          runs with any of the tags (``createdAt=1d``)
``GET  /realtime/v1/batches/{batchId}``      a batch's runs
``GET  /realtime/v1/streams/{runId}/{id}``   a run's stream, chunk by chunk
``POST /realtime/v1/streams/{runId}/input/{id}``  send ``{"data": …}`` to an input stream
=========================================  =================================================

Every update is ``event: update``, ``id:`` a position, ``data:`` ``{"change": …, "run": …}``
(the run as ``GET /api/v3/runs/{id}`` returns it, with realtime's ``isCompleted``); a chunk is
``event: chunk``, ``id:`` its index, ``data:`` its JSON. A stream that ends sends
``event: end`` first (close the ``EventSource`` then, or it reconnects). Reconnecting with
``Last-Event-ID`` (or ``?lastEventId=``) resumes after that event: nothing lost, nothing
repeated. A ``: ping`` comment every 15 s keeps proxies from closing an idle connection.

**Access** is one dependency, :class:`RealtimeAccess`: given the request, the engine of its
environment and a :class:`RealtimeGrant` that answers "may read run X / tags T / batch B, may
write run X's input". The engine server passes its
:class:`~shipyard.server.auth.Gatekeeper`, the same authentication as every HTTP API route
(any environment's secret key grants everything in it; a public access token its scopes),
taking the token from ``Authorization: Bearer`` or ``?token=`` (for ``EventSource``, which
cannot send headers). :class:`SecretKeyAccess` is the minimal one (one engine, its key and the
tokens it signed), for an app that mounts these routes alone.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse

from shipyard.engine.auth import TokenClaims, verify_token
from shipyard.engine.engine import Engine
from shipyard.engine.streams import check_stream_id
from shipyard.errors import (
    AuthenticationError,
    PayloadTooLargeError,
    RunFinishedError,
    ShipyardError,
    ValidationError,
)
from shipyard.jsonutil import MAX_JSON_DEPTH, loads
from shipyard.models.realtime import RunChange
from shipyard.models.runs import Run
from shipyard.schemas.errors import error_response, http_status_for
from shipyard.schemas.runs import RetrieveRunResponse

__all__ = [
    "HEARTBEAT_SECONDS",
    "FullGrant",
    "RealtimeAccess",
    "RealtimeContext",
    "RealtimeGrant",
    "ScopeGrant",
    "SecretKeyAccess",
    "realtime_router",
    "sse_response",
    "update_events",
]

HEARTBEAT_SECONDS = 15.0
_INPUT_BODY_MAX = 2 * 1024 * 1024
# The heartbeat, sent by the subscription itself after a quiet interval: sse-starlette's own
# ping would cost every connection a task of its own.
_PING = b": ping\r\n\r\n"


# -- access -------------------------------------------------------------------------------------


class RealtimeGrant(Protocol):
    """What a caller may do (answers without I/O; the routes load what they ask about)."""

    def read_run(self, run: Run) -> bool:
        """May read this run (its updates and its streams)."""
        ...

    def read_tags(self, tags: Sequence[str]) -> bool:
        """May follow every run having any of ``tags``."""
        ...

    def read_batch(self, batch_id: str) -> bool:
        """May follow this batch's runs."""
        ...

    def write_input(self, run: Run) -> bool:
        """May send to this run's input streams."""
        ...


@dataclass(frozen=True, slots=True)
class RealtimeContext:
    """The engine a request is for, and what its caller may do."""

    engine: Engine
    grant: RealtimeGrant


class RealtimeAccess(Protocol):
    """The seam the HTTP API plugs its authentication into: the request's engine and grant,
    or :class:`~shipyard.errors.AuthenticationError` (answered 401 with its message)."""

    def __call__(self, request: Request) -> Awaitable[RealtimeContext]:
        """Authenticate ``request``."""
        ...


class FullGrant:
    """Everything (the secret key)."""

    def read_run(self, run: Run) -> bool:
        """Yes."""
        return True

    def read_tags(self, tags: Sequence[str]) -> bool:
        """Yes."""
        return True

    def read_batch(self, batch_id: str) -> bool:
        """Yes."""
        return True

    def write_input(self, run: Run) -> bool:
        """Yes."""
        return True


@dataclass(frozen=True, slots=True)
class ScopeGrant:
    """What a public access token's scopes allow (Trigger.dev's scopes): ``read:runs``
    (every run) or ``read:runs:<id>``; ``read:tags:<tag>`` (runs with the tag),
    ``read:batch:<id>`` (the batch and its runs), ``read:tasks:<task id>`` (the task's runs);
    ``write:inputStreams:<run id>`` to send input."""

    claims: TokenClaims

    def read_run(self, run: Run) -> bool:
        """A scope names the run, one of its tags, its batch or its task."""
        c = self.claims
        return (
            c.allows("read", "runs", run.id)
            or not set(c.names("read", "tags")).isdisjoint(run.tags)
            or (run.batch_id is not None and c.allows("read", "batch", run.batch_id))
            or c.allows("read", "tasks", run.task_identifier)
        )

    def read_tags(self, tags: Sequence[str]) -> bool:
        """Every one of ``tags`` is granted (or every run is)."""
        c = self.claims
        return (
            c.allows("read", "runs")
            or c.allows("read", "tags")
            or all(c.allows("read", "tags", t) for t in tags)
        )

    def read_batch(self, batch_id: str) -> bool:
        """The batch is named (or every run is readable)."""
        c = self.claims
        return c.allows("read", "runs") or c.allows("read", "batch", batch_id)

    def write_input(self, run: Run) -> bool:
        """``write:inputStreams:<run id>`` (or every run's)."""
        return self.claims.allows("write", "inputStreams", run.id)


class SecretKeyAccess:
    """The default access: one engine; its secret key, or a public access token it signed.

    The token comes from ``Authorization: Bearer <token>`` or ``?token=<token>``. A token in a
    URL can end up in access logs, proxies and browser history: prefer short-lived public
    tokens there, never the secret key.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def __call__(self, request: Request) -> RealtimeContext:
        """The engine and what the request's token grants; :class:`AuthenticationError` if
        none."""
        token = bearer_token(request)
        if token is None:
            raise AuthenticationError(
                "Missing credentials: send 'Authorization: Bearer <secret key or public "
                "access token>', or ?token=<public access token> from a browser."
            )
        secret = self.engine.secret_key()
        if hmac.compare_digest(token.encode(), secret.encode()):
            return RealtimeContext(self.engine, FullGrant())
        claims = verify_token(token, secret, environment=self.engine.environment)
        return RealtimeContext(self.engine, ScopeGrant(claims))


def bearer_token(request: Request) -> str | None:
    """The request's token: ``Authorization: Bearer …`` first, else ``?token=``."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    query = request.query_params.get("token")
    return query or None


# -- encoding -----------------------------------------------------------------------------------


class _EventStream(EventSourceResponse):
    """sse-starlette's response without its per-message timeout when none is asked for.

    3.7 wraps every send in an anyio cancel scope, even without a timeout: with hundreds of
    subscribers that scope is half of the server's time per update. A client too slow to read
    is handled by the feed hub instead (its buffer overflows and it resumes from the store).
    """

    async def _send_with_timeout(self, send: Any, message: Any) -> None:
        if self.send_timeout is None:
            await send(message)
        else:
            await super()._send_with_timeout(send, message)


def _update_body(change: RunChange) -> bytes:
    """``event: update`` without its id: made once per change, shared by every subscriber."""
    body = change.encodings.get("sse")
    if body is None:
        wire = RetrieveRunResponse.from_run(change.run).to_wire()
        wire["isCompleted"] = change.run.is_completed  # realtime's meaning (not CANCELED)
        data = json.dumps({"change": change.change, "run": wire}, separators=(",", ":"))
        body = f"event: update\r\ndata: {data}\r\n\r\n".encode()
        change.encodings["sse"] = body
    return body


def _event(event: str, data: str, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\r\n" if event_id is not None else ""
    return f"{head}event: {event}\r\ndata: {data}\r\n\r\n".encode()


def _error(exc: ShipyardError, status: int | None = None) -> JSONResponse:
    code = status or http_status_for(exc)
    return JSONResponse(error_response(exc).to_wire(), status_code=code)


def _denied(message: str, status: int) -> JSONResponse:
    return JSONResponse(
        {"error": message, "code": "UNAUTHORIZED" if status == 401 else "FORBIDDEN"},
        status_code=status,
    )


def _last_event_id(request: Request) -> str | None:
    value = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
    return value.strip() or None if value else None


def sse_response(events: AsyncIterator[bytes]) -> EventSourceResponse:
    """A Server-Sent Events response of already encoded ``events`` (no buffering proxies)."""
    return _EventStream(
        events,
        ping=0,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def update_events(changes: AsyncIterator[RunChange | None], *, end: bool) -> AsyncIterator[bytes]:
    """A subscription's changes as ``event: update`` (None as a ``: ping``), then
    ``event: end`` if ``end``: what every realtime route sends (and the dashboard's list)."""
    return _updates(changes, end=end)


# -- the router ---------------------------------------------------------------------------------


def realtime_router(
    access: RealtimeAccess, *, heartbeat_seconds: float = HEARTBEAT_SECONDS
) -> APIRouter:
    """The realtime routes, authenticated by ``access`` (see the module docstring);
    ``heartbeat_seconds`` is the interval of the ``: ping`` comments."""
    router = APIRouter(prefix="/realtime/v1")

    stream = sse_response

    async def authorize(request: Request) -> RealtimeContext | Response:
        try:
            return await access(request)
        except AuthenticationError as exc:
            return _denied(exc.message, 401)

    @router.get("/runs/{run_id}")
    async def subscribe_run(run_id: str, request: Request) -> Response:
        """A run's updates: the run now, then each change; ``event: end`` after its final
        status (``stopOnCompletion=false`` keeps it open)."""
        ctx = await authorize(request)
        if isinstance(ctx, Response):
            return ctx
        try:
            run = await ctx.engine.retrieve_run(run_id)
            if not ctx.grant.read_run(run):
                return _denied(f"This token cannot read run {run_id}.", 403)
            stop = request.query_params.get("stopOnCompletion", "true").lower() != "false"
            after = ctx.engine.check_position(_last_event_id(request))
        except ShipyardError as exc:
            return _error(exc)
        changes = ctx.engine.subscribe_run(
            run_id, after=after, stop_on_completion=stop, heartbeat_s=heartbeat_seconds
        )
        return stream(_updates(changes, end=True))

    @router.get("/runs")
    async def subscribe_tags(request: Request) -> Response:
        """Runs with any of ``tags`` (comma-separated) created within ``createdAt``."""
        ctx = await authorize(request)
        if isinstance(ctx, Response):
            return ctx
        wanted = [t for t in request.query_params.get("tags", "").split(",") if t.strip()]
        try:
            if not wanted:
                raise ValidationError("Give the tags to follow: ?tags=a,b", param="tags")
            if not ctx.grant.read_tags(wanted):
                return _denied("This token cannot read every one of these tags.", 403)
            created_at = request.query_params.get("createdAt", "1d")
            ctx.engine.check_tag_window(created_at)
            after = ctx.engine.check_position(_last_event_id(request))
        except ShipyardError as exc:
            return _error(exc)
        changes = ctx.engine.subscribe_tags(
            wanted, created_at=created_at, after=after, heartbeat_s=heartbeat_seconds
        )
        return stream(_updates(changes, end=False))

    @router.get("/batches/{batch_id}")
    async def subscribe_batch(batch_id: str, request: Request) -> Response:
        """A batch's runs: each now, then each change."""
        ctx = await authorize(request)
        if isinstance(ctx, Response):
            return ctx
        try:
            await ctx.engine.retrieve_batch(batch_id)
            if not ctx.grant.read_batch(batch_id):
                return _denied(f"This token cannot read batch {batch_id}.", 403)
            after = ctx.engine.check_position(_last_event_id(request))
        except ShipyardError as exc:
            return _error(exc)
        changes = ctx.engine.subscribe_batch(batch_id, after=after, heartbeat_s=heartbeat_seconds)
        return stream(_updates(changes, end=False))

    @router.get("/streams/{run_id}/{stream_id}")
    async def read_stream(run_id: str, stream_id: str, request: Request) -> Response:
        """A run's stream from ``startIndex`` (or after ``Last-Event-ID``); ``event: end``
        when the run has finished and everything was sent, or after ``timeoutInSeconds``
        (60) without a chunk."""
        ctx = await authorize(request)
        if isinstance(ctx, Response):
            return ctx
        try:
            run = await ctx.engine.retrieve_run(run_id)
            if not ctx.grant.read_run(run):
                return _denied(f"This token cannot read run {run_id}.", 403)
            start = _int_param(request, "startIndex", 0)
            last = _last_event_id(request)
            if last is not None:
                if not last.isdigit():
                    raise ValidationError("Last-Event-ID of a stream is a chunk index.")
                start = int(last) + 1
            timeout = _int_param(request, "timeoutInSeconds", 60)
            check_stream_id(stream_id)
            chunks = ctx.engine.read_stream(
                run_id,
                stream_id,
                start_index=start,
                timeout_s=max(timeout, 1),
                heartbeat_s=heartbeat_seconds,
            )
        except ShipyardError as exc:
            return _error(exc)

        async def events() -> AsyncIterator[bytes]:
            async for chunk in chunks:
                if chunk is None:
                    yield _PING
                    continue
                data = json.dumps(chunk.value, separators=(",", ":"))
                yield _event("chunk", data, str(chunk.index))
            yield _event("end", "{}")

        return stream(events())

    @router.post("/streams/{run_id}/input/{stream_id}")
    async def send_input(run_id: str, stream_id: str, request: Request) -> Response:
        """Send ``{"data": …}`` (≤ 1 MiB) to a run's input stream: 200 ``{"ok": true}``;
        409 if the run has finished."""
        ctx = await authorize(request)
        if isinstance(ctx, Response):
            return ctx
        try:
            return await _send_input(ctx, run_id, stream_id, request)
        except RunFinishedError as exc:
            return _error(exc, 409)
        except ShipyardError as exc:
            return _error(exc)

    return router


async def _send_input(
    ctx: RealtimeContext, run_id: str, stream_id: str, request: Request
) -> Response:
    run = await ctx.engine.retrieve_run(run_id)
    if not ctx.grant.write_input(run):
        return _denied(f"This token cannot send input to run {run_id}.", 403)
    raw = await request.body()
    if len(raw) > _INPUT_BODY_MAX:
        raise PayloadTooLargeError(
            "The request body is over 2 MiB; input stream data is at most 1 MiB.",
            limit=_INPUT_BODY_MAX,
            size=len(raw),
        )
    body = loads(raw, max_depth=MAX_JSON_DEPTH + 1, what="The request body") if raw else None
    if not isinstance(body, dict) or "data" not in body:
        raise ValidationError('Send a JSON object {"data": …}.', param="data")
    resumed = await ctx.engine.send_input(run_id, stream_id, body["data"])
    return JSONResponse({"ok": True, "resumedWait": resumed})


async def _updates(changes: AsyncIterator[RunChange | None], *, end: bool) -> AsyncIterator[bytes]:
    try:
        async for change in changes:
            if change is None:
                yield _PING
                continue
            body = f"id: {change.position}\r\n".encode() + _update_body(change)
            del change  # an idle connection keeps no update alive
            yield body
        if end:
            yield _event("end", "{}")
    finally:
        aclose = getattr(changes, "aclose", None)
        if aclose is not None:
            await aclose()


def _int_param(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    if not value.isdigit():
        raise ValidationError(f"{name} must be a whole number >= 0; got {value!r}.", param=name)
    return int(value)
