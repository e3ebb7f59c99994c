"""The runs API: retrieve, list, cancel, reschedule, replay, poll and subscribe to runs.

Example::

    run = await runs.retrieve(handle.id)
    if run.is_completed: print(run.output)
    async for run in runs.list(status=["FAILED"], task_identifier="send-email"):
        ...
    await runs.cancel(handle.id)
    async for run in runs.subscribe_to_run(handle.id):   # ends when the run finishes
        print(run.status, run.metadata.get("progress"))
"""

from __future__ import annotations

import asyncio
import builtins
import datetime
from collections.abc import AsyncIterator, Sequence
from typing import Any

from shipyard.errors import RunTimeoutError
from shipyard.models.handles import BatchHandle, RunHandle
from shipyard.models.realtime import RealtimeRun
from shipyard.models.runs import Run, RunEvent
from shipyard.sdk.backend import current_backend
from shipyard.sdk.pages import epoch_ms, every_item

__all__ = ["runs"]


def _run_id(run: str | RunHandle | Run) -> str:
    return run if isinstance(run, str) else run.id


class _Runs:
    """Retrieve, list, cancel, reschedule, replay and poll runs."""

    async def retrieve(self, run: str | RunHandle | Run) -> Run:
        """The full run, with payload, output, error and attempts."""
        return await current_backend().retrieve_run(_run_id(run))

    async def list(
        self,
        *,
        status: str | Sequence[str] | None = None,
        task_identifier: str | Sequence[str] | None = None,
        tag: str | None = None,
        batch: str | None = None,
        from_: datetime.datetime | int | None = None,
        to: datetime.datetime | int | None = None,
        limit: int = 50,
        schedule: str | None = None,
    ) -> AsyncIterator[Run]:
        """Runs newest first, fetched ``limit`` at a time as you iterate.

        ``from_``/``to`` bound ``created_at`` (datetime or epoch ms); ``schedule`` keeps the
        runs a schedule created (its id).
        """
        engine = current_backend()
        statuses = [status] if isinstance(status, str) else list(status or [])
        task_ids = [task_identifier] if isinstance(task_identifier, str) else task_identifier
        async for item in every_item(
            lambda cursor: engine.list_runs(
                statuses=statuses,
                task_ids=list(task_ids or []),
                tag=tag,
                batch_id=batch,
                created_from=epoch_ms(from_),
                created_to=epoch_ms(to),
                limit=limit,
                cursor=cursor,
                schedule_id=schedule,
            )
        ):
            yield item

    async def events(
        self, run: str | RunHandle | Run, *, after_id: int = 0, limit: int = 1000
    ) -> builtins.list[RunEvent]:
        """A run's logs, spans, metadata, tag and status changes after ``after_id``, in order."""
        return await current_backend().run_events(_run_id(run), after_id=after_id, limit=limit)

    async def cancel(self, run: str | RunHandle | Run) -> Run:
        """Cancel a run and its non-final children (an executing attempt gets on_cancel)."""
        return await current_backend().cancel_run(_run_id(run))

    async def reschedule(self, run: str | RunHandle | Run, *, delay: Any) -> Run:
        """Move a DELAYED run to ``delay`` (duration from now, datetime or ISO string)."""
        return await current_backend().reschedule_run(_run_id(run), delay)

    async def replay(self, run: str | RunHandle | Run, *, payload: Any = ...) -> RunHandle:
        """A new run of the same task with the same payload (or ``payload``), tags, metadata,
        queue, concurrency key, machine, max attempts, max duration and TTL."""
        return await current_backend().replay_run(_run_id(run), payload=payload)

    async def poll(
        self, run: str | RunHandle | Run, *, poll_interval_ms: int = 1000, max_attempts: int = 500
    ) -> Run:
        """Poll until the run is finished (at most ``max_attempts`` polls)."""
        for _ in range(max_attempts):
            current = await self.retrieve(run)
            if current.is_completed:
                return current
            await asyncio.sleep(poll_interval_ms / 1000)
        raise RunTimeoutError(
            f"Run {_run_id(run)} was not finished after {max_attempts} polls.",
            run_id=_run_id(run),
        )

    # -- realtime -----------------------------------------------------------------------------

    async def subscribe_to_run(
        self, run: str | RunHandle | Run, *, stop_on_completion: bool = True
    ) -> AsyncIterator[RealtimeRun]:
        """The run now, then again at each change of its status, metadata or tags.

        Every status change is delivered, in order; metadata changes made close together (one
        flush interval) may arrive as one. Ends after the run's final status (canceled too)
        unless ``stop_on_completion=False``. ``is_completed`` on what it yields has the
        realtime meaning: COMPLETED or failed, not CANCELED.

        Example::

            async for run in runs.subscribe_to_run(handle):
                print(run.status, run.metadata.get("progress"))
        """
        backend = current_backend()
        async for change in backend.subscribe_run(
            _run_id(run), stop_on_completion=stop_on_completion
        ):
            if change is not None:
                yield change.run

    async def subscribe_to_runs_with_tag(
        self, tag: str | Sequence[str], *, created_at: str | int = "1d"
    ) -> AsyncIterator[RealtimeRun]:
        """Runs having the tag (any of several) created within ``created_at`` (at most
        "7d"): each as it is now (the newest 1,000), then at each change, and every new one.
        Never ends: ``break`` out of the loop.
        """
        async for change in current_backend().subscribe_tags(tag, created_at=created_at):
            if change is not None:
                yield change.run

    async def subscribe_to_batch(self, batch: str | BatchHandle) -> AsyncIterator[RealtimeRun]:
        """A batch's runs, each as it is now and then at each change. Never ends: ``break``
        out of the loop (e.g. once every run ``is_completed``)."""
        batch_id = batch if isinstance(batch, str) else batch.batch_id
        async for change in current_backend().subscribe_batch(batch_id):
            if change is not None:
                yield change.run


runs = _Runs()
