"""The worker: claims runs it has free slots for, executes them, and reports how they ended.

It is a set of services (:mod:`shipyard.worker.services`) around the attempts it executes:

* **claimer** — when slots are free, claim up to that many ready runs at once; otherwise wait
  for a wake-up (doorbell/NOTIFY), a freed slot, or the backup poll;
* **finisher** — attempts that ended are written in batches, fenced by attempt number, and
  the slots they free are claimed again in the same round trip
  (:mod:`~shipyard.worker.finishing`); a worker alone on PostgreSQL has two batches in
  flight, each of at most half the slots, so one half executes while the other is written;
* **promoter** (delayed runs and TTLs, each at its due time: it sleeps until the earliest
  one), **versions** (runs of its tasks still
  waiting for a version: PENDING_VERSION, triggered while it registered), **resolver**
  (waitpoints due), **ownership**
  (canceled runs get ``on_cancel``; runs taken over after a lost lease are dropped),
  **flusher** (metadata and logs every second, parked runs included), **parking** (bounds the
  coroutines parked at durable waits), **reaper** (leases of dead workers), **retention**
  (runs finished longer ago than ``run_retention`` are deleted, in small batches),
  **scheduler** (fires due schedule ticks, each once across every worker);
* the **heartbeat** thread, which extends the leases of the runs this worker holds.

The worker runs one **version** of the task code (``SHIPYARD_VERSION``, else a content hash
of its task files: :func:`~shipyard.discovery.code_version`); it registers it with its tasks,
and the runs it claims lock to it.

Every decision goes through the engine; the worker never touches the store. On stop, claiming
ends, running attempts get ``grace`` seconds, and what is still running is released back to
the queue without counting the attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from shipyard.discovery import code_version
from shipyard.engine.batching import Coalescer
from shipyard.engine.claims import (
    WaitpointBlockParams,
    WaitpointBlockResult,
    WakeListener,
    WorkerRegistration,
)
from shipyard.engine.context import build_context
from shipyard.engine.engine import Engine
from shipyard.engine.metadata import (
    flush_scope,
)
from shipyard.engine.retries import serialize_error
from shipyard.engine.scope import RunScope
from shipyard.ids import new_id
from shipyard.jsonutil import dumps, loads
from shipyard.records import RunRecord
from shipyard.statuses import RunStatus
from shipyard.worker.active import Active, Driver
from shipyard.worker.executor import (
    AttemptOutcome,
    resume_deadline,
    run_attempt,
)
from shipyard.worker.finishing import write_batch
from shipyard.worker.heartbeat import Heartbeat
from shipyard.worker.loops import Claimer, Finisher, Scheduler
from shipyard.worker.parking import check_parked, suspend_batch
from shipyard.worker.services import Outage, PeriodicService, SchedulerService, Service
from shipyard.worker.share import Share

log = logging.getLogger("shipyard.worker")

# Retention: a pass every so many seconds, each of at most _RETENTION_BATCHES short
# transactions of _RETENTION_BATCH runs (a backlog is worked off over several passes).
_RETENTION_EVERY = 10.0
_RETENTION_BATCH = 500
_RETENTION_BATCHES = 20

__all__ = ["Worker"]


class Worker:
    """Executes runs of the tasks in its engine's definitions.

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
        concurrency: int | None = None,
        heartbeat_interval: float | None = None,
        poll_interval: float | None = None,
        worker_id: str | None = None,
        max_parked: int | None = None,
        parked_idle: float | None = None,
        version: str | None = None,
        scheduler_interval: float | None = None,
    ) -> None:
        settings = engine.settings
        self.engine = engine
        # None: computed at start, from the tasks defined by then (code_version).
        self.version: str | None = version
        self.concurrency = concurrency or settings.worker_concurrency
        self.heartbeat_interval = heartbeat_interval or settings.heartbeat_interval
        self.poll_interval = poll_interval or settings.poll_interval
        self.lease_ms = int(3 * self.heartbeat_interval * 1000)
        self.max_parked = settings.max_parked if max_parked is None else max_parked
        self.parked_idle = parked_idle or settings.parked_idle
        self.id = worker_id or new_id("worker")
        self.active: dict[str, Active] = {}
        # Attempts parked at a durable wait: no slot, the coroutine kept until resumed.
        self.parked: dict[str, Active] = {}
        # Where the next check of parked runs starts (parking.check_parked: a slice a tick).
        self.parked_checked = 0
        self.pending: list[tuple[Active, AttemptOutcome]] = []
        self.pending_event = asyncio.Event()
        # stop() and the finisher both flush; one at a time, or stop() could return while
        # the finisher's write is in flight and then cancel it (losing a finished attempt).
        self._flush_lock = asyncio.Lock()
        # One claim pass of the claimer (or a suspend that claims, or the finisher's write
        # when it is the only one in flight) at a time; stop() waits for it. Two writes in
        # flight don't take it: every claim counts its slots with reserve(), whoever makes it.
        self.claim_lock = asyncio.Lock()
        # Slots promised to claims in flight beyond the runs their own transaction ends
        # (reserve): counted as taken until those claims return.
        self.claiming = 0
        # The finisher's writes in flight (flush_finished); stop() waits for them.
        self._writes: set[asyncio.Task[None]] = set()
        # A claim failed after it may have committed: runs may be leased to this worker that
        # it never received (adopt_leased).
        self.claim_unsure = False
        self.stopping = False
        self.listener: WakeListener | None = None
        self.task_ids: list[str] = []
        self.outage = Outage(engine.is_unavailable)
        self.completed = 0
        self._threads = ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix="shipyard-task"
        )
        self.heartbeat = Heartbeat(
            # dict.copy() is one C call under the GIL: safe from the heartbeat thread while
            # the event loop adds and removes runs.
            lambda at_ms: engine.heartbeat(
                self.id, list(self.active.copy()), self.lease_ms, now=at_ms
            ),
            self.heartbeat_interval,
            self.id,
            lease=self.lease_ms / 1000,
        )
        # Durable calls made while a batch is being written go in the next one, with the claim
        # of the slots they give back (one transaction: see _suspend_batch).
        self._suspends: Coalescer[tuple[Active, WaitpointBlockParams], WaitpointBlockResult] = (
            Coalescer(functools.partial(suspend_batch, self))
        )
        self._clock_listener = None
        tick = min(0.25, self.heartbeat_interval)
        # This worker's part of the limits it shares with other workers (share.py).
        self.share = Share(self)
        self.services: list[Service] = [
            Claimer(self),
            Finisher(self),
            self.share,
            Scheduler(self, tick),
            self._periodic(
                "versions", self._promote_pending, 1.0, "starting runs waiting for a version"
            ),
            self._periodic("resolver", self._resolve_waitpoints, tick, "resolving waitpoints"),
            self._periodic("ownership", self._check_ownership, tick, "checking run ownership"),
            self._periodic("flusher", self._flush_running, 1.0, "flushing metadata and logs"),
            self._periodic("parking", self._check_parked, 1.0, "checking parked runs"),
            self._periodic("reaper", self.reap, self.lease_ms / 2000, "reaping expired leases"),
            self._periodic("retention", self.purge, _RETENTION_EVERY, "deleting old runs"),
            self._periodic(
                "statistics", self._refresh_statistics, 2.0, "refreshing planner statistics"
            ),
            SchedulerService(
                engine.fire_due_schedules,
                engine.now,
                tick if scheduler_interval is None else scheduler_interval,
                self.outage,
            ),
        ]

    def _periodic(self, name: str, duty: object, interval: float, what: str) -> PeriodicService:
        return PeriodicService(name, duty, interval, self.outage, what)  # type: ignore[arg-type]

    @property
    def active_count(self) -> int:
        """Attempts executing or waiting to be written."""
        return len(self.active)

    def service(self, name: str) -> Service:
        """One of the worker's services, by name (``claimer``, ``reaper`` …)."""
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    async def start(self) -> None:
        """Register tasks and start every service."""
        await self.engine.start()
        self.listener = await self.engine.listen_ready()
        if self.version is None:
            self.version = code_version(
                self.engine.settings, [t.file_path for t in self.engine.definitions.tasks()]
            )
        registration = await self._register()
        self.task_ids = registration.task_ids
        self.heartbeat.start()
        on_advance = getattr(self.engine.clock, "on_advance", None)
        if on_advance is not None:
            self._clock_listener = on_advance(self.heartbeat.beat_if_running)
        for service in self.services:
            service.start()
        log.info(
            "worker %s started: version %s, %d tasks, concurrency %d, environment %s",
            self.id,
            self.version,
            len(self.task_ids),
            self.concurrency,
            self.engine.environment,
        )
        if registration.promoted:
            log.info(
                "%d run(s) were waiting for a worker with their task (PENDING_VERSION): queued",
                len(registration.promoted),
            )

    async def _register(self) -> WorkerRegistration:
        """Register the worker; a database that drops the connection now (a restart, a
        terminated backend) is retried with backoff like every later call, instead of ending
        the process before it ever claimed."""
        assert self.listener is not None
        delay = 0.1
        while True:
            try:
                registration = await self.engine.register_worker(
                    self.id, doorbell_port=self.listener.port, version=self.version
                )
            except Exception as exc:
                if not self.engine.is_unavailable(exc):
                    raise
                self.outage.failed("registering the worker", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            self.outage.ok()
            return registration

    # -- executing ------------------------------------------------------------------------

    @contextlib.contextmanager
    def reserve(self, leaving: int = 0) -> Iterator[int]:
        """The slots a claim may fill: those free now, plus the ``leaving`` runs whose end
        the same transaction writes, less those promised to other claims in flight. They
        stay promised until the block exits; take the claimed runs inside it.

        Claims overlap (the finisher writes two batches at once, the claimer polls
        meanwhile), and each counts its slots here, in one step with no await between the
        count and the promise: no slot is counted by two claims."""
        free = max(0, self.concurrency - (len(self.active) - leaving) - self.claiming)
        promised = max(0, free - leaving)
        self.claiming += promised
        try:
            yield free
        finally:
            self.claiming -= promised

    def take(self, run: RunRecord) -> None:
        """Start a claimed run, or continue the coroutine parked for it here."""
        parked = self.parked.pop(run.id, None)
        resuming = run.resume_state == "RESUMED"
        if parked is not None:
            future = parked.resume
            if (
                resuming
                and parked.run.attempt_number == run.attempt_number
                and future is not None
                and not future.done()
            ):
                self.active[run.id] = parked
                future.set_result(run)
                return
            self.evict(parked)
        elif resuming and self._resume_early(run):
            return
        self._spawn(run, is_replay=resuming)

    def _resume_early(self, run: RunRecord) -> bool:
        """A claim took back a run whose suspend committed but whose coroutine this worker has
        not parked yet (its wait was done at once: a token completed, a clock moved): the
        coroutine continues when it parks, instead of a replay beside it (which ran the code
        before the wait twice and left the first coroutine parked until evicted)."""
        active = self.active.get(run.id)
        if (
            active is None
            or not active.suspending
            or active.resume is not None
            or active.run.attempt_number != run.attempt_number
        ):
            return False
        active.resume = asyncio.get_running_loop().create_future()
        active.resume.set_result(run)
        return True

    async def adopt_leased(self) -> None:
        """Take the runs leased to this worker that it does not hold: a claim that committed
        while its connection was lost leased them, and nobody else will run them until their
        lease expires (then the attempt would count as crashed without having run).
        Call under ``claim_lock``."""
        try:
            leased = await self.engine.leased_runs(self.id)
        except Exception as exc:
            self.outage.failed("looking for runs leased to this worker", exc)
            return
        self.claim_unsure = False
        adopted = [run for run in leased if run.id not in self.active]
        for run in adopted:
            self.take(run)
        if adopted:
            await self.renew_if_late(0.0)  # their leases were written before the loss
            log.warning(
                "%d run(s) leased to this worker by a claim whose answer was lost: started",
                len(adopted),
            )

    async def renew_if_late(self, began: float) -> None:
        """Renew the leases of the runs held now if a claim that took some was sent more than
        a third of a lease ago (``began``, monotonic): its leases count from when it was sent
        (it may have waited for a pooled connection through an outage, or behind a lock) and
        may have run out by the time it committed; renewed now rather than at the next
        heartbeat, before a reaper counts the runs as lost."""
        if time.monotonic() - began > self.lease_ms / 3000:
            with contextlib.suppress(Exception):  # the heartbeat thread keeps trying
                await asyncio.to_thread(self.heartbeat.beat)

    def _spawn(self, run: RunRecord, *, is_replay: bool = False) -> None:
        task = self.engine.definitions.task(run.task_id)
        assert task is not None, run.task_id
        ctx = build_context(self.engine.settings, task, run, self.engine.now(), is_replay=is_replay)
        scope = RunScope(
            ctx=ctx,
            engine=self.engine,
            task=task,
            metadata=loads(run.metadata) or {},
            metadata_text=run.metadata,
            tags=list(ctx.run.tags),
            queued_at=run.queued_at,
        )
        active = Active(run=run, task=task, scope=scope)
        scope.waits = Driver(self, active)
        self.active[run.id] = active
        active.handle = asyncio.create_task(self._execute(active), name=f"shipyard-{run.id}")

    def _hold(self, active: Active) -> None:
        """The run suspended: its coroutine is kept (parked) without a slot until a claim takes
        the run back (:meth:`take` resolves ``active.resume``), or it is evicted."""
        run_id = active.run.id
        if active.resume is not None and active.resume.done():
            return  # taken back already (_resume_early): it keeps its slot
        if self.active.get(run_id) is active:
            del self.active[run_id]
        active.resume = asyncio.get_running_loop().create_future()
        active.parked_at = asyncio.get_running_loop().time()
        self.parked[run_id] = active
        while len(self.parked) > self.max_parked:
            # Bound memory: the oldest parked runs resume by replay wherever they are claimed.
            self.evict(next(iter(self.parked.values())))

    async def _park(self, active: Active) -> None:
        """Hold the attempt's coroutine until a claim takes its run back (its slot was given
        back when it suspended; a claim may have taken it back already)."""
        if active.resume is None:  # pragma: no cover - _suspend_batch holds every suspended run
            self._hold(active)
        future = active.resume
        assert future is not None
        try:
            active.run = await future
        finally:
            active.resume = None
        resume_deadline(active.scope)  # paused since the suspend was sent (Driver.suspend)

    def evict(self, active: Active) -> None:
        """Drop a parked coroutine; the run resumes by replay wherever it is claimed."""
        if self.parked.get(active.run.id) is active:
            del self.parked[active.run.id]
        active.control.reason = "released"
        if active.handle is not None and not active.handle.done():
            active.handle.cancel()

    async def _execute(self, active: Active) -> None:
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
            if self.active.get(active.run.id) is active:
                del self.active[active.run.id]
            self.poke()
            return
        self.pending.append((active, outcome))
        self.pending_event.set()

    def wake_at(self, at_ms: int) -> None:
        """Wake the claimer when a retry this worker wrote falls due, instead of at the next
        backup poll (2 ms late: the clock is in whole milliseconds, and the loop's timer
        and the wall clock may disagree by a fraction of one). Under a fake clock the wait
        is real time, and the backup poll covers it."""
        delay = (at_ms - self.engine.now()) / 1000 + 0.002
        asyncio.get_running_loop().call_later(max(0.0, delay), self.poke)

    def poke(self) -> None:
        """Wake the claimer: slots are free or runs are ready."""
        if self.listener is not None:
            self.listener.poke()

    # -- finishing ------------------------------------------------------------------------

    async def flush_finished(self) -> None:
        """Write every attempt that ended: in batches of at most half the slots, two in
        flight, where the store takes two writers (``Engine.writers``) and the worker has
        counted no other live worker (``Share.peers``); one batch at a time otherwise.

        A batch's round trip (its finish, and the claim of the slots it frees) keeps the
        runs it claims waiting, and with them the worker: with one batch of every slot in
        flight the worker and the database took turns, each idle while the other worked.
        With two halves, one executes while the other is written: one-process drains of
        no-op runs on PostgreSQL went from 5,189 to 5,936 runs/s (three interleaved rounds
        on 2 vCPUs; docs/benchmarks.md, session 16)."""
        async with self._flush_lock:
            writes = self._writes
            try:
                while self.pending or writes:
                    # Two at a time only where the store takes two writers and the worker is
                    # known to be alone: other workers' claims keep the database busy while
                    # this one executes, and overlapping writes only added round trips
                    # (two-process drains 7-12 % slower). Otherwise one at a time, of every
                    # ended attempt, its claim under the claim lock, as before.
                    overlap = self.engine.writers > 1 and self.share.peers == 0
                    limit = self.engine.writers if overlap else 1
                    size = max(1, self.concurrency // 2) if overlap else len(self.pending)
                    while self.pending and len(writes) < limit:
                        batch, self.pending = self.pending[:size], self.pending[size:]
                        writes.add(
                            asyncio.create_task(write_batch(self, batch, exclusive=not overlap))
                        )
                    self.pending_event.clear()
                    ended = asyncio.ensure_future(self.pending_event.wait())
                    try:
                        done, _ = await asyncio.wait(
                            {*writes, ended}, return_when=asyncio.FIRST_COMPLETED
                        )
                    finally:
                        ended.cancel()
                    for write in done - {ended}:
                        writes.discard(write)
                        write.result()  # write_batch handles its failures; a bug surfaces
            finally:
                # Cancelled (the finisher's service stopped): the writes in flight end on
                # their own, and what they claimed is in `active` for stop() to release.
                if writes:
                    await asyncio.wait(set(writes))
                    writes.clear()

    # -- housekeeping duties --------------------------------------------------------------

    async def _promote_pending(self) -> None:
        if await self.engine.promote_pending(self.task_ids):
            self.poke()

    async def _refresh_statistics(self) -> None:
        analyzed = await self.engine.refresh_statistics()
        if analyzed:
            log.info("analyzed %s: they outgrew their planner statistics", ", ".join(analyzed))

    async def _resolve_waitpoints(self) -> None:
        if await self.engine.resolve_waitpoints():
            self.poke()

    async def _check_parked(self) -> None:
        await check_parked(self)

    async def _check_ownership(self) -> None:
        running = {rid: a for rid, a in self.active.items() if a.control.reason is None}
        if not running:
            return
        for row in await self.engine.run_ownership(list(running)):
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
        # Parked runs too: an on_wait hook may set metadata that readers expect while it waits.
        for active in [*self.active.values(), *self.parked.values()]:
            scope = active.scope
            # Most scopes (every parked run, usually) have nothing to write: skip them cheaply.
            if scope.pending_events or scope.has_pending_metadata():
                await flush_scope(scope)

    async def purge(self) -> int:
        """Retention: delete runs finished longer ago than ``run_retention`` (and completed
        waitpoints as old), in short batches; returns how many runs."""
        deleted = 0
        for _ in range(_RETENTION_BATCHES):
            done = await self.engine.purge_finished(_RETENTION_BATCH)
            deleted += done.runs
            if done.runs < _RETENTION_BATCH and done.waitpoints < _RETENTION_BATCH:
                break
            await asyncio.sleep(0)  # let claims and finishes in between
        if deleted:
            log.info("retention: deleted %d finished run(s)", deleted)
        return deleted

    async def reap(self) -> int:
        """Take back runs whose worker stopped heartbeating; returns how many.

        Not during an outage, nor for one lease after it: leases that ran out while the
        database was unreachable could not be renewed by anyone, and live workers need a
        heartbeat to renew them before their runs count as lost (reaped at once, a run still
        executing would run again beside itself)."""
        if not self.outage.settled(self.lease_ms / 1000):
            return 0
        reaped = await self.engine.reap_expired()
        if reaped:
            log.warning(
                "reaped %d run(s) from lost workers: %s",
                len(reaped),
                ", ".join(f"{r.run_id}→{r.status}" for r in reaped),
            )
        return len(reaped)

    # -- stopping -------------------------------------------------------------------------

    async def stop(self, grace: float | None = None) -> None:
        """Stop claiming, give running attempts ``grace`` s, release the rest. Idempotent."""
        if self.stopping:
            return
        self.stopping = True
        grace = self.engine.settings.shutdown_grace if grace is None else grace
        self.poke()
        await self.service("claimer").stop()
        # A claim may be in flight (the claimer's, or a finish's): the runs it took join
        # `active` when it returns, and every later finish sees `stopping` and claims nothing.
        async with self.claim_lock:
            pass
        if self._writes:
            await asyncio.wait(set(self._writes))
        parked = list(self.parked.values())
        for active in parked:
            # The runs stay WAITING; whoever claims them when they resolve replays them.
            self.evict(active)
        if parked:
            await asyncio.wait([a.handle for a in parked if a.handle is not None])
        handles = [a.handle for a in self.active.values() if a.handle is not None]
        if handles:
            log.info("waiting up to %.0f s for %d running attempt(s)", grace, len(handles))
            if grace > 0:
                _, still = await asyncio.wait(handles, timeout=grace)
            else:  # attempts that already ended are written below, not released
                still = {h for h in handles if not h.done()}
            to_release = [a for a in self.active.values() if a.handle in still]
            for active in to_release:
                active.control.reason = "released"
                assert active.handle is not None
                active.handle.cancel()
            if to_release:
                await asyncio.wait([a.handle for a in to_release if a.handle is not None])
                for active in to_release:
                    released = await self.engine.release_run(
                        self.id, active.run.id, active.run.attempt_number
                    )
                    log.info(
                        "%s released back to the queue%s",
                        active.run.id,
                        "" if released else " (already taken)",
                    )
                await self.engine.notify_ready()
        await self.flush_finished()
        for service in self.services:
            await service.stop()
        if self._clock_listener is not None:
            self._clock_listener()
        self.heartbeat.stop()
        try:
            await self.engine.stop_worker(self.id)
        except Exception as exc:
            self.outage.failed("marking the worker stopped", exc)
        if self.listener is not None:
            self.listener.close()
        self._threads.shutdown(wait=False, cancel_futures=True)
        log.info("worker %s stopped", self.id)
