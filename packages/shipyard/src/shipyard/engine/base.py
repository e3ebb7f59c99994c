"""What every part of the engine shares: settings, the store, the clock, the definitions, the
state machine's log, and the engine's lifecycle.

:class:`~shipyard.engine.engine.Engine` is composed of one class per domain noun (triggers,
runs, claims, waitpoints, queues …), each a subclass of :class:`EngineBase`, so each file stays
about one thing while callers see one object.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

from shipyard.clock import Clock, SystemClock
from shipyard.config import Settings
from shipyard.durations import parse_duration_ms
from shipyard.engine.auth import sign_token
from shipyard.engine.definitions import Definitions, default_definitions
from shipyard.engine.transitions import TransitionLog
from shipyard.models.handles import Result
from shipyard.models.runs import final_result
from shipyard.records import TaskRecord
from shipyard.store import Store, is_unavailable, open_store
from shipyard.store.params import MigrateParams

__all__ = ["HANDLE_TOKEN_TTL_S", "LIVE_WORKER_MIN_MS", "EngineBase"]

HANDLE_TOKEN_TTL_S = 3600
LIVE_WORKER_MIN_MS = 30_000
"""A worker counts as live (for versions: PENDING_VERSION, the version lock) while it has not
stopped and heartbeated within this long, or two leases if that is longer."""


# Final results kept for in-process parents (note_final): a few hundred KB at most.
_FINALS_KEPT = 1_000


class EngineBase:
    """Shared state and lifecycle of an engine (one environment over one store)."""

    def __init__(
        self,
        settings: Settings,
        store: Store | None = None,
        *,
        clock: Clock | None = None,
        definitions: Definitions | None = None,
    ) -> None:
        self.settings = settings
        self.environment = settings.environment
        self.store: Store = store or open_store(settings)
        self.clock: Clock = clock or SystemClock()
        self.definitions = definitions if definitions is not None else default_definitions()
        self.transitions = TransitionLog()
        self._started = False
        self._start_lock = asyncio.Lock()
        # Tasks some worker registered (by id): triggering a task this process does not
        # define uses the registered task's queue and TTL.
        self._registered: dict[str, TaskRecord] = {}
        # Tasks some live worker of the environment has (their versions' tasks), read at most
        # once per second (monotonic deadline); plus the tasks of this process's own running
        # workers, by worker id, known exactly.
        self._live_tasks: frozenset[str] = frozenset()
        self._live_tasks_until = 0.0
        self._live_tasks_read_at = 0.0
        self._local_workers: dict[str, frozenset[str]] = {}
        self.live_window_ms = max(LIVE_WORKER_MIN_MS, int(2 * settings.lease_seconds * 1000))
        # Parsed once: both are read on every trigger.
        self._default_ttl_ms = settings.default_ttl_ms()
        self._rate_interval_ms = parse_duration_ms(settings.trigger_rate_interval)
        self._secret: str | None = None
        self._finish_waiters: dict[str, list[asyncio.Future[None]]] = {}
        # Children this process's workers finished (final), kept for a parent waiting here:
        # run id -> (task id, status, output, error), the oldest dropped past _FINALS_KEPT.
        self._finals: dict[str, tuple[str, str, str | None, str | None]] = {}

    def now(self) -> int:
        """The engine's clock, in epoch milliseconds."""
        return self.clock.now_ms()

    async def start(self) -> None:
        """Apply pending migrations (once per engine)."""
        if self._started:
            return
        async with self._start_lock:
            if not self._started:
                await self.store.migrate(MigrateParams(now=self.now()))
                self._started = True

    async def migrate(self) -> list[str]:
        """Apply pending migrations now; the names applied."""
        applied = await self.store.migrate(MigrateParams(now=self.now()))
        self._started = True
        return applied

    async def close(self) -> None:
        """Close the store."""
        await self.store.close()

    @staticmethod
    def is_unavailable(exc: BaseException) -> bool:
        """Whether ``exc`` means the database could not be reached (rather than a bug)."""
        return is_unavailable(exc)

    # -- keys and tokens ------------------------------------------------------------------

    def secret_key(self) -> str:
        """The environment's secret key (resolved once; in development created on first use)."""
        if self._secret is None:
            self._secret = self.settings.resolved_secret_key()
        return self._secret

    def public_token(self, scopes: list[str], expires_in_s: int = HANDLE_TOKEN_TTL_S) -> str:
        """A JWT granting ``scopes`` in this environment for ``expires_in_s`` seconds."""
        return self.lazy_public_token(scopes, expires_in_s)()

    def lazy_public_token(
        self, scopes: list[str], expires_in_s: int = HANDLE_TOKEN_TTL_S
    ) -> Callable[[], str]:
        """:meth:`public_token`, signed when first called, with its claims fixed now: the same
        token as if signed here. Handles take it (``token_factory``): signing a JWT costs more
        than the insert a handle comes from, and most handles' tokens are never read."""
        return functools.partial(
            sign_token, self.environment, scopes, int(time.time()), expires_in_s, self.secret_key()
        )

    # -- in-process finish notifications --------------------------------------------------

    def note_final(
        self, run_id: str, task_id: str, status: str, output: str | None, error: str | None
    ) -> None:
        """A worker of this engine wrote a child run's final result (its finish accepted): its
        parent, resumed by the same transaction, takes it from here instead of reading the
        row back (:meth:`take_final`; a final run's result never changes)."""
        self._finals[run_id] = (task_id, status, output, error)
        if len(self._finals) > _FINALS_KEPT:  # parents waiting elsewhere never take theirs
            del self._finals[next(iter(self._finals))]

    def take_final(self, run_id: str) -> Result[Any] | None:
        """The result :meth:`note_final` kept for ``run_id`` (once), or None."""
        found = self._finals.pop(run_id, None)
        if found is None:
            return None
        task_id, status, output, error = found
        return final_result(run_id, task_id, status, output, error)

    def run_finished(self, run_ids: Sequence[str]) -> None:
        """Wake in-process waiters of these runs (a worker calls this after finishing them)."""
        for run_id in run_ids:
            for future in self._finish_waiters.pop(run_id, []):
                if not future.done():
                    future.get_loop().call_soon_threadsafe(_resolve, future)

    def _watch_finish(self, run_id: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._finish_waiters.setdefault(run_id, []).append(future)
        return future

    def _unwatch_finish(self, run_id: str, future: asyncio.Future[None]) -> None:
        # A run finished by another process never calls run_finished here: drop the future
        # ourselves, or the dict keeps one per poll of every such run.
        waiters = self._finish_waiters.get(run_id)
        if waiters is None:
            return
        if future in waiters:
            waiters.remove(future)
        if not waiters:
            del self._finish_waiters[run_id]


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
