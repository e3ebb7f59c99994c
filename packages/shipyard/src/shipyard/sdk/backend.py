"""Where an SDK call goes: inside a run, the engine executing it; elsewhere the process's
default backend, which is an :class:`~shipyard.engine.engine.Engine` in this process or, with
``SHIPYARD_API_URL`` set, a :class:`~shipyard.client.RemoteClient` that calls the engine
server over HTTP.

Both are a :class:`Backend`: the operations the SDK (and the CLI) call outside a run. Which one
a process uses, in order:

1. inside a running task: the worker's engine (``trigger_and_wait`` and friends need it);
2. a remote client installed with :func:`set_client` (the CLI's ``--api-url``, the MCP
   server's) or configured with ``shipyard.configure(api_url=…)``;
3. an engine installed with ``set_engine`` (``shipyard dev`` for the app it serves, a worker,
   a test) or built already;
4. a remote client built from settings when ``api_url`` (``SHIPYARD_API_URL``) is set;
5. otherwise an engine built from settings on first use (``shipyard.engine.registry``).

Example::

    shipyard.configure(api_url="https://engine.example.com", secret_key=key)
    handle = await shipyard.tasks.trigger("send-email", {"to": "a@b.c"})   # over HTTP
    await shipyard.aclose()
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from shipyard.config import Settings, load_settings
from shipyard.engine import registry
from shipyard.engine.scope import current_scope
from shipyard.errors import ConfigError
from shipyard.models.batches import BatchInfo
from shipyard.models.handles import BatchHandle, BatchResult, Result, RunHandle
from shipyard.models.queues import QueueInfo
from shipyard.models.realtime import RunChange, StreamChunk
from shipyard.models.runs import Run, RunEvent, RunPage
from shipyard.models.schedules import Schedule, ScheduleList
from shipyard.models.tasks import RegisteredTask
from shipyard.models.tokens import WaitToken, WaitTokenInfo, WaitTokenPage

if TYPE_CHECKING:
    # Imported when first used: httpx and the wire models cost a process that never goes
    # over HTTP (a worker, the CLI on the local database) most of its import time, and the
    # engine and its store one that only goes over HTTP (the CLI with --api-url).
    from shipyard.client import RemoteClient
    from shipyard.engine.engine import Engine

__all__ = [
    "Backend",
    "aclose",
    "configure",
    "current_backend",
    "current_engine",
    "default_backend",
]


class Backend(Protocol):
    """The operations the SDK and the CLI call on an engine outside a run: the in-process
    :class:`~shipyard.engine.engine.Engine` and the HTTP :class:`~shipyard.client.RemoteClient`
    both have them, with the same arguments, results and exceptions."""

    async def trigger(self, task_id: str, payload: Any, options: Mapping[str, Any]) -> RunHandle:
        """Create a run (or return the one its idempotency key points at)."""
        ...

    async def batch_trigger(
        self, entries: Sequence[Mapping[str, Any]], options: Mapping[str, Any]
    ) -> BatchHandle:
        """Create one run per entry (``{"task", "payload", "options"}``)."""
        ...

    async def trigger_and_wait(
        self, task_id: str, payload: Any, options: Mapping[str, Any]
    ) -> Result[Any]:
        """Trigger and wait for the result (inside a run only)."""
        ...

    async def batch_trigger_and_wait(
        self, entries: Sequence[Mapping[str, Any]], options: Mapping[str, Any]
    ) -> BatchResult[Any]:
        """Batch trigger and wait for every result (inside a run only)."""
        ...

    async def retrieve_run(self, run_id: str) -> Run:
        """The full run."""
        ...

    async def list_runs(
        self,
        *,
        statuses: Sequence[str] = (),
        task_ids: Sequence[str] = (),
        tag: str | None = None,
        batch_id: str | None = None,
        created_from: int | None = None,
        created_to: int | None = None,
        limit: int = 50,
        cursor: str | None = None,
        schedule_id: str | None = None,
    ) -> RunPage:
        """One page of runs, newest first (``schedule_id``: only the runs it created)."""
        ...

    async def run_events(
        self, run_id: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[RunEvent]:
        """A run's events after ``after_id``."""
        ...

    async def cancel_run(self, run_id: str) -> Run:
        """Cancel a run and its non-final children."""
        ...

    async def reschedule_run(self, run_id: str, delay: Any) -> Run:
        """Move a DELAYED run to a new time."""
        ...

    async def replay_run(self, run_id: str, *, payload: Any = ...) -> RunHandle:
        """A new run of the same task and options."""
        ...

    async def reset_idempotency_key(self, task_id: str, key: str) -> int:
        """Clear a hashed key on the runs of ``task_id`` holding it."""
        ...

    async def retrieve_batch(self, batch_id: str) -> BatchInfo:
        """A batch and its run ids."""
        ...

    async def list_tasks(self) -> list[RegisteredTask]:
        """The tasks workers registered."""
        ...

    async def create_token(
        self,
        *,
        timeout: Any = None,
        idempotency_key: str | None = None,
        idempotency_key_ttl: str | int | None = None,
        tags: Sequence[str] | str | None = None,
    ) -> WaitToken:
        """Create a wait token."""
        ...

    async def complete_token(self, waitpoint_id: str, data: Any) -> object:
        """Complete a wait token (the first data is kept)."""
        ...

    async def retrieve_token(self, waitpoint_id: str) -> WaitTokenInfo:
        """A token's status, data and times."""
        ...

    async def list_tokens(
        self,
        *,
        statuses: Sequence[str] = (),
        tags: Sequence[str] = (),
        idempotency_key: str | None = None,
        created_from: int | None = None,
        created_to: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> WaitTokenPage:
        """One page of tokens, newest first."""
        ...

    async def list_queues(self) -> list[QueueInfo]:
        """Every queue."""
        ...

    async def retrieve_queue(self, name: str) -> QueueInfo:
        """One queue by name."""
        ...

    async def pause_queue(self, name: str) -> QueueInfo:
        """Stop claims from a queue."""
        ...

    async def resume_queue(self, name: str) -> QueueInfo:
        """Allow claims from a queue again."""
        ...

    async def override_queue_limit(self, name: str, limit: int) -> QueueInfo:
        """Replace a queue's limit until reset."""
        ...

    async def reset_queue_limit(self, name: str) -> QueueInfo:
        """Go back to the limit set in code."""
        ...

    async def create_schedule(
        self,
        *,
        task: str,
        cron: str,
        deduplication_key: str,
        timezone: str = "UTC",
        external_id: str | None = None,
        window: str | None = None,
    ) -> Schedule:
        """Create an imperative schedule, or update the one with this deduplication key."""
        ...

    async def update_schedule(
        self,
        schedule_id: str,
        *,
        task: str | None = None,
        cron: str | None = None,
        timezone: str | None = None,
        external_id: str | None = None,
        deduplication_key: str | None = None,
        window: str | None = None,
    ) -> Schedule:
        """Change an imperative schedule; what is not given stays."""
        ...

    async def retrieve_schedule(self, schedule_id: str) -> Schedule:
        """One schedule by id."""
        ...

    async def list_schedules(
        self, *, page: int = 1, per_page: int = 20, task: str | None = None
    ) -> ScheduleList:
        """One page of the environment's schedules, oldest first."""
        ...

    async def activate_schedule(self, schedule_id: str) -> Schedule:
        """Fire again, from the next tick after now."""
        ...

    async def deactivate_schedule(self, schedule_id: str) -> Schedule:
        """Stop firing until activated."""
        ...

    async def delete_schedule(self, schedule_id: str) -> Schedule:
        """Delete an imperative schedule."""
        ...

    async def list_timezones(self, *, exclude_utc: bool = False) -> list[str]:
        """Every IANA time zone a schedule accepts."""
        ...

    def subscribe_run(
        self, run_id: str, *, stop_on_completion: bool = True
    ) -> AsyncIterator[RunChange | None]:
        """A run's changes (``runs.subscribe_to_run``)."""
        ...

    def subscribe_tags(
        self, tags: str | Sequence[str], *, created_at: Any = "1d"
    ) -> AsyncIterator[RunChange | None]:
        """Changes of runs with any of the tags (``runs.subscribe_to_runs_with_tag``)."""
        ...

    def subscribe_batch(self, batch_id: str) -> AsyncIterator[RunChange | None]:
        """Changes of a batch's runs (``runs.subscribe_to_batch``)."""
        ...

    def read_stream(
        self,
        run_id: str,
        stream_id: str = "default",
        *,
        start_index: int = 0,
        timeout_s: float = 60.0,
    ) -> AsyncIterator[StreamChunk | None]:
        """A run's stream, chunk by chunk (``streams.read``)."""
        ...

    async def send_input(self, run_id: str, stream_id: str, data: Any) -> bool:
        """Send data to a run's input stream (``streams.input(id).send``)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class _Remote:
    """The process's remote client, when it uses one."""

    def __init__(self) -> None:
        self.client: RemoteClient | None = None
        # Clients replaced by configure(): closed by the next aclose() (configure is sync).
        self.replaced: list[RemoteClient] = []


_remote = _Remote()


def default_backend() -> Backend:
    """The process's backend outside a run (see the module docstring for the order)."""
    if _remote.client is not None:
        return _remote.client
    engine = registry.installed_engine()
    if engine is not None:
        return engine
    settings = load_settings()
    if settings.api_url is not None:
        _remote.client = _client(settings)
        return _remote.client
    return registry.get_engine()


def _client(settings: Settings) -> RemoteClient:
    from shipyard.client import RemoteClient

    return RemoteClient.from_settings(settings)


def current_backend() -> Backend:
    """The backend the current call should use: the running task's engine, else the
    process's default."""
    scope = current_scope()
    return scope.engine if scope is not None else default_backend()


def current_engine(what: str = "This call") -> Engine:
    """The engine in this process, for calls a remote client cannot make (appending to a
    stream from outside its run): the running task's engine, else the process's default.

    Raises:
        ConfigError: the process's backend is a remote client (``SHIPYARD_API_URL``).
    """
    scope = current_scope()
    if scope is not None:
        return scope.engine
    from shipyard.engine.engine import Engine

    backend = default_backend()
    if isinstance(backend, Engine):
        return backend
    raise ConfigError(
        f"{what} needs the engine in this process; it is not available over HTTP yet "
        "(SHIPYARD_API_URL is set). Call it inside a task, or where the engine's database is "
        "reachable (unset SHIPYARD_API_URL there)."
    )


def set_client(client: RemoteClient | None) -> None:
    """Make ``client`` the process's backend outside runs (the CLI does, for one command;
    ``None`` removes it); the caller closes it."""
    _remote.client = client


def configure(**settings: Any) -> Settings:
    """Configure Shipyard in code (highest precedence); returns the settings in force.

    With ``api_url`` the process triggers and reads runs over HTTP (``secret_key`` is the
    bearer key) and opens no database; otherwise it builds an engine in this process.

    Example::

        shipyard.configure(database_url="sqlite:///data/app.db", environment="staging")
        shipyard.configure(api_url="https://engine.example.com", secret_key=key)
    """
    resolved = load_settings(**settings)
    if _remote.client is not None:
        _remote.replaced.append(_remote.client)
        _remote.client = None
    if resolved.api_url is not None:
        registry.set_engine(None)
        _remote.client = _client(resolved)
        return resolved
    return registry.configure(**settings)


async def aclose() -> None:
    """Close the process's default engine or remote client (connections, threads).

    Call it before a script that triggered runs exits (or in a FastAPI lifespan's shutdown).
    An engine installed with ``set_engine`` is left to its owner. Calling it again, or with
    nothing open, does nothing; the next SDK call opens a new one."""
    clients = [*_remote.replaced, *([_remote.client] if _remote.client else [])]
    _remote.client, _remote.replaced = None, []
    for client in clients:
        await client.close()
    await registry.aclose()
