"""Runs over HTTP: retrieve, list, cancel, replay, reschedule, metadata, tags and events.

==========================================  ===================================================
``GET  /api/v3/runs/{runId}``                the run with attempts and related runs (secret
                                             key, or a token that reads the run)
``GET  /api/v1/runs``                        one page of runs, newest first (``filter[…]``)
``POST /api/v2/runs/{runId}/cancel``         cancel (a final run is left as it is)
``POST /api/v1/runs/{runId}/replay``         a new run with the same payload and options
``POST /api/v1/runs/{runId}/reschedule``     move a DELAYED run (``{"delay": "10m"}``)
``PUT  /api/v1/runs/{runId}/metadata``       replace or change the metadata
``POST /api/v1/runs/{runId}/tags``           add tags (at most 10 in all)
``GET  /api/v1/runs/{runId}/events``         logs, spans and changes, oldest first, paged
==========================================  ===================================================
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from shipyard.engine.engine import Engine
from shipyard.engine.metadata import apply_metadata_ops
from shipyard.errors import ForbiddenError, ScheduleNotFoundError, ValidationError
from shipyard.jsonutil import loads
from shipyard.models.runs import Run
from shipyard.schemas.events import ListRunEventsResponse
from shipyard.schemas.filters import parse_run_list_query
from shipyard.schemas.metadata import UpdateMetadataRequest, UpdateMetadataResponse
from shipyard.schemas.runs import (
    AddTagsRequest,
    AddTagsResponse,
    CanceledRunResponse,
    CursorPagination,
    ListRunItem,
    ListRunsResponse,
    ReplayRunRequest,
    ReplayRunResponse,
    RescheduleRunRequest,
    RetrieveRunResponse,
    RunEnvironment,
    RunSchedule,
    ScheduleGenerator,
)
from shipyard.server.auth import Caller, public_caller, secret_caller
from shipyard.server.routes.common import ERRORS, PUBLIC_ERRORS
from shipyard.server.routing import JsonRoute, wire

__all__ = ["EVENTS_PAGE_MAX", "router"]

EVENTS_PAGE_MAX = 1000
_EVENTS_PAGE_DEFAULT = 100
_CONFLICT: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    409: {"description": "The run's status forbids the change."},
}
# Replay overrides the engine applies; the rest of ReplayRunRequest is refused by name.
_REPLAY_SUPPORTED = frozenset({"payload", "payload_type"})


# relatedRuns.children lists the newest this many children (Trigger.dev lists them all; a run
# with more is a batch fan-out, which `GET /api/v1/runs` pages through).
CHILDREN_LISTED = 100


async def run_body(caller: Caller, run: Run) -> RetrieveRunResponse:
    """The retrieve body of ``run`` with its parent, root and children."""
    engine = caller.engine
    parent = await engine.retrieve_run(run.parent_id) if run.parent_id else None
    children = (await engine.list_runs(parent_id=run.id, limit=CHILDREN_LISTED)).items
    root: Run | None = None
    if run.root_id and run.root_id != run.id:
        root = parent if parent is not None and parent.id == run.root_id else None
        root = root or await engine.retrieve_run(run.root_id)
    elif children:
        root = run  # a root run is its own root in Trigger.dev's answer once it has children
    return RetrieveRunResponse.from_run(
        run,
        root=root,
        parent=parent,
        children=children,
        schedule=await run_schedule(engine, run.schedule_id),
    )


async def run_schedule(engine: Engine, schedule_id: str | None) -> RunSchedule | None:
    """The schedule that created a run, as the run object shows it (None once deleted)."""
    if schedule_id is None:
        return None
    try:
        schedule = await engine.retrieve_schedule(schedule_id)
    except ScheduleNotFoundError:
        return None
    return RunSchedule(
        id=schedule.id,
        external_id=schedule.external_id,
        deduplication_key=schedule.deduplication_key,
        generator=ScheduleGenerator(
            expression=schedule.generator.expression,
            description=schedule.generator.description,
        ),
    )


def _events_page(request: Request) -> tuple[int, int]:
    after, size = 0, _EVENTS_PAGE_DEFAULT
    for name, value in request.query_params.multi_items():
        if name == "page[after]":
            if not value.isdigit():
                raise ValidationError(
                    f"Invalid query parameter page[after]: expected an event id; got {value!r}.",
                    param=name,
                )
            after = int(value)
        elif name == "page[size]":
            if not value.isdigit() or not 1 <= int(value) <= EVENTS_PAGE_MAX:
                raise ValidationError(
                    "Invalid query parameter page[size]: expected a whole number from 1 to "
                    f"{EVENTS_PAGE_MAX}.",
                    param=name,
                )
            size = int(value)
        else:
            raise ValidationError(
                f"Unknown query parameter {name}; accepted: page[after], page[size].", param=name
            )
    return after, size


def router() -> APIRouter:
    """The run routes."""
    api = APIRouter(route_class=JsonRoute, tags=["runs"])

    @api.get(
        "/api/v3/runs/{run_id}",
        response_model=RetrieveRunResponse,
        responses=PUBLIC_ERRORS,
        summary="Retrieve a run",
    )
    async def retrieve_run(
        run_id: str, caller: Annotated[Caller, Depends(public_caller)]
    ) -> JSONResponse:
        """The run: status, payload, output, error, metadata, attempts, parent and root. A
        public access token must name the run, one of its tags, its batch or its task (or
        grant ``read:runs``)."""
        run = await caller.engine.retrieve_run(run_id)
        if not caller.grant.read_run(run):
            raise ForbiddenError(
                f"This public access token cannot read run {run_id}: it needs read:runs:"
                f"{run_id} (or a scope naming its tag, batch or task).",
            )
        return wire(await run_body(caller, run))

    @api.get("/api/v1/runs", response_model=ListRunsResponse, responses=ERRORS, summary="List runs")
    async def list_runs(
        request: Request, caller: Annotated[Caller, Depends(secret_caller)]
    ) -> JSONResponse:
        """One page of runs, newest first. Filters: ``filter[status]``,
        ``filter[taskIdentifier]``, ``filter[tag]`` (one), ``filter[batch]``,
        ``filter[schedule]``, ``filter[createdAt][from|to|period]``; paging: ``page[size]``
        (≤ 100), ``page[after]`` (the previous page's ``pagination.next``)."""
        query = parse_run_list_query(request.query_params.multi_items())
        if len(query.tags) > 1:
            raise ValidationError(
                "Invalid query parameter filter[tag]: this server filters by one tag at a time.",
                param="filter[tag]",
            )
        engine = caller.engine
        created_from, created_to = query.created_range(engine.now())
        page = await engine.list_runs(
            statuses=query.statuses,
            task_ids=query.task_identifiers,
            tag=query.tags[0] if query.tags else None,
            batch_id=query.batch,
            schedule_id=query.schedule,
            created_from=created_from,
            created_to=created_to,
            limit=query.page.size,
            cursor=query.page.after,
        )
        env = RunEnvironment(id=engine.environment, name=engine.environment)
        return wire(
            ListRunsResponse(
                data=[ListRunItem.from_run(run, env) for run in page.items],
                pagination=CursorPagination(next=page.next_cursor),
            )
        )

    @api.post(
        "/api/v2/runs/{run_id}/cancel",
        response_model=CanceledRunResponse,
        responses=_CONFLICT,
        summary="Cancel a run",
    )
    async def cancel_run(
        run_id: str, caller: Annotated[Caller, Depends(secret_caller)]
    ) -> JSONResponse:
        """Cancel the run and its unfinished children; a finished run is left unchanged."""
        run = await caller.engine.cancel_run(run_id)
        return wire(CanceledRunResponse(id=run.id))

    @api.post(
        "/api/v1/runs/{run_id}/replay",
        response_model=ReplayRunResponse,
        responses=ERRORS,
        summary="Replay a run",
    )
    async def replay_run(
        run_id: str,
        caller: Annotated[Caller, Depends(secret_caller)],
        body: ReplayRunRequest | None = None,
    ) -> JSONResponse:
        """A new run of the same task with the same payload and options (tags, metadata,
        queue, concurrency key, machine, max attempts, max duration, TTL). ``payload`` (with
        ``payloadType``) replaces the payload; other overrides are refused by name."""
        if body is not None:
            unsupported = sorted(
                name
                for name in body.model_fields_set - _REPLAY_SUPPORTED
                if getattr(body, name) is not None
            )
            if unsupported:
                field = ReplayRunRequest.model_fields[unsupported[0]].alias or unsupported[0]
                raise ValidationError(
                    f"Replay overrides other than payload are not supported yet; remove {field}.",
                    param=field,
                )
        if body is not None and "payload" in body.model_fields_set:
            handle = await caller.engine.replay_run(run_id, payload=body.decoded_payload())
        else:
            handle = await caller.engine.replay_run(run_id)
        return wire(ReplayRunResponse(id=handle.id))

    @api.post(
        "/api/v1/runs/{run_id}/reschedule",
        response_model=RetrieveRunResponse,
        responses=ERRORS,
        summary="Reschedule a delayed run",
    )
    async def reschedule_run(
        run_id: str,
        body: RescheduleRunRequest,
        caller: Annotated[Caller, Depends(secret_caller)],
    ) -> JSONResponse:
        """Move a DELAYED run to ``delay`` from now (a duration) or to a date-time; other
        statuses are 400."""
        run = await caller.engine.reschedule_run(run_id, body.delay)
        return wire(await run_body(caller, run))

    @api.put(
        "/api/v1/runs/{run_id}/metadata",
        response_model=UpdateMetadataResponse,
        responses=ERRORS,
        summary="Update a run's metadata",
    )
    async def update_metadata(
        run_id: str,
        body: UpdateMetadataRequest,
        caller: Annotated[Caller, Depends(secret_caller)],
    ) -> JSONResponse:
        """Replace the metadata (``metadata``) and/or apply ``operations`` (set, delete,
        append, remove, increment, update), atomically; ``parentOperations`` and
        ``rootOperations`` change the run's parent and root. Answers the run's metadata."""
        engine = caller.engine
        run = await engine.get_run(run_id)
        ops = body.metadata_ops()
        text = await apply_metadata_ops(engine, run.id, ops) if ops else run.metadata
        parent_ops, root_ops = body.parent_ops(), body.root_ops()
        if parent_ops and run.parent_run_id:
            await apply_metadata_ops(engine, run.parent_run_id, parent_ops)
        if root_ops:
            await apply_metadata_ops(engine, run.root_run_id or run.id, root_ops)
            if not run.root_run_id:
                text = (await engine.get_run(run.id)).metadata
        metadata = loads(text) or {}
        return wire(UpdateMetadataResponse(metadata=metadata))

    @api.post(
        "/api/v1/runs/{run_id}/tags",
        response_model=AddTagsResponse,
        responses=ERRORS,
        summary="Add tags to a run",
    )
    async def add_tags(
        run_id: str,
        body: AddTagsRequest,
        caller: Annotated[Caller, Depends(secret_caller)],
    ) -> JSONResponse:
        """Add tags (a run has at most 10; extra ones are ignored)."""
        tags = await caller.engine.add_tags(run_id, body.tags)
        return wire(AddTagsResponse(message=f"The run has {len(tags)} tags: {', '.join(tags)}."))

    @api.get(
        "/api/v1/runs/{run_id}/events",
        response_model=ListRunEventsResponse,
        responses=ERRORS,
        summary="List a run's events",
    )
    async def run_events(
        run_id: str, request: Request, caller: Annotated[Caller, Depends(secret_caller)]
    ) -> JSONResponse:
        """The run's logs, spans and status, tag and metadata changes, oldest first, from
        ``page[after]`` (an event id; the previous page's ``pagination.next``); ``page[size]``
        up to 1,000 (100 by default)."""
        after, size = _events_page(request)
        records = await caller.engine.run_event_records(run_id, after_id=after, limit=size + 1)
        return wire(ListRunEventsResponse.from_records(records, page_size=size))

    return api
