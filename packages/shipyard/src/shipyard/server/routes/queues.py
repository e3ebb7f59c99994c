"""Queues over HTTP (secret key only).

==================================================  ==========================================
``GET  /api/v1/queues?page=&perPage=``               every queue, by name (offset pages)
``GET  /api/v1/queues/{queue}?type=id|task|custom``  one queue
``POST /api/v1/queues/{queue}/pause``                ``{"action": "pause"|"resume"}``
``POST /api/v1/queues/{queue}/concurrency/override``  ``{"concurrencyLimit": n}``
``POST /api/v1/queues/{queue}/concurrency/reset``     back to the limit set in code
==================================================  ==========================================

``{queue}`` is a queue id (``queue_…``, the default ``type``), a task id (``type=task``: the
task's own queue) or a custom queue's name (``type=custom``); the body's ``type`` says the same
for the POST routes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from shipyard.engine.engine import Engine
from shipyard.errors import UnknownQueueError
from shipyard.schemas.filters import parse_offset_page
from shipyard.schemas.queues import (
    ListQueuesResponse,
    OffsetPagination,
    OverrideQueueConcurrencyRequest,
    PauseQueueRequest,
    QueueItem,
    ResetQueueConcurrencyRequest,
    queue_friendly_id,
    queue_lookup,
)
from shipyard.server.auth import Caller, secret_caller
from shipyard.server.routes.common import ERRORS
from shipyard.server.routing import JsonRoute, wire

__all__ = ["router"]


async def queue_name(engine: Engine, segment: str, queue_type: str | None) -> str:
    """The stored name of the queue a path names (by id, task id or name)."""
    lookup = queue_lookup(segment, queue_type)
    if lookup.name is not None:
        return lookup.name
    for info in await engine.list_queues():
        if queue_friendly_id(info.name) == lookup.id:
            return info.name
    raise UnknownQueueError(
        f"Queue id {lookup.id!r} not found in this environment (pass ?type=task or "
        "?type=custom to name a queue by task id or name).",
        queue=lookup.id,
    )


def router() -> APIRouter:
    """The queue routes."""
    api = APIRouter(route_class=JsonRoute, tags=["queues"])

    @api.get(
        "/api/v1/queues", response_model=ListQueuesResponse, responses=ERRORS, summary="List queues"
    )
    async def list_queues(
        request: Request, caller: Annotated[Caller, Depends(secret_caller)]
    ) -> JSONResponse:
        """Every queue with its running and queued counts, limit and paused flag."""
        page = parse_offset_page(request.query_params.multi_items())
        queues = await caller.engine.list_queues()
        items = queues[page.offset : page.offset + page.per_page]
        total_pages = max(1, -(-len(queues) // page.per_page))
        return wire(
            ListQueuesResponse(
                data=[QueueItem.from_info(q) for q in items],
                pagination=OffsetPagination(
                    current_page=page.page, total_pages=total_pages, count=len(queues)
                ),
            )
        )

    @api.get(
        "/api/v1/queues/{queue}",
        response_model=QueueItem,
        responses=ERRORS,
        summary="Retrieve a queue",
    )
    async def retrieve_queue(
        queue: str, caller: Annotated[Caller, Depends(secret_caller)], type: str | None = None
    ) -> JSONResponse:
        """One queue by id, task id (``type=task``) or name (``type=custom``)."""
        name = await queue_name(caller.engine, queue, type)
        return wire(QueueItem.from_info(await caller.engine.retrieve_queue(name)))

    @api.post(
        "/api/v1/queues/{queue}/pause",
        response_model=QueueItem,
        responses=ERRORS,
        summary="Pause or resume a queue",
    )
    async def pause_queue(
        queue: str, body: PauseQueueRequest, caller: Annotated[Caller, Depends(secret_caller)]
    ) -> JSONResponse:
        """Stop claims from the queue (running runs finish), or allow them again."""
        name = await queue_name(caller.engine, queue, body.type)
        engine = caller.engine
        info = await (
            engine.pause_queue(name) if body.action == "pause" else engine.resume_queue(name)
        )
        return wire(QueueItem.from_info(info))

    @api.post(
        "/api/v1/queues/{queue}/concurrency/override",
        response_model=QueueItem,
        responses=ERRORS,
        summary="Override a queue's concurrency limit",
    )
    async def override_queue(
        queue: str,
        body: OverrideQueueConcurrencyRequest,
        caller: Annotated[Caller, Depends(secret_caller)],
    ) -> JSONResponse:
        """Replace the queue's limit until reset (survives worker restarts)."""
        name = await queue_name(caller.engine, queue, body.type)
        info = await caller.engine.override_queue_limit(name, body.concurrency_limit)
        return wire(QueueItem.from_info(info))

    @api.post(
        "/api/v1/queues/{queue}/concurrency/reset",
        response_model=QueueItem,
        responses=ERRORS,
        summary="Reset a queue's concurrency limit",
    )
    async def reset_queue(
        queue: str,
        caller: Annotated[Caller, Depends(secret_caller)],
        body: ResetQueueConcurrencyRequest | None = None,
    ) -> JSONResponse:
        """Go back to the limit set in code."""
        name = await queue_name(caller.engine, queue, body.type if body else None)
        return wire(QueueItem.from_info(await caller.engine.reset_queue_limit(name)))

    return api
