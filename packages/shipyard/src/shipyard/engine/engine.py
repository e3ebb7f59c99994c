"""The engine: domain operations over a store — trigger, batch, wait, cancel, replay.

The public API (``my_task.trigger``, ``runs.cancel`` …), the worker, the CLI and the HTTP
server all go through one :class:`Engine`; none of them talks to the store directly for a
domain decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shipyard.config import Settings
from shipyard.durations import parse_duration_ms, resolve_time
from shipyard.engine.options import TriggerOptions, parse_options
from shipyard.engine.runs import FINAL_STATUSES, IDEMPOTENCY_RELEASE_STATUSES, RunStatus
from shipyard.engine.waits import durable_call
from shipyard.errors import (
    BatchTooLargeError,
    NotInRunError,
    PayloadTooLargeError,
    RateLimitedError,
    RunNotFoundError,
    RunTimeoutError,
    TooManyTagsError,
    UnknownQueueError,
    UnknownTaskError,
    ValidationError,
    WaitpointNotFoundError,
)
from shipyard.ids import new_id
from shipyard.jsonutil import byte_size, dumps, loads
from shipyard.records import RunRecord, TaskRecord, WaitpointRecord
from shipyard.sdk.context import current_scope
from shipyard.sdk.handles import BatchHandle, BatchResult, Result, RunHandle, TaskRunError
from shipyard.sdk.task import TaskRegistry, registry
from shipyard.store import Store, open_store
from shipyard.store.protocol import (
    BatchGetParams,
    BatchInsertParams,
    BatchRunsParams,
    MigrateParams,
    QueueListParams,
    RateTakeParams,
    ReadyNotifyParams,
    RunCancelParams,
    RunGetParams,
    RunInsertManyParams,
    RunInsertParams,
    RunRescheduleParams,
    TaskListParams,
    WaitpointCompleteParams,
    WaitpointCreateParams,
    WaitpointGetParams,
)

PAYLOAD_MAX_BYTES = 3 * 1024 * 1024
OUTPUT_MAX_BYTES = 10 * 1024 * 1024
BATCH_MAX_ITEMS = 1000
TOKEN_MAX_TAGS = 10
HANDLE_TOKEN_TTL_S = 3600
_RELEASE_STATUSES = frozenset(str(s) for s in IDEMPOTENCY_RELEASE_STATUSES)


def wall_ms() -> int:
    """The real clock, in epoch milliseconds."""
    return int(time.time() * 1000)


class Engine:
    """Domain operations for one environment over one store.

    Example::

        engine = Engine(load_settings())
        await engine.start()
        handle = await engine.trigger("send-email", {"to": "a@b.c"}, {})
    """

    def __init__(
        self,
        settings: Settings,
        store: Store | None = None,
        *,
        clock: Callable[[], int] = wall_ms,
        tasks: TaskRegistry = registry,
    ) -> None:
        self.settings = settings
        self.environment = settings.environment
        self.store: Store = store or open_store(settings)
        self.clock = clock
        self.tasks = tasks
        self._started = False
        self._start_lock = asyncio.Lock()
        self._registered: dict[str, TaskRecord] = {}
        # Parsed once: both are read on every trigger.
        self._default_ttl_ms = settings.default_ttl_ms()
        self._rate_interval_ms = parse_duration_ms(settings.trigger_rate_interval)
        self._secret: str | None = None
        self._finish_waiters: dict[str, list[asyncio.Future[None]]] = {}

    async def start(self) -> None:
        """Apply pending migrations (once per engine)."""
        if self._started:
            return
        async with self._start_lock:
            if not self._started:
                await self.store.migrate(MigrateParams(now=self.clock()))
                self._started = True

    async def close(self) -> None:
        """Close the store."""
        await self.store.close()

    # -- triggering -----------------------------------------------------------------------

    async def _check_known(self, task_ids: set[str]) -> None:
        """Every task must be defined here or registered by a worker (whose record is kept:
        triggering by id uses the registered task's queue and TTL)."""
        missing = {t for t in task_ids if self.tasks.get(t) is None}
        if not missing or missing <= self._registered.keys():
            return
        records = await self.store.task_list(TaskListParams(self.environment))
        self._registered = {r.id: r for r in records}
        still = sorted(missing - self._registered.keys())
        if still:
            every = sorted(set(self._registered) | set(self.tasks.ids()))
            raise UnknownTaskError(
                f"Unknown task '{still[0]}' in environment '{self.environment}': no worker has "
                f"registered it and this process does not define it. Known tasks: "
                f"{', '.join(every) if every else '(none yet: start a worker)'}.",
                task_id=still[0],
                known=every,
            )

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
        from shipyard.sdk.queues import queue_registry

        local = {q.name for q in queue_registry.all()} | {t.queue_name for t in self.tasks.all()}
        missing = names - local
        if not missing:
            return
        registered = {
            q.name for q in await self.store.queue_list(QueueListParams(self.environment))
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
                now=self.clock(),
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
        opts: TriggerOptions,
        now: int,
        *,
        trigger_function: str,
        batch_id: str | None = None,
        batch_index: int | None = None,
    ) -> RunInsertParams:
        scope = current_scope()
        parent_id = root_id = None
        depth = 0
        queued_at = now
        if scope is not None:
            parent_id = scope.ctx.run.id
            root_id = scope.ctx.run.root_id or scope.ctx.run.id
            depth = scope.ctx.run.depth + 1
            if trigger_function in ("triggerAndWait", "batchTriggerAndWait"):
                # A waited-for child keeps its parent's place in line (SEMANTICS §6).
                queued_at = scope.queued_at or now
        definition = self.tasks.get(task_id)
        registered = self._registered.get(task_id)
        status = RunStatus.QUEUED
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
            idempotency_release_statuses=_RELEASE_STATUSES,
            debounce_key=debounce.key if debounce else None,
            # Pushes land on whole seconds, so a burst of triggers moves the run at most once
            # per second.
            debounce_delay_until=((now + debounce.delay_ms) // 1000 * 1000) if debounce else None,
            debounce_trailing=debounce.trailing if debounce else False,
            debounce_max_delay_ms=debounce.max_delay_ms if debounce else None,
        )

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
        options = dict(options)
        connection = options.pop("connection", None)
        opts = parse_options(options)
        payload_text = self._encode_payload(payload)
        await self.start()
        await self._check_known({task_id})
        if opts.queue is not None:
            await self._check_queues({opts.queue})
        await self._take_rate(1)
        params = self._insert_params(
            task_id, payload_text, opts, self.clock(), trigger_function=trigger_function
        )
        # The store wakes workers itself when the insert commits (one NOTIFY or doorbell).
        params.connection = connection
        result = await self.store.run_insert(params)
        # Signing a JWT costs more than the insert: the handle signs on first read, with the
        # claims (and secret) fixed now, so the token is the same as if signed here.
        secret = self._secret_key()
        run_id = result.run.id
        issued = int(time.time())
        return RunHandle(
            run_id,
            task_id,
            result.cached,
            token_factory=lambda: _sign(
                self.environment, [f"read:runs:{run_id}"], issued, HANDLE_TOKEN_TTL_S, secret
            ),
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
        await self.start()
        # Known tasks first: building a run of a task this process does not define uses the
        # registered task's queue and TTL.
        await self._check_known({str(entry["task"]) for entry in entries})
        now = self.clock()
        batch_id = new_id("batch")
        params: list[RunInsertParams] = []
        # Items without options of their own share one parse of the batch options.
        shared = parse_options(batch_options) if batch_key is None else None
        for index, entry in enumerate(entries):
            own = entry.get("options")
            if shared is not None and not own:
                opts = shared
            else:
                item_options = {**batch_options, **(own or {})}
                if batch_key is not None and "idempotency_key" not in item_options:
                    # A batch-level key applies to items without their own as key + index.
                    item_options["idempotency_key"] = [*_key_parts(batch_key), str(index)]
                opts = parse_options(item_options)
            params.append(
                self._insert_params(
                    str(entry["task"]),
                    self._encode_payload(entry.get("payload")),
                    opts,
                    now,
                    trigger_function=trigger_function,
                    batch_id=batch_id,
                    batch_index=index,
                )
            )
        named_queues = {p.queue for p in params} - {f"task/{p.task_id}" for p in params}
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
            public_access_token=self.public_token([f"read:batch:{batch_id}"]),
        )

    # -- waiting for runs -----------------------------------------------------------------

    def run_finished(self, run_ids: Sequence[str]) -> None:
        """Wake in-process waiters of these runs (called by a worker after finishing them)."""
        for run_id in run_ids:
            for future in self._finish_waiters.pop(run_id, []):
                if not future.done():
                    future.get_loop().call_soon_threadsafe(_resolve, future)

    async def wait_for_final(self, run_id: str, timeout: float | None = None) -> RunRecord:
        """Wait until the run reaches a final status; poll, woken early in process."""
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = 0.02
        while True:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._finish_waiters.setdefault(run_id, []).append(future)
            run = await self.store.run_get(RunGetParams(self.environment, run_id))
            if run is None:
                raise RunNotFoundError(f"Run {run_id} not found.", run_id=run_id)
            if RunStatus(run.status).is_final:
                return run
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise RunTimeoutError(
                    f"Run {run_id} did not finish within {timeout} s (status {run.status}).",
                    run_id=run_id,
                )
            wait = interval if remaining is None else min(interval, remaining)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(future), wait)
            interval = min(interval * 1.5, 0.5)

    async def trigger_and_wait(
        self, task_id: str, payload: Any, options: Mapping[str, Any]
    ) -> Result:
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
            handle = await self.trigger(
                task_id, payload, options, trigger_function="triggerAndWait"
            )
            return WaitpointCreateParams(
                id=new_id("waitpoint"),
                environment=self.environment,
                kind="RUN",
                now=self.clock(),
                target_id=handle.id,
            )

        waitpoint = await durable_call(
            scope,
            f"trigger_and_wait({task_id})",
            create,
            lambda wp: {"type": "task", "run_id": wp.target_id},
        )
        assert waitpoint.target_id is not None
        return result_of(await self.get_run(waitpoint.target_id))

    async def batch_trigger_and_wait(
        self, entries: Sequence[Mapping[str, Any]], options: Mapping[str, Any]
    ) -> BatchResult:
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
                now=self.clock(),
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
        )
        batch_id = waitpoint.target_id
        assert batch_id is not None
        record = await self.store.batch_get(BatchGetParams(self.environment, batch_id))
        ordered = loads(record.run_ids) if record is not None and record.run_ids else []
        by_id = {
            r.id: r
            for r in await self.store.batch_runs(BatchRunsParams(self.environment, batch_id))
        }
        results = []
        for run_id in ordered:
            run = by_id.get(run_id)
            if run is None or not RunStatus(run.status).is_final:
                run = await self.wait_for_final(run_id)  # a cached run of another batch
            results.append(result_of(run))
        return BatchResult(id=batch_id, runs=tuple(results))

    # -- managing runs --------------------------------------------------------------------

    async def get_run(self, run_id: str) -> RunRecord:
        """A run by id, or :class:`RunNotFoundError`."""
        await self.start()
        run = await self.store.run_get(RunGetParams(self.environment, run_id))
        if run is None:
            raise RunNotFoundError(
                f"Run {run_id} not found in environment '{self.environment}'.", run_id=run_id
            )
        return run

    async def cancel(self, run_id: str) -> RunRecord:
        """Cancel a run and its non-final children. A final run is returned unchanged."""
        run = await self.get_run(run_id)
        if RunStatus(run.status).is_final:
            return run
        canceled = await self.store.run_cancel(
            RunCancelParams(
                environment=self.environment,
                run_id=run_id,
                now=self.clock(),
                final_statuses=frozenset(str(s) for s in FINAL_STATUSES),
                error=dumps(
                    {"name": "TaskRunCanceled", "message": "The run was canceled.", "stack": ""}
                ),
            )
        )
        # Executing workers notice on their next ownership check; ring so it is soon.
        await self.store.ready_notify(ReadyNotifyParams(self.environment, self.clock()))
        self.run_finished(canceled)
        return await self.get_run(run_id)

    async def reschedule(self, run_id: str, delay: Any) -> RunRecord:
        """Move a DELAYED run to a new time (a duration from now, a datetime or ISO string)."""
        run = await self.get_run(run_id)
        if run.status != RunStatus.DELAYED:
            raise ValidationError(
                f"Only DELAYED runs can be rescheduled; run {run_id} is {run.status}.",
                run_id=run_id,
                status=run.status,
            )
        now = self.clock()
        updated = await self.store.run_reschedule(
            RunRescheduleParams(
                environment=self.environment,
                run_id=run_id,
                delay_until=max(resolve_time(delay, now), now),
                now=now,
            )
        )
        if updated is None:
            current = await self.get_run(run_id)
            raise ValidationError(
                f"Only DELAYED runs can be rescheduled; run {run_id} is {current.status}.",
                run_id=run_id,
                status=current.status,
            )
        return updated

    async def replay(self, run_id: str) -> RunHandle:
        """A new run of the same task with the same payload, tags and options."""
        run = await self.get_run(run_id)
        options: dict[str, Any] = {"tags": loads(run.tags)}
        if run.machine:
            options["machine"] = run.machine
        if run.max_duration_s:
            options["max_duration"] = run.max_duration_s
        return await self.trigger(run.task_id, loads(run.payload), options)

    # -- wait tokens ----------------------------------------------------------------------

    def token_signature(self, waitpoint_id: str) -> str:
        """HMAC-SHA256 of a token id under the environment's secret key (hex)."""
        secret = self._secret_key().encode()
        return hmac.new(secret, waitpoint_id.encode(), hashlib.sha256).hexdigest()

    def token_url(self, waitpoint_id: str) -> str:
        """The signed callback URL that completes a token with the POSTed JSON."""
        origin = f"http://{self.settings.server_host}:{self.settings.server_port}"
        return (
            f"{origin}/api/v1/waitpoints/tokens/{waitpoint_id}/callback/"
            f"{self.token_signature(waitpoint_id)}"
        )

    async def create_token(
        self,
        *,
        timeout: Any = None,
        idempotency_key: str | None = None,
        idempotency_key_ttl: str | int | None = None,
        tags: Sequence[str] | str | None = None,
    ) -> tuple[WaitpointRecord, bool]:
        """Create a wait token (or return the live one holding ``idempotency_key``)."""
        tag_list = [tags] if isinstance(tags, str) else list(tags or [])
        if len(tag_list) > TOKEN_MAX_TAGS:
            raise TooManyTagsError(
                f"A wait token can have at most {TOKEN_MAX_TAGS} tags; got {len(tag_list)}.",
                limit=TOKEN_MAX_TAGS,
            )
        await self.start()
        now = self.clock()
        ttl_ms = parse_duration_ms(idempotency_key_ttl) if idempotency_key_ttl else None
        return await self.store.waitpoint_create(
            WaitpointCreateParams(
                id=new_id("waitpoint"),
                environment=self.environment,
                kind="MANUAL",
                now=now,
                timeout_at=resolve_time(timeout, now) if timeout is not None else None,
                idempotency_key=str(idempotency_key) if idempotency_key is not None else None,
                idempotency_key_expires_at=now + ttl_ms if idempotency_key and ttl_ms else None,
                tags=tag_list,
            )
        )

    async def complete_token(self, waitpoint_id: str, data: Any) -> WaitpointRecord:
        """Complete a token with ``data``; completing it again keeps the first data."""
        await self.start()
        found = await self.store.waitpoint_complete(
            WaitpointCompleteParams(
                environment=self.environment,
                waitpoint_id=waitpoint_id,
                output=dumps(data, what="Token output"),
                now=self.clock(),
            )
        )
        if found is None or found.kind != "MANUAL":
            raise WaitpointNotFoundError(
                f"Wait token {waitpoint_id} not found in environment '{self.environment}'.",
                waitpoint_id=waitpoint_id,
            )
        return found

    async def get_token(self, waitpoint_id: str) -> WaitpointRecord:
        """A token by id, or :class:`WaitpointNotFoundError`."""
        await self.start()
        found = await self.store.waitpoint_get(WaitpointGetParams(self.environment, waitpoint_id))
        if found is None or found.kind != "MANUAL":
            raise WaitpointNotFoundError(
                f"Wait token {waitpoint_id} not found in environment '{self.environment}'.",
                waitpoint_id=waitpoint_id,
            )
        return found

    # -- tokens ---------------------------------------------------------------------------

    def public_token(self, scopes: list[str], expires_in_s: int = HANDLE_TOKEN_TTL_S) -> str:
        """A JWT granting ``scopes`` in this environment for ``expires_in_s`` seconds."""
        return _sign(self.environment, scopes, int(time.time()), expires_in_s, self._secret_key())

    def _secret_key(self) -> str:
        if self._secret is None:
            self._secret = self.settings.resolved_secret_key()
        return self._secret


def _sign(environment: str, scopes: list[str], now: int, expires_in_s: int, secret: str) -> str:
    import jwt  # imported on first use: it pulls in cryptography (slow CLI start)

    claims = {"sub": environment, "scopes": scopes, "iat": now, "exp": now + expires_in_s}
    return jwt.encode(claims, secret, algorithm="HS256")


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _key_parts(key: Any) -> list[str]:
    return [key] if isinstance(key, str) else [str(k) for k in key]


def error_of(run: RunRecord) -> TaskRunError | None:
    """The run's recorded error as a :class:`TaskRunError`."""
    data = loads(run.error)
    if not data:
        return None
    return TaskRunError(
        name=str(data.get("name", "Error")),
        message=str(data.get("message", "")),
        stack=str(data.get("stack", "")),
    )


def result_of(run: RunRecord) -> Result:
    """A finished run as a :class:`Result`."""
    if run.status == RunStatus.COMPLETED:
        return Result(ok=True, id=run.id, task_identifier=run.task_id, output=loads(run.output))
    error = error_of(run) or TaskRunError(name=run.status, message=f"Run ended {run.status}.")
    return Result(ok=False, id=run.id, task_identifier=run.task_id, error=error)
