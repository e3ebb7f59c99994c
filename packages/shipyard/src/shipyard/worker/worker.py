"""The worker: claims runs it has free slots for, executes them, and reports how they ended.

Loops, all on one event loop, plus the heartbeat thread:

* **claim** — when slots are free, claim up to that many ready runs in one transaction;
  otherwise sleep until a wake-up (doorbell/NOTIFY), a freed slot, or the backup poll.
* **finish** — attempts that ended are written in batches (one transaction per batch), fenced
  by attempt number; only then are their slots freed.
* **housekeeping** — flushes metadata and logs every second, checks that each executing run is
  still ours (canceled runs get ``on_cancel``; runs taken over after a lost lease are dropped),
  and reaps expired leases of other, dead workers.

On stop, claiming ends, running attempts get ``grace`` seconds, and what is still running is
released back to the queue without counting the attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from shipyard.durations import parse_duration_ms
from shipyard.engine.engine import Engine
from shipyard.engine.retries import serialize_error
from shipyard.engine.runs import RunStatus
from shipyard.ids import new_id
from shipyard.jsonutil import dumps, loads
from shipyard.records import NewEvent, RunRecord, TaskRecord, WorkerRecord
from shipyard.sdk.context import RunScope
from shipyard.sdk.metadata import flush_scope
from shipyard.sdk.task import Task, TaskRegistry, registry
from shipyard.store import is_unavailable
from shipyard.store.protocol import (
    QueueDefinition,
    ReadyListener,
    ReadyNotifyParams,
    RunClaimParams,
    RunFinishManyParams,
    RunFinishParams,
    RunOwnershipParams,
    RunReapParams,
    RunReleaseParams,
    RunScheduleParams,
    TaskRegisterParams,
    WaitpointResolveParams,
    WorkerStopParams,
)
from shipyard.worker.executor import (
    AttemptControl,
    AttemptOutcome,
    build_context,
    retries_disabled,
    retry_options,
    run_attempt,
)
from shipyard.worker.heartbeat import Heartbeat

log = logging.getLogger("shipyard.worker")

_WORKER_LOST = {
    "name": "TaskRunHeartbeatTimeout",
    "message": "The worker executing this run stopped heartbeating (crashed or killed).",
    "stack": "",
    "code": "TASK_RUN_HEARTBEAT_TIMEOUT",
}


class _Outage:
    """Logs one line when the database becomes unreachable and one when it is back.

    Every loop of the worker reports here, so an outage costs two log lines, not a stack
    trace per poll. Errors that are not about reaching the database (a bug, a constraint) are
    logged with their traceback, once per distinct error, and do not count as an outage.
    """

    def __init__(self) -> None:
        self.down_since: float | None = None
        self._seen: set[tuple[str, str]] = set()

    def failed(self, what: str, exc: BaseException) -> float:
        """Record a failure; returns how long the outage has lasted (seconds)."""
        now = time.monotonic()
        if not is_unavailable(exc):
            key = (what, f"{type(exc).__name__}: {exc}")
            if key not in self._seen:
                self._seen.add(key)
                log.error("%s failed: %s", what, key[1], exc_info=exc)
            return 0.0
        if self.down_since is None:
            self.down_since = now
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.error(
                "database unreachable while %s: %s — retrying with backoff; finished results "
                "are kept in memory until it is back",
                what,
                first,
            )
        return now - self.down_since

    def ok(self) -> None:
        """Record a success; logs the recovery after an outage."""
        if self.down_since is not None:
            log.warning(
                "database reachable again after %.1f s; resuming",
                time.monotonic() - self.down_since,
            )
            self.down_since = None


_TTL_EXPIRED = {
    "name": "TaskRunExpired",
    "message": "The run's TTL passed before any worker started it.",
    "stack": "",
    "code": "TTL_EXPIRED",
}


@dataclass(eq=False)
class _Active:
    run: RunRecord
    task: Task
    scope: RunScope
    control: AttemptControl = field(default_factory=AttemptControl)
    handle: asyncio.Task[None] | None = None
    # Set while the attempt is parked at a durable wait: resolved with the run when a claim
    # takes it back.
    resume: asyncio.Future[RunRecord] | None = None
    parked_at: float = 0.0


_WAITPOINT_TIMEOUT = {
    "name": "WaitpointTimeoutError",
    "message": "The wait token timed out before it was completed.",
    "stack": "",
    "code": "WAITPOINT_TIMEOUT",
}


class _Driver:
    """The worker's side of an attempt's durable calls (``RunScope.waits``)."""

    def __init__(self, worker: Worker, active: _Active) -> None:
        self.worker = worker
        self.active = active
        self.worker_id = worker.id

    def attempt_number(self) -> int:
        return self.active.run.attempt_number

    async def park(self) -> None:
        await self.worker._park(self.active)

    def lost(self) -> BaseException:
        self.active.control.reason = "lost"
        return asyncio.CancelledError()


class Worker:
    """Executes runs of the tasks in ``tasks``.

    Example::

        worker = Worker(engine, concurrency=10)
        await worker.start()
        ...
        await worker.stop(grace=30)
    """

    def __init__(
        self,
        engine: Engine,
        *,
        tasks: TaskRegistry = registry,
        concurrency: int | None = None,
        heartbeat_interval: float | None = None,
        poll_interval: float | None = None,
        worker_id: str | None = None,
        max_parked: int | None = None,
        parked_idle: float | None = None,
    ) -> None:
        settings = engine.settings
        self.engine = engine
        self.store = engine.store
        self.tasks = tasks
        self.concurrency = concurrency or settings.worker_concurrency
        self.heartbeat_interval = heartbeat_interval or settings.heartbeat_interval
        self.poll_interval = poll_interval or settings.poll_interval
        self.lease_ms = int(3 * self.heartbeat_interval * 1000)
        self.max_parked = settings.max_parked if max_parked is None else max_parked
        self.parked_idle = parked_idle or settings.parked_idle
        self.id = worker_id or new_id("worker")
        self._active: dict[str, _Active] = {}
        # Attempts parked at a durable wait: no slot, the coroutine kept until resumed.
        self._parked: dict[str, _Active] = {}
        self._pending: list[tuple[_Active, AttemptOutcome]] = []
        self._pending_event = asyncio.Event()
        # stop() and the finish loop both flush; one at a time, or stop() could return while
        # the loop's write is in flight and then cancel it (losing a finished attempt).
        self._flush_lock = asyncio.Lock()
        self._stopping = False
        self._listener: ReadyListener | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._threads = ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix="shipyard-task"
        )
        self._heartbeat = Heartbeat(
            self.store,
            engine.environment,
            self.id,
            self.heartbeat_interval,
            self.lease_ms,
            engine.clock,
            # dict.copy() is one C call under the GIL: safe from the heartbeat thread while
            # the event loop adds and removes runs.
            held=lambda: list(self._active.copy()),
        )
        self._task_ids: list[str] = []
        self._outage = _Outage()
        self.completed = 0

    @property
    def active_count(self) -> int:
        """Attempts executing or waiting to be written."""
        return len(self._active)

    async def start(self) -> None:
        """Register tasks and start claiming."""
        await self.engine.start()
        self._listener = await self.store.ready_listen()
        await self.register()
        self._heartbeat.start()
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="shipyard-claim"),
            asyncio.create_task(self._finish_loop(), name="shipyard-finish"),
            asyncio.create_task(self._housekeeping_loop(), name="shipyard-housekeeping"),
        ]
        log.info(
            "worker %s started: %d tasks, concurrency %d, environment %s",
            self.id,
            len(self._task_ids),
            self.concurrency,
            self.engine.environment,
        )

    async def register(self) -> None:
        """Record this worker and its tasks (so triggering by id knows them)."""
        now = self.engine.clock()
        definitions = self.tasks.all()
        self._task_ids = [t.id for t in definitions]
        records = [self._task_record(t, now) for t in definitions]
        await self.store.task_register(
            TaskRegisterParams(
                environment=self.engine.environment,
                now=now,
                worker=WorkerRecord(
                    id=self.id,
                    environment=self.engine.environment,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    doorbell_port=self._listener.port if self._listener else None,
                    started_at=now,
                    heartbeat_at=now,
                    stopped_at=None,
                ),
                tasks=records,
                queues=self._queue_params(definitions),
            )
        )

    def _queue_params(self, definitions: list[Task]) -> list[QueueDefinition]:
        from shipyard.sdk.queues import queue_registry

        limits: dict[str, int | None] = {q.name: q.concurrency_limit for q in queue_registry.all()}
        for task in definitions:
            limits[task.queue_name] = task.queue_limit
        return [
            QueueDefinition(name=name, concurrency_limit=limit)
            for name, limit in sorted(limits.items())
        ]

    def _task_record(self, task: Task, now: int) -> TaskRecord:
        options = retry_options(self.engine, task)
        return TaskRecord(
            environment=self.engine.environment,
            id=task.id,
            file_path=task.file_path,
            queue=task.queue_name,
            max_attempts=1 if retries_disabled(self.engine) else options.max_attempts,
            retry=dumps(
                {
                    "max_attempts": options.max_attempts,
                    "factor": options.factor,
                    "min_timeout_ms": options.min_timeout_ms,
                    "max_timeout_ms": options.max_timeout_ms,
                    "randomize": options.randomize,
                }
            ),
            max_duration_s=task.max_duration,
            machine=task.machine,
            description=task.description,
            payload_schema=dumps(task.schema.model_json_schema()) if task.schema else None,
            worker_id=self.id,
            updated_at=now,
            ttl_ms=parse_duration_ms(task.ttl) if task.ttl is not None else None,
        )

    # -- claiming -------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping:
            free = self.concurrency - len(self._active)
            claimed: list[RunRecord] = []
            if free > 0:
                try:
                    now = self.engine.clock()
                    claimed = await self.store.run_claim(
                        RunClaimParams(
                            environment=self.engine.environment,
                            worker_id=self.id,
                            task_ids=self._task_ids,
                            limit=free,
                            now=now,
                            lease_expires_at=now + self.lease_ms,
                            environment_limit=self.engine.settings.environment_concurrency_limit,
                            burst_factor=self.engine.settings.burst_factor,
                        )
                    )
                except Exception as exc:
                    down_for = self._outage.failed("claiming runs", exc)
                    await asyncio.sleep(min(self.poll_interval * (1 + down_for), 2.0))
                    continue
                self._outage.ok()
                for run in claimed:
                    self._take(run)
            if claimed and len(claimed) < free:
                # Took what was ready; more may come with the next wake-up.
                await self._listener.wait(self.poll_interval)
            elif not claimed:
                await self._listener.wait(self.poll_interval)

    def _take(self, run: RunRecord) -> None:
        """Start a claimed run, or continue the coroutine parked for it here."""
        parked = self._parked.pop(run.id, None)
        resuming = run.resume_state == "RESUMED"
        if parked is not None:
            future = parked.resume
            if (
                resuming
                and parked.run.attempt_number == run.attempt_number
                and future is not None
                and not future.done()
            ):
                self._active[run.id] = parked
                future.set_result(run)
                return
            self._evict(parked)
        self._spawn(run, is_replay=resuming)

    def _spawn(self, run: RunRecord, *, is_replay: bool = False) -> None:
        task = self.tasks.get(run.task_id)
        assert task is not None, run.task_id
        now = self.engine.clock()
        ctx = build_context(self.engine, task, run, now, is_replay=is_replay)
        scope = RunScope(
            ctx=ctx,
            engine=self.engine,
            metadata=loads(run.metadata) or {},
            tags=list(ctx.run.tags),
            queued_at=run.queued_at,
        )
        active = _Active(run=run, task=task, scope=scope)
        scope.waits = _Driver(self, active)
        self._active[run.id] = active
        active.handle = asyncio.create_task(self._execute(active), name=f"shipyard-{run.id}")

    async def _park(self, active: _Active) -> None:
        """Hold the attempt's coroutine until a claim takes its run back (slot given back)."""
        run_id = active.run.id
        if self._active.get(run_id) is active:
            del self._active[run_id]
        future: asyncio.Future[RunRecord] = asyncio.get_running_loop().create_future()
        active.resume = future
        loop = asyncio.get_running_loop()
        started = active.parked_at = loop.time()
        self._parked[run_id] = active
        while len(self._parked) > self.max_parked:
            # Bound memory: the oldest parked runs resume by replay wherever they are claimed.
            self._evict(next(iter(self._parked.values())))
        self._poke()  # a slot is free
        try:
            active.run = await future
        finally:
            active.resume = None
        deadline = active.scope.deadline
        if deadline is not None and deadline.when() is not None:
            # max_duration counts execution, not waiting.
            deadline.reschedule(deadline.when() + (loop.time() - started))

    def _evict(self, active: _Active) -> None:
        """Drop a parked coroutine; the run resumes by replay wherever it is claimed."""
        if self._parked.get(active.run.id) is active:
            del self._parked[active.run.id]
        active.control.reason = "released"
        if active.handle is not None and not active.handle.done():
            active.handle.cancel()

    async def _execute(self, active: _Active) -> None:
        try:
            outcome = await run_attempt(
                self.engine, active.task, active.run, active.scope, active.control, self._threads
            )
        except BaseException as exc:  # a bug in the executor must not lose the run
            if isinstance(exc, asyncio.CancelledError) and active.control.reason:
                outcome = AttemptOutcome(status=None, attempt_status="RELEASED")
            else:
                log.exception("executor failed for %s", active.run.id)
                outcome = AttemptOutcome(
                    status=RunStatus.SYSTEM_FAILURE,
                    attempt_status="FAILED",
                    error=dumps(serialize_error(exc)),
                )
        if outcome.status is None:
            if self._active.get(active.run.id) is active:
                del self._active[active.run.id]
            self._poke()
            return
        self._pending.append((active, outcome))
        self._pending_event.set()

    def _poke(self) -> None:
        if self._listener is not None:
            self._listener.poke()

    # -- finishing ------------------------------------------------------------------------

    async def _finish_loop(self) -> None:
        while True:
            await self._pending_event.wait()
            self._pending_event.clear()
            await self._flush_finished()

    async def _flush_finished(self) -> None:
        async with self._flush_lock:
            await self._flush_pending()

    async def _flush_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            params = []
            for active, outcome in batch:
                assert outcome.status is not None
                if (
                    active.scope.pending_metadata
                    or active.scope.pending_parent_metadata
                    or active.scope.pending_root_metadata
                ):
                    try:
                        await flush_scope(active.scope)
                    except Exception as exc:
                        log.error("final metadata flush of %s failed: %s", active.run.id, exc)
                # Logs emitted after the last metadata write travel with the result; the
                # database appends the status event after them.
                events = _drain_events(active.scope)
                now = self.engine.clock()
                params.append(
                    RunFinishParams(
                        run_id=active.run.id,
                        attempt_number=active.run.attempt_number,
                        worker_id=self.id,
                        status=outcome.status,
                        attempt_status=outcome.attempt_status,
                        now=now,
                        output=outcome.output,
                        error=outcome.error,
                        retry_at=outcome.retry_at,
                        events=events,
                    )
                )
            accepted = await self._write_finished(params)
            finished_ids = []
            for (active, outcome), ok in zip(batch, accepted, strict=True):
                if self._active.get(active.run.id) is active:
                    del self._active[active.run.id]
                if not ok:
                    log.warning(
                        "%s attempt %d: result rejected, the run is no longer ours "
                        "(canceled or taken over after a lost lease)",
                        active.run.id,
                        active.run.attempt_number,
                    )
                    continue
                self.completed += 1
                if outcome.status != RunStatus.QUEUED:
                    finished_ids.append(active.run.id)
                log.info(
                    "%s %s attempt %d → %s",
                    active.run.id,
                    active.task.id,
                    active.run.attempt_number,
                    outcome.status,
                )
            if finished_ids:
                self.engine.run_finished(finished_ids)
                if any(a.run.parent_run_id for a, _ in batch):
                    # A parent may be waiting for these: resolve its waitpoint now.
                    try:
                        await self._resolve_waitpoints()
                    except Exception as exc:
                        self._outage.failed("resolving waitpoints", exc)
            if any(o.status == RunStatus.QUEUED for _, o in batch):
                try:
                    await self.store.ready_notify(
                        ReadyNotifyParams(self.engine.environment, self.engine.clock())
                    )
                except Exception as exc:
                    # The results are written; a lost wake-up only waits for the backup poll.
                    # Raising here would end the finish loop and strand every later result.
                    self._outage.failed("notifying workers", exc)
            self._poke()

    async def _write_finished(self, params: list[RunFinishParams]) -> list[bool]:
        delay = 0.1
        while True:
            try:
                accepted = await self.store.run_finish_many(
                    RunFinishManyParams(self.engine.environment, params)
                )
                self._outage.ok()
                return accepted
            except Exception as exc:
                # Results stay in memory until the database takes them; the attempt-number
                # fence makes a late write safe.
                self._outage.failed(f"writing {len(params)} result(s)", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    # -- housekeeping ---------------------------------------------------------------------

    async def _housekeeping_loop(self) -> None:
        tick = 0
        interval = min(0.25, self.heartbeat_interval)
        reap_every = max(1, int((self.lease_ms / 2000) / interval))
        flush_every = max(1, int(1.0 / interval))
        while True:
            await asyncio.sleep(interval)
            tick += 1
            # Each duty on its own: one failing must not stop the others (the reaper above all).
            duties: list[tuple[str, Callable[[], Awaitable[object]]]] = [
                ("scheduling delayed runs", self._schedule_due)
            ]
            duties.append(("resolving waitpoints", self._resolve_waitpoints))
            duties.append(("checking run ownership", self._check_ownership))
            if tick % flush_every == 0:
                duties.append(("flushing metadata and logs", self._flush_running))
                duties.append(("checking parked runs", self._check_parked))
            if tick % reap_every == 0:
                duties.append(("reaping expired leases", self.reap))
            for what, duty in duties:
                try:
                    await duty()
                except Exception as exc:
                    self._outage.failed(what, exc)

    async def _schedule_due(self) -> None:
        """Promote DELAYED runs whose time came and expire runs whose TTL passed unstarted."""
        done = await self.store.run_schedule_due(
            RunScheduleParams(
                environment=self.engine.environment,
                now=self.engine.clock(),
                expired_error=dumps(_TTL_EXPIRED),
            )
        )
        if done.expired:
            log.info("expired %d run(s) whose TTL passed before they started", len(done.expired))
            self.engine.run_finished(done.expired)
        if done.promoted:
            self._poke()

    async def _resolve_waitpoints(self) -> None:
        """Complete due waitpoints and re-queue the runs they released."""
        woken = await self.store.waitpoint_resolve_due(
            WaitpointResolveParams(
                environment=self.engine.environment,
                now=self.engine.clock(),
                timeout_error=dumps(_WAITPOINT_TIMEOUT),
            )
        )
        if woken:
            self._poke()

    async def _check_parked(self) -> None:
        """Evict parked coroutines idle too long, or whose run was canceled or is executing
        elsewhere."""
        if not self._parked:
            return
        idle_before = asyncio.get_running_loop().time() - self.parked_idle
        for idle in [a for a in self._parked.values() if a.parked_at < idle_before]:
            self._evict(idle)
        if not self._parked:
            return
        for row in await self.store.run_ownership(
            RunOwnershipParams(self.engine.environment, list(self._parked))
        ):
            active = self._parked.get(row.run_id)
            if active is None:
                continue
            if row.status in (RunStatus.WAITING, RunStatus.QUEUED) and (
                row.attempt_number == active.run.attempt_number
            ):
                continue
            log.info("%s is %s; dropping its parked attempt", row.run_id, row.status)
            self._evict(active)

    async def _check_ownership(self) -> None:
        running = {rid: a for rid, a in self._active.items() if a.control.reason is None}
        if not running:
            return
        for row in await self.store.run_ownership(
            RunOwnershipParams(self.engine.environment, list(running))
        ):
            active = running.get(row.run_id)
            if active is None or active.handle is None or active.handle.done():
                continue
            # WAITING/QUEUED with our lease: suspending at a durable wait right now.
            ours = (
                row.status in (RunStatus.EXECUTING, RunStatus.WAITING, RunStatus.QUEUED)
                and row.attempt_number == active.run.attempt_number
                and row.lease_owner == self.id
            )
            if ours:
                continue
            canceled = row.status == RunStatus.CANCELED and row.lease_owner == self.id
            active.control.reason = "canceled" if canceled else "lost"
            log.info("%s: %s; stopping its attempt", row.run_id, active.control.reason)
            active.handle.cancel()

    async def _flush_running(self) -> None:
        for active in list(self._active.values()):
            await flush_scope(active.scope)

    async def reap(self) -> int:
        """Take back runs whose worker stopped heartbeating; returns how many."""
        reaped = await self.store.run_reap_expired(
            RunReapParams(
                environment=self.engine.environment,
                now=self.engine.clock(),
                crash_error=dumps(_WORKER_LOST),
            )
        )
        if reaped:
            log.warning(
                "reaped %d run(s) from lost workers: %s",
                len(reaped),
                ", ".join(f"{r.run_id}→{r.status}" for r in reaped),
            )
            self.engine.run_finished([r.run_id for r in reaped if r.status != "QUEUED"])
            await self.store.ready_notify(
                ReadyNotifyParams(self.engine.environment, self.engine.clock())
            )
        return len(reaped)

    # -- stopping -------------------------------------------------------------------------

    async def stop(self, grace: float | None = None) -> None:
        """Stop claiming, give running attempts ``grace`` s, release the rest. Idempotent."""
        if self._stopping:
            return
        self._stopping = True
        grace = self.engine.settings.shutdown_grace if grace is None else grace
        self._poke()
        parked = list(self._parked.values())
        for active in parked:
            # The runs stay WAITING; whoever claims them when they resolve replays them.
            self._evict(active)
        if parked:
            await asyncio.wait([a.handle for a in parked if a.handle is not None])
        handles = [a.handle for a in self._active.values() if a.handle is not None]
        if handles:
            log.info("waiting up to %.0f s for %d running attempt(s)", grace, len(handles))
            if grace > 0:
                _, still = await asyncio.wait(handles, timeout=grace)
            else:  # attempts that already ended are written below, not released
                still = {h for h in handles if not h.done()}
            to_release = [a for a in self._active.values() if a.handle in still]
            for active in to_release:
                active.control.reason = "released"
                assert active.handle is not None
                active.handle.cancel()
            if to_release:
                await asyncio.wait([a.handle for a in to_release if a.handle is not None])
                for active in to_release:
                    released = await self.store.run_release(
                        RunReleaseParams(
                            environment=self.engine.environment,
                            run_id=active.run.id,
                            attempt_number=active.run.attempt_number,
                            worker_id=self.id,
                            now=self.engine.clock(),
                        )
                    )
                    log.info(
                        "%s released back to the queue%s",
                        active.run.id,
                        "" if released else " (already taken)",
                    )
                await self.store.ready_notify(
                    ReadyNotifyParams(self.engine.environment, self.engine.clock())
                )
        await self._flush_finished()
        for loop_task in self._loops:
            loop_task.cancel()
        for loop_task in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop_task
        self._heartbeat.stop()
        with contextlib.suppress(Exception):
            await self.store.worker_stop(
                WorkerStopParams(self.engine.environment, self.id, self.engine.clock())
            )
        if self._listener is not None:
            self._listener.close()
        self._threads.shutdown(wait=False, cancel_futures=True)
        log.info("worker %s stopped", self.id)


def _drain_events(scope: RunScope) -> list[NewEvent]:
    with scope.lock:
        events, scope.pending_events = scope.pending_events, []
    return events
