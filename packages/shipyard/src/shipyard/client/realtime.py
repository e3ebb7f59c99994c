"""Realtime over HTTP for the remote client: run, tag and batch subscriptions and stream reads
as Server-Sent Events (``/realtime/v1/…``), and sending to input streams.

Each update is the run as ``GET /api/v3/runs/{id}`` returns it, with the change that produced
it and its position (the SSE event id). A connection that drops is opened again with
``Last-Event-ID`` set to the last event received, so nothing is lost and nothing repeated; a
subscription that ends (``event: end``) ends the iterator.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import fields
from typing import Any
from urllib.parse import quote

import httpx

from shipyard.client.convert import run_from_retrieve
from shipyard.client.transport import QueryParams, Transport
from shipyard.errors import BatchNotFoundError, RemoteEngineError, RunNotFoundError, ShipyardError
from shipyard.models.realtime import RealtimeRun, RunChange, StreamChunk
from shipyard.schemas.runs import RetrieveRunResponse

__all__ = ["RealtimeClient"]

RECONNECTS = 5
"""Consecutive failed reconnections before a subscription gives up (RemoteEngineError)."""


def _segment(value: str) -> str:
    return quote(value, safe="")


def _realtime_run(data: Any) -> RealtimeRun:
    run = run_from_retrieve(RetrieveRunResponse.model_validate(data))
    return RealtimeRun(**{f.name: getattr(run, f.name) for f in fields(run)})


async def _events(response: httpx.Response) -> AsyncIterator[tuple[str, str | None, str]]:
    """``(event, id, data)`` of each Server-Sent Event of ``response`` (comments skipped)."""
    event, event_id, data = "message", None, list[str]()
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield event, event_id, "\n".join(data)
            event, event_id, data = "message", None, list[str]()
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value


class RealtimeClient:
    """The realtime operations of :class:`~shipyard.client.RemoteClient`."""

    _http: Transport

    async def _follow(
        self,
        path: str,
        params: QueryParams,
        *,
        not_found: type[ShipyardError],
        context: dict[str, Any],
        resume: bool = True,
    ) -> AsyncIterator[tuple[str, str | None, str]]:
        """Every event of an SSE route until ``end``, reconnecting after a dropped connection
        (resuming after the last event id when ``resume``)."""
        last: str | None = None
        failures = 0
        while True:
            headers = {"last-event-id": last} if last is not None and resume else {}
            try:
                async with self._http.stream(
                    path, params=params, headers=headers, not_found=not_found, context=context
                ) as response:
                    async for event, event_id, data in _events(response):
                        failures = 0
                        if event == "end":
                            return
                        if event_id is not None:
                            last = event_id
                        yield event, event_id, data
            except (httpx.TransportError, RemoteEngineError) as exc:
                failures += 1
                if failures > RECONNECTS:
                    if isinstance(exc, RemoteEngineError):
                        raise
                    raise RemoteEngineError(
                        f"The realtime connection to {path} kept dropping ({type(exc).__name__}).",
                        url=self._http.base_url,
                    ) from None
            await asyncio.sleep(min(0.1 * 2**failures, 5.0))

    async def _changes(
        self,
        path: str,
        params: QueryParams,
        not_found: type[ShipyardError],
        context: dict[str, Any],
    ) -> AsyncIterator[RunChange | None]:
        async for event, event_id, data in self._follow(
            path, params, not_found=not_found, context=context
        ):
            if event != "update":
                continue
            body = json.loads(data)
            yield RunChange(
                run=_realtime_run(body["run"]),
                change=str(body.get("change", "status")),
                position=event_id or "",
            )

    async def subscribe_run(
        self, run_id: str, *, stop_on_completion: bool = True
    ) -> AsyncIterator[RunChange | None]:
        """A run's changes: the run as it is, then each change; ends after its final status
        when ``stop_on_completion``."""
        flag = "true" if stop_on_completion else "false"
        async for change in self._changes(
            f"/realtime/v1/runs/{_segment(run_id)}",
            [("stopOnCompletion", flag)],
            RunNotFoundError,
            {"run_id": run_id},
        ):
            yield change

    async def subscribe_tags(
        self, tags: str | Sequence[str], *, created_at: Any = "1d"
    ) -> AsyncIterator[RunChange | None]:
        """Runs with any of ``tags`` created within ``created_at``: each now, then each change
        and each new one. Never ends."""
        wanted = [tags] if isinstance(tags, str) else list(tags)
        async for change in self._changes(
            "/realtime/v1/runs",
            [("tags", ",".join(wanted)), ("createdAt", str(created_at))],
            RunNotFoundError,
            {},
        ):
            yield change

    async def subscribe_batch(self, batch_id: str) -> AsyncIterator[RunChange | None]:
        """A batch's runs: each now, then each change. Never ends."""
        async for change in self._changes(
            f"/realtime/v1/batches/{_segment(batch_id)}",
            [],
            BatchNotFoundError,
            {"batch_id": batch_id},
        ):
            yield change

    async def read_stream(
        self,
        run_id: str,
        stream_id: str = "default",
        *,
        start_index: int = 0,
        timeout_s: float = 60.0,
    ) -> AsyncIterator[StreamChunk | None]:
        """A run's stream from ``start_index``: what is stored, then each new chunk; ends
        once the run has finished and everything was read, or after ``timeout_s`` quiet."""
        params = [
            ("startIndex", str(start_index)),
            ("timeoutInSeconds", str(max(1, round(timeout_s)))),
        ]
        async for event, event_id, data in self._follow(
            f"/realtime/v1/streams/{_segment(run_id)}/{_segment(stream_id)}",
            params,
            not_found=RunNotFoundError,
            context={"run_id": run_id},
        ):
            if event == "chunk" and event_id is not None:
                yield StreamChunk(int(event_id), json.loads(data))

    async def send_input(self, run_id: str, stream_id: str, data: Any) -> bool:
        """Send ``data`` to a run's input stream; True if it resumed a waiting ``.wait()``."""
        response = await self._http.request(
            "POST",
            f"/realtime/v1/streams/{_segment(run_id)}/input/{_segment(stream_id)}",
            json={"data": data},
            not_found=RunNotFoundError,
            context={"run_id": run_id},
        )
        body = response.json()
        return bool(body.get("resumedWait")) if isinstance(body, dict) else False
