"""The remote client: the engine's operations over the engine server's HTTP API.

:class:`RemoteClient` has the methods the SDK calls on the in-process
:class:`~shipyard.engine.engine.Engine` (trigger, runs, wait tokens, queues, idempotency keys,
tasks, schedules), with the same arguments, return values and exceptions, so
``shipyard.tasks.trigger``, ``shipyard.runs.retrieve``, ``shipyard.schedules.create`` … work
unchanged in a process that only knows ``SHIPYARD_API_URL`` and ``SHIPYARD_SECRET_KEY``.
``trigger_and_wait`` and friends need a running task; inside one, the SDK uses the worker's
engine, never this client.

Example::

    client = RemoteClient("https://engine.example.com", secret_key)
    handle = await client.trigger("send-email", {"to": "a@b.c"}, {"tags": ["welcome"]})
    run = await client.retrieve_run(handle.id)
    await client.close()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn
from urllib.parse import quote

import httpx

from shipyard.client import convert
from shipyard.client.options import duration_value, time_value, trigger_body
from shipyard.client.realtime import RealtimeClient
from shipyard.client.schedules import ScheduleClient
from shipyard.client.transport import QueryParams, Transport
from shipyard.config import Settings
from shipyard.errors import (
    BatchNotFoundError,
    BatchTooLargeError,
    IdempotencyKeyError,
    NotInRunError,
    RunNotFoundError,
    ShipyardError,
    UnknownQueueError,
    ValidationError,
    WaitpointNotFoundError,
)
from shipyard.idempotency import outside_run_key
from shipyard.metadata_ops import MetadataOp
from shipyard.models.batches import BatchInfo
from shipyard.models.handles import BatchHandle, BatchResult, Result, RunHandle
from shipyard.models.queues import QueueInfo
from shipyard.models.runs import Run, RunEvent, RunPage
from shipyard.models.tasks import RegisteredTask
from shipyard.models.tokens import WaitToken, WaitTokenInfo, WaitTokenPage
from shipyard.schemas import (
    MAX_BATCH_ITEMS,
    MAX_PAGE_SIZE,
    BatchTriggerResponse,
    CreateWaitpointTokenResponse,
    ListQueuesResponse,
    ListRunEventsResponse,
    ListRunsResponse,
    ListTasksResponse,
    ListWaitpointTokensResponse,
    QueueItem,
    ReplayRunResponse,
    RetrieveBatchResponse,
    RetrieveRunResponse,
    RetrieveWaitpointTokenResponse,
    TriggerTaskResponse,
    UpdateMetadataResponse,
)
from shipyard.schemas.headers import TRIGGER_JWT_HEADER

__all__ = ["RemoteClient"]

QUEUE_PAGE = 100


def _segment(value: str) -> str:
    """A path segment, every reserved character escaped (ids come from callers)."""
    return quote(value, safe="")


def _queue_segment(name: str) -> str:
    # The API reads {queue} after one more decoding (Trigger.dev's SDK escapes "/" as %2F
    # before URL-encoding the segment): escape the same way.
    return quote(name.replace("/", "%2F"), safe="")


def _not_in_run(what: str) -> NoReturn:
    raise NotInRunError(f"{what} can only be called inside a running task.")


class RemoteClient(RealtimeClient, ScheduleClient):
    """The engine's SDK-facing operations, over HTTP to one engine server.

    ``environment_limit`` stands in for the server environment's concurrency limit where
    the API leaves it out (a queue without a limit of its own).
    """

    def __init__(
        self,
        api_url: str,
        secret_key: str | None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        environment_limit: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.environment_limit = environment_limit
        self._http = Transport(
            self.api_url, secret_key, timeout=timeout, retries=retries, transport=transport
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> RemoteClient:
        """A client for ``settings.api_url``, authenticated with the settings' secret key.

        In development without ``SHIPYARD_SECRET_KEY``, the project's development key
        (``.shipyard/secret_key``, the one a local ``shipyard dev`` signs with) is used if it
        exists; it is never created here.
        """
        if settings.api_url is None:
            raise ValidationError("A remote client needs api_url (SHIPYARD_API_URL).")
        key = settings.secret_key
        if key is None and settings.environment == "development":
            path = settings.state_dir / "secret_key"
            if path.is_file():
                key = path.read_text(encoding="utf-8", errors="replace").strip() or None
        return cls(
            settings.api_url,
            key,
            timeout=settings.api_timeout,
            environment_limit=settings.environment_concurrency_limit,
        )

    async def start(self) -> None:
        """Nothing to prepare (the engine has migrations to apply; a client has none)."""

    async def close(self) -> None:
        """Close the client's connections."""
        await self._http.aclose()

    async def server_info(self) -> dict[str, Any]:
        """The engine server's ``/healthz``: status, version, environment, task count."""
        data, _ = await self._json("GET", "/healthz")
        return data if isinstance(data, dict) else {}

    # -- plumbing -----------------------------------------------------------------------------

    async def _json(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: QueryParams | None = None,
        not_found: type[ShipyardError] | None = None,
        context: Mapping[str, Any] | None = None,
        resend: bool = True,
    ) -> tuple[Any, httpx.Headers]:
        response = await self._http.request(
            method,
            path,
            json=body,
            params=params,
            not_found=not_found,
            context=context,
            resend=resend,
        )
        try:
            return response.json(), response.headers
        except ValueError:
            from shipyard.client.transport import error_from_response

            raise error_from_response(response) from None

    # -- triggering ---------------------------------------------------------------------------

    async def trigger(
        self,
        task_id: str,
        payload: Any,
        options: Mapping[str, Any],
        *,
        trigger_function: str = "trigger",
    ) -> RunHandle:
        """Create a run (or return the one its idempotency key points at)."""
        data, headers = await self._json(
            "POST",
            f"/api/v1/tasks/{_segment(task_id)}/trigger",
            body=trigger_body(payload, options),
        )
        body = TriggerTaskResponse.model_validate(data)
        return RunHandle(body.id, task_id, body.is_cached, headers.get(TRIGGER_JWT_HEADER, ""))

    async def batch_trigger(
        self,
        entries: Sequence[Mapping[str, Any]],
        options: Mapping[str, Any],
        *,
        trigger_function: str = "batchTrigger",
    ) -> BatchHandle:
        """Create one run per entry (``{"task", "payload", "options"}``) in one request.

        Batch options apply to every item without its own of the same name; a batch-level
        ``idempotency_key`` gives item ``i`` the key ``[key, i]``, as in-process.
        """
        if len(entries) > MAX_BATCH_ITEMS:
            raise BatchTooLargeError(
                f"A batch can have at most {MAX_BATCH_ITEMS:,} items; got {len(entries):,}.",
                limit=MAX_BATCH_ITEMS,
                size=len(entries),
            )
        if not entries:
            raise ValidationError("A batch needs at least one item.")
        shared = dict(options)
        batch_key = shared.pop("idempotency_key", None)
        items = []
        for index, entry in enumerate(entries):
            item_options = {**shared, **dict(entry.get("options") or {})}
            if batch_key is not None and "idempotency_key" not in item_options:
                item_options["idempotency_key"] = [*_key_parts(batch_key), str(index)]
            item = trigger_body(entry.get("payload"), item_options)
            items.append({"task": str(entry["task"]), **item})
        data, headers = await self._json("POST", "/api/v1/tasks/batch", body={"items": items})
        body = BatchTriggerResponse.model_validate(data)
        return BatchHandle(
            batch_id=body.id,
            run_count=len(body.runs),
            runs=tuple(run.id for run in body.runs),
            public_access_token=headers.get(TRIGGER_JWT_HEADER, ""),
        )

    async def trigger_and_wait(
        self, task_id: str, payload: Any, options: Mapping[str, Any]
    ) -> Result[Any]:
        """Only inside a running task (where the SDK uses the worker's engine)."""
        _not_in_run("trigger_and_wait()")

    async def batch_trigger_and_wait(
        self, entries: Sequence[Mapping[str, Any]], options: Mapping[str, Any]
    ) -> BatchResult[Any]:
        """Only inside a running task (where the SDK uses the worker's engine)."""
        _not_in_run("batch_trigger_and_wait()")

    # -- runs ---------------------------------------------------------------------------------

    async def retrieve_run(self, run_id: str) -> Run:
        """The full run, with payload, output, error and attempts."""
        data, _ = await self._json(
            "GET",
            f"/api/v3/runs/{_segment(run_id)}",
            not_found=RunNotFoundError,
            context={"run_id": run_id},
        )
        return convert.run_from_retrieve(RetrieveRunResponse.model_validate(data))

    async def list_runs(
        self,
        *,
        statuses: Sequence[str] = (),
        task_ids: Sequence[str] = (),
        tag: str | None = None,
        batch_id: str | None = None,
        created_from: int | None = None,
        created_to: int | None = None,
        limit: int = 50,
        cursor: str | None = None,
        schedule_id: str | None = None,
    ) -> RunPage:
        """One page of runs, newest first (at most 100 a page over HTTP)."""
        params: list[tuple[str, str]] = [("page[size]", str(max(1, min(limit, MAX_PAGE_SIZE))))]
        if statuses:
            params.append(("filter[status]", ",".join(statuses)))
        if task_ids:
            params.append(("filter[taskIdentifier]", ",".join(task_ids)))
        if tag is not None:
            params.append(("filter[tag]", tag))
        if batch_id is not None:
            params.append(("filter[batch]", batch_id))
        if schedule_id is not None:
            params.append(("filter[schedule]", schedule_id))
        if created_from is not None:
            params.append(("filter[createdAt][from]", str(created_from)))
        if created_to is not None:
            params.append(("filter[createdAt][to]", str(created_to)))
        if cursor is not None:
            params.append(("page[after]", cursor))
        data, _ = await self._json("GET", "/api/v1/runs", params=params)
        body = ListRunsResponse.model_validate(data)
        return RunPage(
            items=tuple(convert.run_from_item(item) for item in body.data),
            next_cursor=body.pagination.next,
        )

    async def run_events(
        self, run_id: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[RunEvent]:
        """A run's events (logs, spans, metadata, tag and status changes) after ``after_id``,
        at most ``limit`` (fetched a page at a time)."""
        events: list[RunEvent] = []
        after: str | None = str(after_id) if after_id else None
        while len(events) < limit:
            params = [("page[after]", after)] if after else []
            data, _ = await self._json(
                "GET",
                f"/api/v1/runs/{_segment(run_id)}/events",
                params=params,
                not_found=RunNotFoundError,
                context={"run_id": run_id},
            )
            body = ListRunEventsResponse.model_validate(data)
            events.extend(convert.run_event(event) for event in body.events)
            after = body.pagination.next
            if after is None or not body.events:
                break
        return events[:limit]

    async def cancel_run(self, run_id: str) -> Run:
        """Cancel a run and its non-final children; the run after."""
        await self._json(
            "POST",
            f"/api/v2/runs/{_segment(run_id)}/cancel",
            not_found=RunNotFoundError,
            context={"run_id": run_id},
        )
        return await self.retrieve_run(run_id)

    async def reschedule_run(self, run_id: str, delay: Any) -> Run:
        """Move a DELAYED run to a new time (a duration from now, a datetime or ISO string)."""
        data, _ = await self._json(
            "POST",
            f"/api/v1/runs/{_segment(run_id)}/reschedule",
            body={"delay": time_value(delay, "delay")},
            not_found=RunNotFoundError,
            context={"run_id": run_id},
        )
        return convert.run_from_retrieve(RetrieveRunResponse.model_validate(data))

    async def replay_run(self, run_id: str, *, payload: Any = ...) -> RunHandle:
        """A new run of the same task with the same payload (or ``payload``) and options."""
        body: dict[str, Any] | None = None
        if payload is not ...:
            from shipyard.jsonutil import dumps

            body = {"payload": dumps(payload, what="Payload"), "payloadType": "application/json"}
        # Not sent twice: a replay the server received but answered into a lost connection
        # would create a second new run.
        data, headers = await self._json(
            "POST",
            f"/api/v1/runs/{_segment(run_id)}/replay",
            body=body,
            not_found=RunNotFoundError,
            context={"run_id": run_id},
            resend=False,
        )
        new_id = ReplayRunResponse.model_validate(data).id
        run = await self.retrieve_run(new_id)
        return RunHandle(new_id, run.task_identifier, False, headers.get(TRIGGER_JWT_HEADER, ""))

    async def add_tags(self, run_id: str, tags: str | Sequence[str]) -> list[str]:
        """Add tags to a run (at most 10 in all); its tags after."""
        items = [tags] if isinstance(tags, str) else list(tags)
        await self._json(
            "POST",
            f"/api/v1/runs/{_segment(run_id)}/tags",
            body={"tags": items},
            not_found=RunNotFoundError,
            context={"run_id": run_id},
        )
        return list((await self.retrieve_run(run_id)).tags)

    async def update_metadata(
        self,
        run_id: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        operations: Sequence[MetadataOp] = (),
    ) -> dict[str, Any]:
        """Replace a run's metadata and/or apply operations to it; the metadata after."""
        body: dict[str, Any] = {}
        if metadata is not None:
            body["metadata"] = dict(metadata)
        if operations:
            body["operations"] = [_wire_op(op) for op in operations]
        # Not sent again once it may have reached the server: the server does not deduplicate
        # this route, and an increment or append applied twice would be wrong.
        data, _ = await self._json(
            "PUT",
            f"/api/v1/runs/{_segment(run_id)}/metadata",
            body=body,
            not_found=RunNotFoundError,
            context={"run_id": run_id},
            resend=False,
        )
        return UpdateMetadataResponse.model_validate(data).metadata

    async def reset_idempotency_key(self, task_id: str, key: str) -> int:
        """Clear a (hashed) key on the runs of ``task_id`` holding it. The API does not say
        how many runs: 1 when some had it, 0 when none did."""
        try:
            await self._json(
                "POST",
                f"/api/v1/idempotencyKeys/{_segment(key)}/reset",
                body={"taskIdentifier": task_id},
            )
        except ShipyardError as exc:
            if exc.context.get("status") == 404:
                return 0
            raise
        return 1

    async def retrieve_batch(self, batch_id: str) -> BatchInfo:
        """A batch and its run ids in input order."""
        data, _ = await self._json(
            "GET",
            f"/api/v1/batches/{_segment(batch_id)}",
            not_found=BatchNotFoundError,
            context={"batch_id": batch_id},
        )
        return convert.batch_info(RetrieveBatchResponse.model_validate(data))

    async def list_tasks(self) -> list[RegisteredTask]:
        """Every task a worker of the server's environment registered."""
        data, _ = await self._json("GET", "/api/v1/tasks")
        return [
            convert.registered_task(item) for item in ListTasksResponse.model_validate(data).data
        ]

    # -- wait tokens --------------------------------------------------------------------------

    async def create_token(
        self,
        *,
        timeout: Any = None,
        idempotency_key: str | None = None,
        idempotency_key_ttl: str | int | None = None,
        tags: Sequence[str] | str | None = None,
    ) -> WaitToken:
        """Create a wait token (or return the live one holding ``idempotency_key``)."""
        body: dict[str, Any] = {}
        if timeout is not None:
            body["timeout"] = time_value(timeout, "timeout")
        if idempotency_key is not None:
            body["idempotencyKey"] = str(outside_run_key(idempotency_key))
        if idempotency_key_ttl is not None:
            body["idempotencyKeyTTL"] = duration_value(idempotency_key_ttl, "idempotency_key_ttl")
        if tags is not None:
            body["tags"] = [tags] if isinstance(tags, str) else list(tags)
        data, headers = await self._json("POST", "/api/v1/waitpoints/tokens", body=body)
        created = CreateWaitpointTokenResponse.model_validate(data)
        return WaitToken(
            id=created.id,
            url=created.url,
            is_cached=created.is_cached,
            public_access_token=headers.get(TRIGGER_JWT_HEADER, ""),
        )

    async def complete_token(self, waitpoint_id: str, data: Any) -> None:
        """Complete a token with ``data``; completing it again keeps the first data."""
        await self._json(
            "POST",
            f"/api/v1/waitpoints/tokens/{_segment(waitpoint_id)}/complete",
            body={"data": data},
            not_found=WaitpointNotFoundError,
            context={"waitpoint_id": waitpoint_id},
        )

    async def retrieve_token(self, waitpoint_id: str) -> WaitTokenInfo:
        """A token's status, data and times."""
        data, _ = await self._json(
            "GET",
            f"/api/v1/waitpoints/tokens/{_segment(waitpoint_id)}",
            not_found=WaitpointNotFoundError,
            context={"waitpoint_id": waitpoint_id},
        )
        return convert.token_info(RetrieveWaitpointTokenResponse.model_validate(data))

    async def list_tokens(
        self,
        *,
        statuses: Sequence[str] = (),
        tags: Sequence[str] = (),
        idempotency_key: str | None = None,
        created_from: int | None = None,
        created_to: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> WaitTokenPage:
        """One page of tokens, newest first, without their output (at most 100 a page)."""
        params: list[tuple[str, str]] = [("page[size]", str(max(1, min(limit, MAX_PAGE_SIZE))))]
        if statuses:
            params.append(("filter[status]", ",".join(statuses)))
        if tags:
            params.append(("filter[tags]", ",".join(tags)))
        if idempotency_key is not None:
            params.append(("filter[idempotencyKey]", idempotency_key))
        if created_from is not None:
            params.append(("filter[createdAt][from]", str(created_from)))
        if created_to is not None:
            params.append(("filter[createdAt][to]", str(created_to)))
        if cursor is not None:
            params.append(("page[after]", cursor))
        data, _ = await self._json("GET", "/api/v1/waitpoints/tokens", params=params)
        body = ListWaitpointTokensResponse.model_validate(data)
        return WaitTokenPage(
            items=tuple(convert.token_info(item) for item in body.data),
            next_cursor=body.pagination.next,
        )

    # -- queues -------------------------------------------------------------------------------

    def _queue_info(self, data: Any) -> QueueInfo:
        return convert.queue_info(QueueItem.model_validate(data), self.environment_limit)

    async def list_queues(self) -> list[QueueInfo]:
        """Every queue workers registered in the server's environment."""
        found: list[QueueInfo] = []
        page = 1
        while True:
            data, _ = await self._json(
                "GET", "/api/v1/queues", params=[("page", str(page)), ("perPage", str(QUEUE_PAGE))]
            )
            body = ListQueuesResponse.model_validate(data)
            found.extend(convert.queue_info(item, self.environment_limit) for item in body.data)
            if page >= body.pagination.total_pages or not body.data:
                return sorted(found, key=lambda q: q.name)
            page += 1

    async def _queue(self, method: str, name: str, suffix: str, body: Any = None) -> QueueInfo:
        data, _ = await self._json(
            method,
            f"/api/v1/queues/{_queue_segment(name)}{suffix}",
            params=[("type", "custom")] if method == "GET" else None,
            body=body,
            not_found=UnknownQueueError,
            context={"queue": name},
        )
        return self._queue_info(data)

    async def retrieve_queue(self, name: str) -> QueueInfo:
        """One queue by name (a task's own queue is ``task/<id>``)."""
        return await self._queue("GET", name, "")

    async def pause_queue(self, name: str) -> QueueInfo:
        """Stop claims from this queue (running runs finish normally)."""
        return await self._queue("POST", name, "/pause", {"type": "custom", "action": "pause"})

    async def resume_queue(self, name: str) -> QueueInfo:
        """Allow claims from this queue again."""
        return await self._queue("POST", name, "/pause", {"type": "custom", "action": "resume"})

    async def override_queue_limit(self, name: str, limit: int) -> QueueInfo:
        """Replace the queue's limit until reset."""
        return await self._queue(
            "POST",
            name,
            "/concurrency/override",
            {"type": "custom", "concurrencyLimit": limit},
        )

    async def reset_queue_limit(self, name: str) -> QueueInfo:
        """Go back to the limit set in code."""
        return await self._queue("POST", name, "/concurrency/reset", {"type": "custom"})


def _key_parts(key: Any) -> list[str]:
    # The batch key's parts, as the engine builds each item's key from them.
    if isinstance(key, str):
        return [key]
    if isinstance(key, Sequence):
        return [str(part) for part in key]
    raise IdempotencyKeyError(
        f"An idempotency key must be a string or a list of strings; got {type(key).__name__}."
    )


_WIRE_KINDS = {"replace": "update", "del": "delete"}


def _wire_op(op: MetadataOp) -> dict[str, Any]:
    kind = _WIRE_KINDS.get(op.kind, op.kind)
    if kind == "update":
        return {"type": "update", "value": op.value}
    if kind == "delete":
        return {"type": "delete", "key": op.key}
    return {"type": kind, "key": op.key, "value": op.value}
