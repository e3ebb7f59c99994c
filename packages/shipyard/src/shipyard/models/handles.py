"""What triggering returns: run and batch handles, and the results of waiting for runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from shipyard.errors import SubtaskUnwrapError

__all__ = [
    "BatchHandle",
    "BatchResult",
    "Result",
    "RunHandle",
    "TaskRunError",
    "lazy_token",
    "signed_once",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True, init=False)
class RunHandle:
    """A triggered run. ``is_cached`` is True when an idempotency key matched an existing run.

    ``public_access_token`` is a JWT that can read only this run, valid for 1 hour from the
    trigger. The engine signs it lazily, on first read (signing costs more than the insert).
    """

    id: str
    task_identifier: str
    is_cached: bool
    _token: str | None = field(repr=False, compare=False)
    _mint: Callable[[], str] | None = field(repr=False, compare=False)

    def __init__(
        self,
        id: str,
        task_identifier: str,
        is_cached: bool = False,
        public_access_token: str = "",
        *,
        token_factory: Callable[[], str] | None = None,
    ) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "id", id)
        setattr_(self, "task_identifier", task_identifier)
        setattr_(self, "is_cached", is_cached)
        lazy_token(self, public_access_token, token_factory)

    @property
    def public_access_token(self) -> str:
        """A JWT that can read only this run (signed on first access, then cached)."""
        return signed_once(self)


@dataclass(frozen=True, slots=True, init=False)
class BatchHandle:
    """A triggered batch; ``runs`` are the run ids in input order.

    ``public_access_token`` is a JWT that can read only this batch; the engine signs it lazily,
    on first read, as a run handle's (a process's first signature also imports the JWT
    library: ~0.5 s once).
    """

    batch_id: str
    run_count: int
    runs: tuple[str, ...]
    _token: str | None = field(repr=False, compare=False)
    _mint: Callable[[], str] | None = field(repr=False, compare=False)

    def __init__(
        self,
        batch_id: str,
        run_count: int,
        runs: tuple[str, ...] = (),
        public_access_token: str = "",
        *,
        token_factory: Callable[[], str] | None = None,
    ) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "batch_id", batch_id)
        setattr_(self, "run_count", run_count)
        setattr_(self, "runs", runs)
        lazy_token(self, public_access_token, token_factory)

    @property
    def public_access_token(self) -> str:
        """A JWT that can read only this batch (signed on first access, then cached)."""
        return signed_once(self)


@dataclass(frozen=True, slots=True)
class TaskRunError:
    """A failed run's error as recorded: ``{name, message, stack}`` and, for Shipyard's own
    errors, their stable ``code``."""

    name: str
    message: str
    stack: str = ""
    code: str | None = None

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


@dataclass(frozen=True, slots=True)
class Result(Generic[T]):
    """The outcome of a child run: ``ok`` with ``output``, or not ok with ``error``.

    Example::

        result = await child.trigger_and_wait({"n": 1})
        if result.ok:
            print(result.output)
        value = result.unwrap()  # raises SubtaskUnwrapError if the child failed
    """

    ok: bool
    id: str
    task_identifier: str
    output: T | None = None
    error: TaskRunError | None = None

    def unwrap(self) -> T:
        """The output, or raise :class:`SubtaskUnwrapError` with the child's error."""
        if self.ok:
            return self.output  # type: ignore[return-value]
        raise SubtaskUnwrapError(self.id, self.task_identifier, self.error)


@dataclass(frozen=True, slots=True)
class BatchResult(Generic[T]):
    """The outcome of ``batch_trigger_and_wait``: one :class:`Result` per item, in order."""

    id: str
    runs: tuple[Result[T], ...]


class _LazyToken(Protocol):
    @property
    def _token(self) -> str | None: ...

    @property
    def _mint(self) -> Callable[[], str] | None: ...


def lazy_token(
    handle: object, public_access_token: str, token_factory: Callable[[], str] | None
) -> None:
    """Set a frozen handle's token fields: the token given, or none yet and the factory that
    signs it on first read (:func:`signed_once`)."""
    object.__setattr__(handle, "_token", None if token_factory is not None else public_access_token)
    object.__setattr__(handle, "_mint", token_factory)


def signed_once(handle: _LazyToken) -> str:
    """The handle's token: signed by its factory on first access, then cached (frozen
    dataclasses: set through ``object.__setattr__``)."""
    token = handle._token
    if token is None:
        mint = handle._mint
        token = mint() if mint is not None else ""
        object.__setattr__(handle, "_token", token)
        object.__setattr__(handle, "_mint", None)
    return token
