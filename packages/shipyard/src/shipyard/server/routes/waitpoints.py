"""Wait tokens over HTTP.

=====================================================  ========================================
``POST /api/v1/waitpoints/tokens``                      create (``x-trigger-jwt`` completes it)
``GET  /api/v1/waitpoints/tokens``                      one page, newest first (``filter[…]``)
``GET  /api/v1/waitpoints/tokens/{id}``                 one token, its output as JSON text
``POST /api/v1/waitpoints/tokens/{id}/complete``        ``{"data": …}``; again keeps the first
``POST /api/v1/waitpoints/tokens/{id}/callback/{sig}``  the signed URL: any JSON completes it
=====================================================  ========================================

A public access token may retrieve and complete the token it names (``write:waitpoints:<id>``,
what the creation's ``x-trigger-jwt`` grants; ``read:waitpoints:<id>`` reads only). The
callback URL is its own credential (an HMAC of the id under the environment's signing key).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from shipyard.engine.engine import Engine
from shipyard.engine.waitpoints import TOKEN_PAT_TTL_S
from shipyard.errors import AuthenticationError, ValidationError
from shipyard.jsonutil import MAX_JSON_DEPTH, loads
from shipyard.schemas.filters import parse_token_list_query
from shipyard.schemas.runs import CursorPagination
from shipyard.schemas.tokens import (
    CompleteWaitpointTokenRequest,
    CompleteWaitpointTokenResponse,
    CreateWaitpointTokenRequest,
    CreateWaitpointTokenResponse,
    ListWaitpointTokensResponse,
    RetrieveWaitpointTokenResponse,
    WaitpointTokenItem,
)
from shipyard.server.auth import Caller, Gatekeeper, public_caller, secret_caller
from shipyard.server.routes.common import ERRORS, PUBLIC_ERRORS, Outcome, final_keys, once
from shipyard.server.routing import JsonRoute, wire

__all__ = ["router"]


def _require_token(caller: Caller, token_id: str, *, write: bool) -> None:
    if write or not caller.allows("read", "waitpoints", token_id):
        caller.require("write", "waitpoints", token_id)


async def _callback_engine(gate: Gatekeeper, token_id: str, signature: str) -> Engine | None:
    """The engine whose signing key made ``signature``: the server's own environment first,
    then every environment that has keys."""
    if gate.engine.token_signature_valid(token_id, signature):
        return gate.engine
    for environment in dict.fromkeys(k.environment for k in await gate.engine.list_keys()):
        engine = await gate.engine_for(environment)
        if engine is not None and engine.token_signature_valid(token_id, signature):
            return engine
    return None


def router() -> APIRouter:
    """The wait token routes."""
    api = APIRouter(route_class=JsonRoute, tags=["waitpoints"])

    @api.post(
        "/api/v1/waitpoints/tokens",
        response_model=CreateWaitpointTokenResponse,
        responses=ERRORS,
        summary="Create a wait token",
    )
    async def create_token(
        request: Request,
        caller: Annotated[Caller, Depends(secret_caller)],
        body: CreateWaitpointTokenRequest | None = None,
    ) -> JSONResponse:
        """A token a run can wait on (``timeout``: a duration or date-time; none waits until
        completed). A live token with the same ``idempotencyKey`` is returned instead
        (``isCached``). ``url`` completes it without other credentials; ``x-trigger-jwt`` is
        a public access token (24 h) that can complete it."""
        options = final_keys(body.token_options()) if body else {}
        engine = caller.engine

        async def run() -> Outcome:
            token = await engine.create_token(**options)
            answer = CreateWaitpointTokenResponse(
                id=token.id, is_cached=token.is_cached, url=token.url
            )
            return 200, answer.to_wire()

        return await once(
            engine,
            request,
            run,
            lambda answer: engine.public_token(
                [f"write:waitpoints:{answer['id']}"], TOKEN_PAT_TTL_S
            ),
        )

    @api.get(
        "/api/v1/waitpoints/tokens",
        response_model=ListWaitpointTokensResponse,
        responses=ERRORS,
        summary="List wait tokens",
    )
    async def list_tokens(
        request: Request, caller: Annotated[Caller, Depends(secret_caller)]
    ) -> JSONResponse:
        """One page of tokens, newest first, without outputs. Filters: ``filter[status]``
        (WAITING, COMPLETED, TIMED_OUT), ``filter[tags]`` (all of them),
        ``filter[idempotencyKey]``, ``filter[createdAt][from|to|period]``; ``page[size]``,
        ``page[after]``."""
        query = parse_token_list_query(request.query_params.multi_items())
        if query.page.before is not None:
            raise ValidationError(
                "Invalid query parameter page[before]: page forward with page[after].",
                param="page[before]",
            )
        engine = caller.engine
        created_from, created_to = query.created_range(engine.now())
        page = await engine.list_tokens(
            statuses=query.statuses,
            tags=query.tags,
            idempotency_key=query.idempotency_key,
            created_from=created_from,
            created_to=created_to,
            limit=query.page.size,
            cursor=query.page.after,
        )
        return wire(
            ListWaitpointTokensResponse(
                data=[WaitpointTokenItem.from_info(t) for t in page.items],
                pagination=CursorPagination(next=page.next_cursor),
            )
        )

    @api.get(
        "/api/v1/waitpoints/tokens/{token_id}",
        response_model=RetrieveWaitpointTokenResponse,
        responses=PUBLIC_ERRORS,
        summary="Retrieve a wait token",
    )
    async def retrieve_token(
        token_id: str, caller: Annotated[Caller, Depends(public_caller)]
    ) -> JSONResponse:
        """The token's status, times, tags and (once completed) its output as JSON text."""
        _require_token(caller, token_id, write=False)
        info = await caller.engine.retrieve_token(token_id)
        return wire(RetrieveWaitpointTokenResponse.from_info(info))

    @api.post(
        "/api/v1/waitpoints/tokens/{token_id}/complete",
        response_model=CompleteWaitpointTokenResponse,
        responses={**PUBLIC_ERRORS, 422: {"description": "A key other than data."}},
        summary="Complete a wait token",
    )
    async def complete_token(
        token_id: str,
        caller: Annotated[Caller, Depends(public_caller)],
        body: CompleteWaitpointTokenRequest | None = None,
    ) -> JSONResponse:
        """Complete the token with ``data`` (the body must be ``{"data": …}``; ``output`` is
        422). Completing it again answers the same and keeps the first data."""
        _require_token(caller, token_id, write=True)
        await caller.engine.complete_token(token_id, body.data if body else None)
        return wire(CompleteWaitpointTokenResponse())

    @api.post(
        "/api/v1/waitpoints/tokens/{token_id}/callback/{signature}",
        response_model=CompleteWaitpointTokenResponse,
        responses={
            400: ERRORS[400],
            401: {"description": "The signature is not this token's."},
            404: ERRORS[404],
        },
        summary="Complete a wait token through its signed URL",
    )
    async def token_callback(token_id: str, signature: str, request: Request) -> Any:
        """Complete a token with the POSTed JSON (``{}`` when the body is empty). The URL is
        the credential: a wrong signature is 401 and changes nothing."""
        engine = await _callback_engine(request.app.state.gatekeeper, token_id, signature)
        if engine is None:
            raise AuthenticationError("Invalid callback signature for this wait token.")
        body = await request.body()
        data: Any = (
            loads(body, max_depth=MAX_JSON_DEPTH, what="The request body") if body.strip() else {}
        )
        await engine.complete_token(token_id, data)
        return wire(CompleteWaitpointTokenResponse())

    return api
