"""Triggering over HTTP, the task list and idempotency keys.

==========================================  ===================================================
``POST /api/v1/tasks/{taskId}/trigger``      one run (secret key, or a ``write:tasks:<id>``
                                             token); ``x-trigger-jwt`` reads the run
``POST /api/v1/tasks/batch``                 1–1,000 runs in one transaction (202);
                                             ``x-trigger-jwt`` reads the batch
``GET  /api/v1/tasks``                       the tasks the environment's workers registered
``POST /api/v1/idempotencyKeys/{key}/reset``  clear a key so the next trigger runs again
==========================================  ===================================================
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from shipyard.errors import ForbiddenError, RunNotFoundError
from shipyard.models.runs import to_datetime
from shipyard.schemas.batches import BatchRun, BatchTriggerRequest, BatchTriggerResponse
from shipyard.schemas.idempotency import ResetIdempotencyKeyRequest, ResetIdempotencyKeyResponse
from shipyard.schemas.runs import duration_text
from shipyard.schemas.tasks import (
    ListTasksResponse,
    TaskItem,
    TriggerTaskRequest,
    TriggerTaskResponse,
)
from shipyard.server.auth import Caller, public_caller, secret_caller
from shipyard.server.routes.common import ERRORS, PUBLIC_ERRORS, Outcome, final_keys, once
from shipyard.server.routing import JsonRoute, wire

__all__ = ["router"]

_TRIGGER_ERRORS: dict[int | str, dict[str, Any]] = {
    **PUBLIC_ERRORS,
    409: {"description": "A retried request whose first attempt still runs (retry it)."},
    413: {"description": "The body is over the limit (a payload is at most 3 MiB)."},
    429: {"description": "The environment's trigger rate limit (see Retry-After)."},
}


async def _spend(caller: Caller) -> None:
    claims = caller.claims
    if claims is None or not claims.one_time_use or claims.jti is None:
        return
    if not await caller.engine.spend_token(claims.jti, claims.expires_at):
        raise ForbiddenError(
            "This single-use trigger token has already been used; create a new one "
            "(or create it with multiple_use=True)."
        )


def router() -> APIRouter:
    """The task routes."""
    api = APIRouter(route_class=JsonRoute, tags=["tasks"])

    @api.post(
        "/api/v1/tasks/{task_id}/trigger",
        response_model=TriggerTaskResponse,
        responses=_TRIGGER_ERRORS,
        summary="Trigger a task",
    )
    async def trigger_task(
        task_id: str,
        body: TriggerTaskRequest,
        request: Request,
        caller: Annotated[Caller, Depends(public_caller)],
    ) -> JSONResponse:
        """Create a run of ``task_id`` (queued as PENDING_VERSION when no live worker has the
        task yet). ``isCached`` is true when ``options.idempotencyKey`` matched a run. A public
        access token needs ``write:tasks:<taskId>``; a single-use one works once."""
        caller.require("write", "tasks", task_id)
        payload = body.decoded_payload()
        options = final_keys(body.trigger_options())
        await _spend(caller)
        engine = caller.engine

        async def run() -> Outcome:
            handle = await engine.trigger(task_id, payload, options)
            return 200, TriggerTaskResponse(id=handle.id, is_cached=handle.is_cached).to_wire()

        return await once(
            engine, request, run, lambda answer: engine.public_token([f"read:runs:{answer['id']}"])
        )

    @api.post(
        "/api/v1/tasks/batch",
        response_model=BatchTriggerResponse,
        status_code=202,
        responses=_TRIGGER_ERRORS,
        summary="Trigger a batch",
    )
    async def batch_trigger(
        body: BatchTriggerRequest,
        request: Request,
        caller: Annotated[Caller, Depends(public_caller)],
        idempotency_key: Annotated[str | None, Header(max_length=2048)] = None,
    ) -> JSONResponse:
        """Create one run per item, in one transaction, in input order (at most 1,000 items).
        The ``idempotency-key`` header is a batch-level key (each item without its own gets
        the key plus its index). A public access token needs ``write:tasks:<id>`` for every
        task of the batch."""
        for task in dict.fromkeys(item.task for item in body.items):
            caller.require("write", "tasks", task)
        items = [{**item, "options": final_keys(item["options"])} for item in body.engine_items()]
        options = {"idempotency_key": idempotency_key} if idempotency_key else {}
        await _spend(caller)
        engine = caller.engine

        async def run() -> Outcome:
            handle = await engine.batch_trigger(items, options)
            answer = BatchTriggerResponse(
                id=handle.batch_id,
                runs=[
                    BatchRun(id=run_id, task_identifier=str(item["task"]))
                    for run_id, item in zip(handle.runs, items, strict=True)
                ],
            )
            return 202, answer.to_wire()

        return await once(
            engine,
            request,
            run,
            lambda answer: engine.public_token([f"read:batch:{answer['id']}"]),
        )

    @api.get(
        "/api/v1/tasks", response_model=ListTasksResponse, responses=ERRORS, summary="List tasks"
    )
    async def list_tasks(caller: Annotated[Caller, Depends(secret_caller)]) -> JSONResponse:
        """Every task a worker of the environment registered, by id."""
        tasks = await caller.engine.list_tasks()
        records = {r.id: r for r in await caller.engine.task_records()}
        return wire(
            ListTasksResponse(
                data=[
                    TaskItem(
                        id=t.id,
                        file_path=t.file_path,
                        queue=t.queue,
                        max_attempts=t.max_attempts,
                        max_duration=t.max_duration,
                        machine=t.machine,
                        ttl=duration_text(t.ttl_ms) if t.ttl_ms else None,
                        description=t.description,
                        payload_schema=t.payload_schema or None,
                        updated_at=to_datetime(records[t.id].updated_at if t.id in records else 0),  # type: ignore[arg-type]
                    )
                    for t in tasks
                ]
            )
        )

    @api.post(
        "/api/v1/idempotencyKeys/{key}/reset",
        response_model=ResetIdempotencyKeyResponse,
        responses=ERRORS,
        summary="Reset an idempotency key",
    )
    async def reset_idempotency_key(
        key: str,
        body: ResetIdempotencyKeyRequest,
        caller: Annotated[Caller, Depends(secret_caller)],
    ) -> JSONResponse:
        """Clear ``key`` (as stored: the SHA-256 hex the SDKs send) on the task's runs, so the
        next trigger with it creates a run. 404 when no run had it."""
        cleared = await caller.engine.reset_idempotency_key(body.task_identifier, key)
        if cleared == 0:
            raise RunNotFoundError(
                f"No run of task {body.task_identifier!r} holds idempotency key {key!r}.",
                idempotency_key=key,
            )
        return wire(ResetIdempotencyKeyResponse(id=key))

    return api
