"""The params and results of the store's wait token (waitpoint) operations; re-exported by
:mod:`shipyard.store.params`, where every store operation's params live."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shipyard.records import WaitpointRecord

if TYPE_CHECKING:
    from shipyard.store.params import RunInsertParams

# -- waitpoints ---------------------------------------------------------------------------------


@dataclass(slots=True)
class WaitpointCreateParams:
    """A waitpoint to create; with ``idempotency_key`` the live one holding it is reused.

    ``run``: the run to create first, in the same transaction (``trigger_and_wait``'s child,
    the RUN waitpoint's target; no idempotency or debounce key, no tags): a blocked call's
    child exists only with the call recorded and its parent suspended.
    """

    id: str
    environment: str
    kind: str
    now: int
    completes_at: int | None = None
    timeout_at: int | None = None
    idempotency_key: str | None = None
    idempotency_key_expires_at: int | None = None
    tags: Sequence[str] = ()
    target_id: str | None = None
    run: RunInsertParams | None = None


@dataclass(slots=True)
class WaitpointGetParams:
    """One waitpoint by id."""

    environment: str
    waitpoint_id: str


@dataclass(slots=True)
class WaitpointListParams:
    """Filters for ``waitpoint_list`` (tokens only), newest first, one page at a time.

    ``statuses`` any of; ``tags`` all of; ``cursor`` is the last id of the previous page.
    """

    environment: str
    statuses: Sequence[str] = ()
    tags: Sequence[str] = ()
    idempotency_key: str | None = None
    created_from: int | None = None
    created_to: int | None = None
    cursor: str | None = None
    limit: int = 100


@dataclass(slots=True)
class WaitpointRecordedParams:
    """The durable call an attempt recorded at sequence number ``seq``."""

    environment: str
    run_id: str
    attempt_number: int
    seq: int


@dataclass(slots=True)
class RecordedCall:
    """The durable call recorded at a sequence number of an attempt."""

    call: str
    waitpoint: WaitpointRecord


@dataclass(slots=True)
class WaitpointBlockParams:
    """Block an attempt on a waitpoint at its durable call ``seq``.

    Either ``create`` (a new waitpoint, or the live one holding its idempotency key) or
    ``waitpoint_id`` (an existing one: a token, or the call recorded at ``seq``). If the
    waitpoint is still pending the run goes EXECUTING → WAITING, fenced like a finish.
    """

    environment: str
    run_id: str
    attempt_number: int
    worker_id: str
    seq: int
    call: str
    now: int
    create: WaitpointCreateParams | None = None
    waitpoint_id: str | None = None


@dataclass(slots=True)
class WaitpointReadsParams:
    """Many waitpoint reads at once (one round trip): waitpoints by id and recorded calls."""

    environment: str
    gets: Sequence[WaitpointGetParams] = ()
    recorded: Sequence[WaitpointRecordedParams] = ()


@dataclass(slots=True)
class WaitpointReads:
    """The answers of :class:`WaitpointReadsParams`, in order (None: not found)."""

    gets: list[WaitpointRecord | None]
    recorded: list[RecordedCall | None]


@dataclass(slots=True)
class WaitpointCreateManyParams:
    """New waitpoints of one environment without idempotency keys, in one transaction."""

    environment: str
    creates: Sequence[WaitpointCreateParams]


@dataclass(slots=True)
class WaitpointBlockManyParams:
    """Many :class:`WaitpointBlockParams` of one environment in one transaction (a worker's
    runs suspending at about the same time: one commit, one slot-row lock, instead of one
    each, which serialised every suspend behind the slot row's commit)."""

    environment: str
    blocks: Sequence[WaitpointBlockParams]


@dataclass(slots=True)
class WaitpointBlockResult:
    """The waitpoint the call is blocked on and what happened to the run."""

    waitpoint: WaitpointRecord
    suspended: bool
    owned: bool


@dataclass(slots=True)
class WaitpointResolveParams:
    """Resolve due waitpoints of an environment and re-queue the runs they released.

    ``peek``: look first whether anything is due, without a write lock (the periodic pass);
    False when the caller knows something is (a child run just ended: one round trip less).
    """

    environment: str
    now: int
    timeout_error: str
    peek: bool = True


@dataclass(slots=True)
class WaitpointCompleteParams:
    """Complete a PENDING token with ``output`` (JSON); a completed token keeps its output."""

    environment: str
    waitpoint_id: str
    output: str
    now: int
