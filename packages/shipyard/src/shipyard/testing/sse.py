"""A small Server-Sent Events reader over httpx, for tests and benchmarks of the realtime
routes (``server/realtime.py``): events as they arrive, comments (heartbeats) included.

Example::

    async with httpx.AsyncClient(base_url=url) as client:
        async for event in sse_events(client, "/realtime/v1/runs/run_1", token=key):
            print(event.event, event.id, event.json())
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["SseEvent", "parse_sse", "sse_events"]


@dataclass(slots=True)
class SseEvent:
    """One event (``event`` defaults to "message"), or a comment (``comment`` set)."""

    event: str = "message"
    id: str | None = None
    data: str = ""
    comment: str | None = None
    fields: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """``data`` decoded as JSON."""
        return json.loads(self.data)


async def parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[SseEvent]:
    """Events from the lines of a ``text/event-stream`` body."""
    current = SseEvent()
    data: list[str] = []
    async for line in lines:
        if line == "":
            if data or current.id is not None or current.event != "message":
                current.data = "\n".join(data)
                yield current
            current, data = SseEvent(), []
            continue
        if line.startswith(":"):
            yield SseEvent(event="", comment=line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            current.event = value
        elif name == "id":
            current.id = value
        else:
            current.fields[name] = value


async def sse_events(
    client: httpx.AsyncClient,
    path: str,
    *,
    token: str | None = None,
    last_event_id: str | None = None,
    params: dict[str, str] | None = None,
) -> AsyncIterator[SseEvent]:
    """GET ``path`` as an event stream (``Authorization: Bearer token`` when given) and
    yield its events until the server ends it; ``httpx.HTTPStatusError`` on an error status
    (its body read)."""
    headers = {"Accept": "text/event-stream"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with client.stream("GET", path, headers=headers, params=params, timeout=None) as resp:
        if resp.status_code != 200:
            await resp.aread()
            resp.raise_for_status()
        async for event in parse_sse(resp.aiter_lines()):
            yield event
