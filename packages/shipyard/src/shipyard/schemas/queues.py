"""Queues over HTTP, in the shapes of Trigger.dev's queue API (``QueueItem`` in
``@trigger.dev/core`` ``v3/schemas/queues``).

====================================================  ============================================
``GET /api/v1/queues?page=&perPage=``                 :class:`ListQueuesResponse` (offset pages)
``GET /api/v1/queues/{queue}?type=id|task|custom``    :class:`QueueItem`
``POST /api/v1/queues/{queue}/pause``                 :class:`PauseQueueRequest` → ``QueueItem``
``POST /api/v1/queues/{queue}/concurrency/override``  :class:`OverrideQueueConcurrencyRequest` →
                                                      ``QueueItem``
``POST /api/v1/queues/{queue}/concurrency/reset``     :class:`ResetQueueConcurrencyRequest` →
                                                      ``QueueItem``
====================================================  ============================================

``{queue}`` is a queue id (``type=id``), a task id (``type=task``: the task's own queue
``task/<id>``) or a custom queue's name (``type=custom``). The SDK escapes ``/`` in the value as
``%2F`` **before** URL-encoding it, so the path segment arrives double-encoded: decode it once
more (:func:`queue_lookup` does). Trigger.dev reports a task queue's ``name`` without its
``task/`` prefix; so does :meth:`QueueItem.from_info`.

Shipyard's queues have no stored ids: :func:`queue_friendly_id` derives a stable
``queue_…`` id from the name, and :func:`queue_lookup` turns any of the three forms into a name
or an id to match.
"""

from __future__ import annotations

import hashlib
from typing import Literal, Protocol
from urllib.parse import unquote

from pydantic import Field

from shipyard.errors import ValidationError
from shipyard.schemas.wire import StrictInt, WireDateTime, WireModel

__all__ = [
    "TASK_QUEUE_PREFIX",
    "ListQueuesResponse",
    "OffsetPagination",
    "OverrideQueueConcurrencyRequest",
    "PauseQueueRequest",
    "QueueConcurrency",
    "QueueInfoLike",
    "QueueItem",
    "QueueLookup",
    "ResetQueueConcurrencyRequest",
    "queue_friendly_id",
    "queue_lookup",
]

TASK_QUEUE_PREFIX = "task/"
"""Every task's own queue is named ``task/<task id>``."""

QueueType = Literal["task", "custom"]
RetrieveQueueType = Literal["id", "task", "custom"]


def queue_friendly_id(name: str) -> str:
    """A stable ``queue_…`` id for the queue called ``name`` (Shipyard stores none).

    Example::

        >>> queue_friendly_id("task/send-email").startswith("queue_")
        True
    """
    return "queue_" + hashlib.sha256(name.encode()).hexdigest()[:24]


class QueueLookup(WireModel):
    """Which queue a path names: by ``name`` (the full stored name) or by ``id``."""

    name: str | None = None
    id: str | None = None


def queue_lookup(segment: str, queue_type: str | None) -> QueueLookup:
    """Resolve the ``{queue}`` path segment and ``type`` query parameter.

    ``segment`` is the path segment as the router decoded it once; a remaining ``%2F`` (the
    SDK's escape for ``/``) is decoded here. ``type`` defaults to ``id`` as in the SDK.

    Raises:
        ValidationError: ``type`` is not ``id``, ``task`` or ``custom``.

    Example::

        >>> queue_lookup("my-task", "task").name
        'task/my-task'
        >>> queue_lookup("task%2Fmy-task", "custom").name
        'task/my-task'
    """
    value = unquote(segment)
    kind = queue_type or "id"
    if kind == "id":
        return QueueLookup(id=value)
    if kind == "task":
        bare = value[len(TASK_QUEUE_PREFIX) :] if value.startswith(TASK_QUEUE_PREFIX) else value
        return QueueLookup(name=TASK_QUEUE_PREFIX + bare)
    if kind == "custom":
        return QueueLookup(name=value)
    raise ValidationError(
        f"Unknown queue type {queue_type!r}; use id, task or custom.", param="type"
    )


class QueueConcurrency(WireModel):
    """A queue's limit: the one in force, the one set in code, and the override if any."""

    wire_nullable = frozenset({"current", "base", "override", "overridden_at", "overridden_by"})

    current: int | None = None
    base: int | None = None
    override: int | None = None
    overridden_at: WireDateTime | None = None
    overridden_by: str | None = None


class QueueInfoLike(Protocol):
    """The fields of Shipyard's ``QueueInfo`` a :class:`QueueItem` is built from."""

    @property
    def name(self) -> str: ...
    @property
    def concurrency_limit(self) -> int | None: ...
    @property
    def limit_override(self) -> int | None: ...
    @property
    def effective_limit(self) -> int: ...
    @property
    def paused(self) -> bool: ...
    @property
    def running(self) -> int: ...
    @property
    def queued(self) -> int: ...


class QueueItem(WireModel):
    """A queue (``QueueItem``, version ``V1``: the queue carries its own limit).

    ``concurrencyLimit`` is the limit in force, ``null`` when the queue has none of its own
    (the environment's limit applies).
    """

    wire_nullable = frozenset({"concurrency_limit"})

    id: str
    name: str
    type: QueueType
    running: int
    queued: int
    paused: bool
    concurrency_limit: int | None = None
    version: Literal["V1"] = "V1"
    concurrency: QueueConcurrency | None = None

    @classmethod
    def from_info(cls, info: QueueInfoLike) -> QueueItem:
        """From Shipyard's ``QueueInfo`` (a ``task/`` queue is reported by its task id)."""
        is_task = info.name.startswith(TASK_QUEUE_PREFIX)
        current = info.limit_override if info.limit_override is not None else info.concurrency_limit
        return cls(
            id=queue_friendly_id(info.name),
            name=info.name[len(TASK_QUEUE_PREFIX) :] if is_task else info.name,
            type="task" if is_task else "custom",
            running=info.running,
            queued=info.queued,
            paused=info.paused,
            concurrency_limit=current,
            concurrency=QueueConcurrency(
                current=current,
                base=info.concurrency_limit,
                override=info.limit_override,
            ),
        )


class OffsetPagination(WireModel):
    """Page numbers for offset-paged lists (``page`` counts from 1)."""

    current_page: int
    total_pages: int
    count: int


class ListQueuesResponse(WireModel):
    """Response of ``GET /api/v1/queues``."""

    data: list[QueueItem]
    pagination: OffsetPagination


class PauseQueueRequest(WireModel):
    """Body of the pause route: ``action`` says pause or resume."""

    type: RetrieveQueueType = "id"
    action: Literal["pause", "resume"]


class OverrideQueueConcurrencyRequest(WireModel):
    """Body of the override route: the new limit (0–100,000)."""

    type: RetrieveQueueType = "id"
    concurrency_limit: StrictInt = Field(ge=0, le=100_000)


class ResetQueueConcurrencyRequest(WireModel):
    """Body of the reset route: back to the limit set in code."""

    type: RetrieveQueueType = "id"
