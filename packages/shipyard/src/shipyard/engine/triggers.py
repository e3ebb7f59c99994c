"""Triggering: one run, a batch, and the durable ``*_and_wait`` forms used inside a run.

Everything a trigger needs is validated before anything is written (options, payload size,
task id and queue, the secret key that signs the handle's token, the rate limit), so a
refused trigger leaves nothing behind.

A task that no live worker of the environment has is not an error:
its run is PENDING_VERSION and starts when a worker with the task registers. What stays an
error: a task id that is not a valid id (empty, over 128 characters, NUL), and a queue name
nothing knows when the task's worker is here (with no worker for the task yet, the worker
that brings the task may bring the queue too). Children a parent waits for
(``*_and_wait``) are locked to the parent's version when that version has the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

from shipyard.durations import parse_duration_ms, resolve_time
from shipyard.engine.base import EngineBase
from shipyard.engine.options import ParsedOptions, check_text, parse_options
from shipyard.engine.scope import current_scope
from shipyard.engine.waits import durable_call
from shipyard.errors import (
    BatchTooLargeError,
    NotInRunError,
    PayloadTooLargeError,
    RateLimitedError,
    RunNotFoundError,
    RunTimeoutError,
    UnknownQueueError,
    ValidationError,
)
from shipyard.ids import new_id, new_ids
from shipyard.jsonutil import byte_size, dumps, loads
from shipyard.models.handles import BatchHandle, BatchResult, Result, RunHandle
from shipyard.models.runs import result_of
from shipyard.records import RunRecord
from shipyard.statuses import IDEMPOTENCY_RELEASE_STATUSES, RunStatus
from shipyard.store.params import (
    BatchGetParams,
    BatchInsertParams,
    BatchRunsParams,
    QueueListParams,
    RateTakeParams,
    RunGetParams,
    RunInsertBulkParams,
    RunInsertManyParams,
    RunInsertParams,
    TaskListParams,
    VersionListParams,
    WaitpointCreateParams,
)

__all__ = ["BATCH_MAX_ITEMS", "PAYLOAD_MAX_BYTES", "TriggerOps"]

PAYLOAD_MAX_BYTES = 3 * 1024 * 1024
BATCH_MAX_ITEMS = 1000
_RELEASE_STATUSES = frozenset(str(s) for s in IDEMPOTENCY_RELEASE_STATUSES)
_WAITED = ("triggerAndWait", "batchTriggerAndWait")
# How long the tasks of the environment's live workers are taken as known (seconds, monotonic):
# a worker that registers meanwhile promotes the runs triggered PENDING_VERSION in between
# (its periodic pass), so a trigger never pays a query to ask.
LIVE_TASKS_TTL_S = 1.0
# A trigger of a task the cache says no worker has reads again once the cache is this old: a
# worker that just started takes the runs at once, not after the periodic pass (~1 s later).
LIVE_TASKS_RECHECK_S = 0.05


class TriggerOps(EngineBase):
    """Creating runs."""

    async def _pending_tasks(self, task_ids: set[str]) -> set[str]:
        """Of ``task_ids`` (each checked to be a valid id), those no live worker of the
        environment has: their runs are PENDING_VERSION. Also refreshes the registered tasks
        (triggering a task this process does not define uses its registered queue and TTL)."""
        for task_id in task_ids:
            check_text(task_id, "task id", max_length=128)
        now = time.monotonic()
        refreshed = now >= self._live_tasks_until
        if not refreshed and now - self._live_tasks_read_at >= LIVE_TASKS_RECHECK_S:
            refreshed = bool(task_ids - self._live_tasks.union(*self._local_workers.values()))
        if refreshed:
            records = await self.store.version_list(
                VersionListParams(
                    environment=self.environment, since=self.now() - self.live_window_ms
                )
            )
            live: set[str] = set()
            for record in records:
                if record.live_workers:
                    live.update(loads(record.task_ids) or ())
            self._live_tasks = frozenset(live)
            self._live_tasks_read_at = time.monotonic()
            self._live_tasks_until = self._live_tasks_read_at + LIVE_TASKS_TTL_S
        served = self._live_tasks.union(*self._local_workers.values())
        unrecorded = {
            t for t in task_ids if self.definitions.task(t) is None and t not in self._registered
        }
        # A live task's record is needed now (its queue); another's at most once a second (a
        # pending run's queue is fixed when a worker with the task promotes it).
        if unrecorded and (refreshed or unrecorded & served):
            found = await self.store.task_list(TaskListParams(environment=self.environment))
            self._registered = {r.id: r for r in found}
        return task_ids - served

    def _encode_payload(self, payload: Any) -> str:
        text = dumps(payload, what="Payload")
        size = byte_size(text)
        if size > PAYLOAD_MAX_BYTES:
            raise PayloadTooLargeError(
                f"Payload is {size:,} bytes; the limit is {PAYLOAD_MAX_BYTES:,} bytes (3 MiB).",
                limit=PAYLOAD_MAX_BYTES,
                size=size,
            )
        return text

    async def _check_queues(self, names: set[str]) -> None:
        """Every queue a trigger names must be defined in code or registered by a worker."""
        local = set(self.definitions.queue_limits())
        missing = names - local
        if not missing:
            return
        registered = {
            q.name
            for q in await self.store.queue_list(QueueListParams(environment=self.environment))
        }
        still = sorted(missing - registered)
        if still:
            every = sorted(local | registered)
            raise UnknownQueueError(
                f"Unknown queue '{still[0]}': no task defines it and no worker registered it. "
                f"Known queues: {', '.join(every) if every else '(none)'}.",
                queue=still[0],
                known=every,
            )

    async def _take_rate(self, count: int) -> None:
        settings = self.settings
        if not settings.rate_limit_enabled():
            return
        wait_ms = await self.store.environment_rate_take(
            RateTakeParams(
                environment=self.environment,
                count=count,
                now=self.now(),
                bucket_size=settings.trigger_rate_bucket,
                refill_tokens=settings.trigger_rate_refill,
                refill_interval_ms=self._rate_interval_ms,
            )
        )
        if wait_ms:
            raise RateLimitedError(
                f"Trigger rate limit exceeded for environment '{self.environment}' "
                f"({settings.trigger_rate_bucket} runs, refilling {settings.trigger_rate_refill} "
                f"per {settings.trigger_rate_interval}); retry in {wait_ms} ms.",
                retry_after_ms=wait_ms,
            )

    def _insert_params(
        self,
        task_id: str,
        payload_text: str,
        opts: ParsedOptions,
        now: int,
        *,
        trigger_function: str,
        pending: bool = False,
        batch_id: str | None = None,
        batch_index: int | None = None,
    ) -> RunInsertParams:
        scope = current_scope()
        definition = self.definitions.task(task_id)
        parent_id = root_id = version = None
        depth = 0
        queued_at = now
        if scope is not None:
            parent_id = scope.ctx.run.id
            root_id = scope.ctx.run.root_id or scope.ctx.run.id
            depth = scope.ctx.run.depth + 1
            if trigger_function in _WAITED:
                # A waited-for child keeps its parent's place in line, and runs
                # on its parent's version (§2.2) if that version has the task: this process is
                # the parent's worker, so it does when it defines the task.
                queued_at = scope.queued_at or now
                if definition is not None:
                    version = scope.ctx.run.version
        registered = self._registered.get(task_id)
        # No live worker has the task: the run waits for one (a delay is waited first).
        status = RunStatus.PENDING_VERSION if pending else RunStatus.QUEUED
        delay_until: int | None = None
        if opts.debounce is not None:
            first = opts.delay if opts.delay is not None else f"{opts.debounce.delay_ms // 1000}s"
            delay_until = max(resolve_time(first, now), now + 1)
        elif opts.delay is not None:
            delay_until = resolve_time(opts.delay, now)
            if delay_until <= now:
                delay_until = None  # a time in the past means "now"
        if delay_until is not None:
            status = RunStatus.DELAYED
            queued_at = delay_until
        if opts.ttl_set:
            ttl_ms = opts.ttl_ms
        elif definition is not None and definition.ttl is not None:
            ttl_ms = parse_duration_ms(definition.ttl) or None
        elif definition is None and registered is not None and registered.ttl_ms is not None:
            ttl_ms = registered.ttl_ms or None
        else:
            ttl_ms = self._default_ttl_ms
        starts = delay_until if delay_until is not None else now
        debounce = opts.debounce
        return RunInsertParams(
            id=new_id("run"),
            environment=self.environment,
            task_id=task_id,
            status=status,
            payload=payload_text,
            queue=opts.queue
            or (definition.queue_name if definition else None)
            or (registered.queue if registered else f"task/{task_id}"),
            concurrency_key=opts.concurrency_key,
            queued_at=queued_at,
            created_at=now,
            # A run that is not delayed has been ready "since ever": a claim whose clock was
            # read a moment before this insert must still see it (and its priority).
            available_at=delay_until if delay_until is not None else 0,
            delay_until=delay_until,
            ttl_ms=ttl_ms,
            ttl_expires_at=starts + ttl_ms if ttl_ms else None,
            metadata=opts.metadata,
            tags=opts.tags,
            priority_ms=opts.priority_ms,
            max_attempts=opts.max_attempts,
            idempotency_key=opts.idempotency_key,
            idempotency_key_expires_at=(
                now + opts.idempotency_key_ttl_ms if opts.idempotency_key else None
            ),
            parent_run_id=parent_id,
            root_run_id=root_id,
            depth=depth,
            batch_id=batch_id,
            batch_index=batch_index,
            machine=opts.machine,
            max_duration_s=opts.max_duration,
            trigger_function=trigger_function,
            version=version,
            idempotency_release_statuses=_RELEASE_STATUSES,
            debounce_key=debounce.key if debounce else None,
            # Pushes land on whole seconds, so a burst of triggers moves the run at most once
            # per second.
            debounce_delay_until=((now + debounce.delay_ms) // 1000 * 1000) if debounce else None,
            debounce_trailing=debounce.trailing if debounce else False,
            debounce_max_delay_ms=debounce.max_delay_ms if debounce else None,
        )

    async def _trigger_params(
        self, task_id: str, payload: Any, options: Mapping[str, Any], trigger_function: str
    ) -> RunInsertParams:
        """Everything :meth:`trigger` checks before its insert, and the insert's params."""
        options = dict(options)
        connection = options.pop("connection", None)
        now = self.now()
        opts = parse_options(options, now)
        payload_text = self._encode_payload(payload)
        await self.start()
        pending = bool(await self._pending_tasks({task_id}))
        if opts.queue is not None and not pending:
            await self._check_queues({opts.queue})
        await self._take_rate(1)
        params = self._insert_params(
            task_id,
            payload_text,
            opts,
            self.now(),
            trigger_function=trigger_function,
            pending=pending,
        )
        params.connection = connection
        return params

    async def trigger(
        self,
        task_id: str,
        payload: Any,
        options: Mapping[str, Any],
        *,
        trigger_function: str = "trigger",
    ) -> RunHandle:
        """Create a run (or return the one its idempotency key points at).

        ``connection=`` (in ``options``) is the caller's psycopg connection: the run is
        inserted in the caller's open transaction and exists only if it commits.
        """
        # The handle's token is signed with the secret key: resolve it before writing, so a
        # missing key leaves no run behind.
        self.secret_key()
        params = await self._trigger_params(task_id, payload, options, trigger_function)
        # The store wakes workers itself when the insert commits (one NOTIFY or doorbell).
        result = await self.store.run_insert(params)
        run_id = result.run.id
        return RunHandle(
            run_id,
            task_id,
            result.cached,
            token_factory=self.lazy_public_token([f"read:runs:{run_id}"]),
        )

    async def batch_trigger(
        self,
        entries: Sequence[Mapping[str, Any]],
        options: Mapping[str, Any],
        *,
        trigger_function: str = "batchTrigger",
    ) -> BatchHandle:
        """Create one run per entry (``{"task", "payload", "options"}``) in one transaction."""
        if len(entries) > BATCH_MAX_ITEMS:
            raise BatchTooLargeError(
                f"A batch can have at most {BATCH_MAX_ITEMS:,} items; got {len(entries):,}.",
                limit=BATCH_MAX_ITEMS,
                size=len(entries),
            )
        if not entries:
            raise ValidationError("A batch needs at least one item.")
        batch_options = dict(options)
        batch_key = batch_options.pop("idempotency_key", None)
        self.secret_key()  # the batch handle's token needs it: fail before writing
        await self.start()
        # Tasks first: building a run of a task this process does not define uses the
        # registered task's queue and TTL.
        pending = await self._pending_tasks({str(entry["task"]) for entry in entries})
        now = self.now()
        batch_id = new_id("batch")
        params: list[RunInsertParams] = []
        # Items without options of their own share one parse of the batch options.
        shared = parse_options(batch_options, now) if batch_key is None else None
        if shared is not None and _uniform(entries, shared):
            return await self._batch_uniform(
                entries, shared, now, batch_id, pending, trigger_function
            )
        for index, entry in enumerate(entries):
            own = entry.get("options")
            if shared is not None and not own:
                opts = shared
            else:
                item_options = {**batch_options, **(own or {})}
                if batch_key is not None and "idempotency_key" not in item_options:
                    # A batch-level key applies to items without their own as key + index.
                    item_options["idempotency_key"] = [*_key_parts(batch_key), str(index)]
                opts = parse_options(item_options, now)
            params.append(
                self._insert_params(
                    str(entry["task"]),
                    self._encode_payload(entry.get("payload")),
                    opts,
                    now,
                    trigger_function=trigger_function,
                    pending=str(entry["task"]) in pending,
                    batch_id=batch_id,
                    batch_index=index,
                )
            )
        # A queue named for a task no worker has yet may come with that task's worker.
        named_queues = {p.queue for p in params if p.task_id not in pending} - {
            f"task/{p.task_id}" for p in params
        }
        if named_queues:
            await self._check_queues(named_queues)
        await self._take_rate(len(params))
        results = await self.store.run_insert_many(
            RunInsertManyParams(
                environment=self.environment,
                runs=params,
                batch=BatchInsertParams(
                    id=batch_id,
                    environment=self.environment,
                    idempotency_key=None,
                    created_at=now,
                ),
            )
        )
        return BatchHandle(
            batch_id=batch_id,
            run_count=len(results),
            runs=tuple(r.run.id for r in results),
            token_factory=self.lazy_public_token([f"read:batch:{batch_id}"]),
        )

    async def _batch_uniform(
        self,
        entries: Sequence[Mapping[str, Any]],
        opts: ParsedOptions,
        now: int,
        batch_id: str,
        pending: set[str],
        trigger_function: str,
    ) -> BatchHandle:
        """A batch whose items share their task and options: the runs differ only by id,
        payload and index, so one template run is built and the store inserts them from it
        (no per-run parameters, rows or records: most of a batch's Python time)."""
        task_id = str(entries[0]["task"])
        payloads = [self._encode_payload(entry.get("payload")) for entry in entries]
        is_pending = task_id in pending
        template = self._insert_params(
            task_id,
            payloads[0],
            opts,
            now,
            trigger_function=trigger_function,
            pending=is_pending,
            batch_id=batch_id,
            batch_index=0,
        )
        if not is_pending and template.queue != f"task/{task_id}":
            await self._check_queues({template.queue})
        await self._take_rate(len(payloads))
        ids = new_ids("run", len(payloads))
        await self.store.run_insert_bulk(
            RunInsertBulkParams(
                environment=self.environment,
                template=template,
                ids=ids,
                payloads=payloads,
                batch=BatchInsertParams(
                    id=batch_id, environment=self.environment, idempotency_key=None, created_at=now
                ),
            )
        )
        return BatchHandle(
            batch_id=batch_id,
            run_count=len(ids),
            runs=tuple(ids),
            token_factory=self.lazy_public_token([f"read:batch:{batch_id}"]),
        )

    # -- waiting for runs -----------------------------------------------------------------

    async def get_run(self, run_id: str) -> RunRecord:
        """A run's row by id, or :class:`RunNotFoundError`."""
        check_text(run_id, "run id")
        await self.start()
        run = await self.store.run_get(RunGetParams(environment=self.environment, run_id=run_id))
        if run is None:
            raise RunNotFoundError(
                f"Run {run_id} not found in environment '{self.environment}'.", run_id=run_id
            )
        return run

    async def wait_for_final(self, run_id: str, timeout: float | None = None) -> RunRecord:
        """Wait until the run reaches a final status; polls, woken early in process.

        ``timeout`` is real seconds (a caller's patience, not the engine's clock).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = 0.02
        while True:
            future = self._watch_finish(run_id)
            try:
                run = await self.get_run(run_id)
                if RunStatus(run.status).is_final:
                    return run
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise RunTimeoutError(
                        f"Run {run_id} did not finish within {timeout} s (status {run.status}).",
                        run_id=run_id,
                        status=run.status,
                    )
                wait = interval if remaining is None else min(interval, remaining)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(future), wait)
            finally:
                self._unwatch_finish(run_id, future)
            interval = min(interval * 1.5, 0.5)

    async def trigger_and_wait(
        self, task_id: str, payload: Any, options: Mapping[str, Any]
    ) -> Result[Any]:
        """Trigger a child run and wait for its result. Only inside a run.

        A durable call: the parent suspends (WAITING, its slot given back) until the child
        reaches a final status, so a parent and its child on one queue with limit 1 cannot
        deadlock.
        """
        scope = current_scope()
        if scope is None or scope.waits is None:
            raise NotInRunError(
                "trigger_and_wait can only be called inside a running task; "
                "use trigger() and runs.poll() elsewhere."
            )

        async def create() -> WaitpointCreateParams:
            self.secret_key()  # what a trigger requires, though no handle is signed here
            params = await self._trigger_params(task_id, payload, options, "triggerAndWait")
            child = None
            if _foldable(params):
                # The child is inserted in the transaction that records this call and
                # suspends the parent (where the worker may claim it too): one commit.
                child, target = params, params.id
            else:  # a key to resolve, tags, the caller's connection: inserted on its own
                target = (await self.store.run_insert(params)).run.id
            return WaitpointCreateParams(
                id=new_id("waitpoint"),
                environment=self.environment,
                kind="RUN",
                now=self.now(),
                target_id=target,
                run=child,
            )

        waitpoint = await durable_call(
            scope,
            f"trigger_and_wait({task_id})",
            create,
            lambda wp: {"type": "task", "run_id": wp.target_id},
            reread=False,  # the child's row is read below; the waitpoint adds nothing
        )
        assert waitpoint.target_id is not None
        # The child finished on this process's worker, in the transaction that claimed this
        # parent back (the usual case): its result is known, no read.
        found = self.take_final(waitpoint.target_id)
        return found if found is not None else result_of(await self.get_run(waitpoint.target_id))

    async def batch_trigger_and_wait(
        self, entries: Sequence[Mapping[str, Any]], options: Mapping[str, Any]
    ) -> BatchResult[Any]:
        """Trigger many child runs and wait for all; results in input order.

        A durable call: the parent suspends until every child reaches a final status.
        """
        scope = current_scope()
        if scope is None or scope.waits is None:
            raise NotInRunError("batch_trigger_and_wait can only be called inside a running task.")
        counts: dict[str, int] = {}

        async def create() -> WaitpointCreateParams:
            batch = await self.batch_trigger(
                entries, options, trigger_function="batchTriggerAndWait"
            )
            counts[batch.batch_id] = batch.run_count
            return WaitpointCreateParams(
                id=new_id("waitpoint"),
                environment=self.environment,
                kind="BATCH",
                now=self.now(),
                target_id=batch.batch_id,
            )

        tasks = sorted({str(entry["task"]) for entry in entries})
        waitpoint = await durable_call(
            scope,
            f"batch_trigger_and_wait({', '.join(tasks)}; {len(entries)} items)",
            create,
            lambda wp: {
                "type": "batch",
                "batch_id": wp.target_id,
                "run_count": counts.get(wp.target_id or "", len(entries)),
            },
            reread=False,
        )
        batch_id = waitpoint.target_id
        assert batch_id is not None
        record = await self.store.batch_get(
            BatchGetParams(environment=self.environment, batch_id=batch_id)
        )
        ordered = loads(record.run_ids) if record is not None and record.run_ids else []
        found = await self.store.batch_runs(
            BatchRunsParams(environment=self.environment, batch_id=batch_id)
        )
        by_id = {r.id: r for r in found}
        results = []
        for run_id in ordered:
            run = by_id.get(run_id)
            if run is None or not RunStatus(run.status).is_final:
                run = await self.wait_for_final(run_id)  # a cached run of another batch
            results.append(result_of(run))
        return BatchResult(id=batch_id, runs=tuple(results))


def _foldable(params: RunInsertParams) -> bool:
    """Whether a child can be inserted with the call that waits for it (a plain insert)."""
    return (
        params.connection is None
        and params.idempotency_key is None
        and params.debounce_key is None
        and not params.tags
    )


def _uniform(entries: Sequence[Mapping[str, Any]], shared: ParsedOptions) -> bool:
    """Whether every item is the same task with the batch's options, none of which needs a
    per-run resolution (an idempotency key, a debounce) or tag rows."""
    if shared.idempotency_key is not None or shared.debounce is not None or shared.tags:
        return False
    task = entries[0]["task"]
    return all(entry["task"] == task and not entry.get("options") for entry in entries)


def _key_parts(key: Any) -> list[str]:
    return [key] if isinstance(key, str) else [str(k) for k in key]
