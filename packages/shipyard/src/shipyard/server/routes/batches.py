"""Batches over HTTP: ``GET /api/v1/batches/{batchId}`` (and ``/api/v2/…``, where the official
SDK asks): the batch's status and its run ids in input order. A public access token needs
``read:batch:<id>`` (the batch's handle token has it) or ``read:runs``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from shipyard.errors import ForbiddenError
from shipyard.schemas.batches import BatchProcessing, RetrieveBatchResponse
from shipyard.server.auth import Caller, public_caller
from shipyard.server.routes.common import PUBLIC_ERRORS
from shipyard.server.routing import JsonRoute, wire

__all__ = ["router"]


def router() -> APIRouter:
    """The batch routes."""
    api = APIRouter(route_class=JsonRoute, tags=["batches"])

    async def retrieve(batch_id: str, caller: Caller) -> JSONResponse:
        if not caller.grant.read_batch(batch_id):
            raise ForbiddenError(
                f"This public access token cannot read batch {batch_id}: it needs "
                f"read:batch:{batch_id}."
            )
        batch = await caller.engine.retrieve_batch(batch_id)
        status = batch.status if batch.status in ("PENDING", "PROCESSING") else "COMPLETED"
        return wire(
            RetrieveBatchResponse(
                id=batch.id,
                status=status,  # type: ignore[arg-type]
                created_at=batch.created_at,
                updated_at=batch.completed_at or batch.created_at,
                run_count=batch.run_count,
                runs=list(batch.runs),
                processing=BatchProcessing(completed_at=batch.completed_at),
            )
        )

    @api.get(
        "/api/v1/batches/{batch_id}",
        response_model=RetrieveBatchResponse,
        responses=PUBLIC_ERRORS,
        summary="Retrieve a batch",
    )
    async def retrieve_batch(
        batch_id: str, caller: Annotated[Caller, Depends(public_caller)]
    ) -> JSONResponse:
        """The batch: status (COMPLETED once its runs exist), run count and run ids."""
        return await retrieve(batch_id, caller)

    @api.get(
        "/api/v2/batches/{batch_id}",
        response_model=RetrieveBatchResponse,
        responses=PUBLIC_ERRORS,
        summary="Retrieve a batch (the official SDK's path)",
    )
    async def retrieve_batch_v2(
        batch_id: str, caller: Annotated[Caller, Depends(public_caller)]
    ) -> JSONResponse:
        """The same as ``GET /api/v1/batches/{batchId}``."""
        return await retrieve(batch_id, caller)

    return api
