"""The params and results of the store's wait token (waitpoint) operations; re-exported by
:mod:`shipyard.store.params`, where every store operation's params live."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shipyard.records import WaitpointRecord

# -- waitpoints ---------------------------------------------------------------------------------


@dataclass(slots=True)
class WaitpointCreateParams:
    """A waitpoint to create; with ``idempotency_key`` the live one holding it is reused."""

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
class WaitpointBlockResult:
    """The waitpoint the call is blocked on and what happened to the run."""

    waitpoint: WaitpointRecord
    suspended: bool
    owned: bool


@dataclass(slots=True)
class WaitpointResolveParams:
    """Resolve due waitpoints of an environment and re-queue the runs they released."""

    environment: str
    now: int
    timeout_error: str


@dataclass(slots=True)
class WaitpointCompleteParams:
    """Complete a PENDING token with ``output`` (JSON); a completed token keeps its output."""

    environment: str
    waitpoint_id: str
    output: str
    now: int
