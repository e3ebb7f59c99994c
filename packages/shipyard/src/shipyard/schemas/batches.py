"""Batches over HTTP: triggering many runs in one request, and reading a batch back.

``POST /api/v1/tasks/batch`` takes Trigger.dev's documented body
(``BatchTriggerTaskV2RequestBody``): ``{"items": [{"task", "payload", "options"}]}``, at most
1,000 items, and answers ``BatchTriggerTaskV2Response`` (HTTP 202 in Trigger.dev): the batch id
and one entry per item, in input order.

The official SDK v4 does **not** use that route: ``batch.trigger`` and ``tasks.batchTrigger``
create a batch with ``POST /api/v3/batches`` (:class:`CreateBatchRequest` →
:class:`CreateBatchResponse`) and then stream the items as NDJSON to
``POST /api/v3/batches/{id}/items`` (one :class:`BatchStreamItem` per line →
:class:`StreamBatchItemsResponse`). Those models are here so the streaming API can be added
without guessing; Shipyard does not route it yet.

``GET /api/v1/batches/{id}`` (and the SDK's ``GET /api/v2/batches/{id}``) answers
:class:`RetrieveBatchResponse`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from shipyard.schemas.payloads import decode_payload
from shipyard.schemas.tasks import IdempotencyKeyOptions, IdempotencyKeyText, TriggerTaskOptions
from shipyard.schemas.wire import StrictInt, WireDateTime, WireModel

__all__ = [
    "MAX_BATCH_ITEMS",
    "BatchProcessing",
    "BatchProcessingError",
    "BatchRun",
    "BatchStatus",
    "BatchStreamItem",
    "BatchTriggerItem",
    "BatchTriggerRequest",
    "BatchTriggerResponse",
    "CreateBatchRequest",
    "CreateBatchResponse",
    "RetrieveBatchResponse",
    "StreamBatchItemsResponse",
]

MAX_BATCH_ITEMS = 1_000
"""The most items one batch may hold."""

BatchStatus = Literal["PENDING", "PROCESSING", "COMPLETED", "PARTIAL_FAILED", "ABORTED"]


class BatchTriggerItem(WireModel):
    """One item of a batch: the task to run, its payload and its trigger options."""

    task: str = Field(min_length=1)
    payload: Any = None
    context: Any = None
    options: TriggerTaskOptions | None = None

    def decoded_payload(self, index: int) -> Any:
        """The item's payload as a Python value (errors name ``items[index].payload``)."""
        payload_type = self.options.payload_type if self.options else None
        return decode_payload(self.payload, payload_type, param=f"items[{index}].payload")

    def trigger_options(self) -> dict[str, Any]:
        """The engine's trigger options for this item."""
        return self.options.trigger_options() if self.options else {}


class BatchTriggerRequest(WireModel):
    """Body of ``POST /api/v1/tasks/batch``: 1 to 1,000 items.

    A batch-level idempotency key travels in the ``idempotency-key`` request header, as in
    Trigger.dev.

    Example::

        {"items": [{"task": "send-email", "payload": {"to": "a@example.com"}},
                   {"task": "resize-image", "payload": {"url": "…"}, "options": {"tags": ["x"]}}]}
    """

    items: list[BatchTriggerItem] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)
    parent_run_id: str | None = None
    resume_parent_on_completion: bool | None = None

    def engine_items(self) -> list[dict[str, Any]]:
        """The items as the engine's ``batch_trigger`` takes them:
        ``{"task", "payload", "options"}`` with decoded payloads and snake_case options."""
        return [
            {
                "task": item.task,
                "payload": item.decoded_payload(index),
                "options": item.trigger_options(),
            }
            for index, item in enumerate(self.items)
        ]


class BatchRun(WireModel):
    """One run of a triggered batch, in input order."""

    id: str
    task_identifier: str
    is_cached: bool = False
    idempotency_key: str | None = None


class BatchTriggerResponse(WireModel):
    """Response of ``POST /api/v1/tasks/batch`` (Trigger.dev's ``BatchTriggerTaskV2Response``).

    The batch's public access token travels in the ``x-trigger-jwt`` response header.
    """

    id: str
    is_cached: bool = False
    idempotency_key: str | None = None
    runs: list[BatchRun]


class BatchProcessingError(WireModel):
    """An item that could not be turned into a run."""

    index: int
    task_identifier: str
    error: str
    error_code: str | None = None


class BatchProcessing(WireModel):
    """How far the batch got in creating its runs."""

    completed_at: WireDateTime | None = None
    errors: list[BatchProcessingError] = Field(default_factory=list)


class RetrieveBatchResponse(WireModel):
    """Response of ``GET /api/v1/batches/{id}`` (Trigger.dev's ``RetrieveBatchV2Response``):
    the batch's status and its run ids in input order."""

    id: str
    status: BatchStatus
    idempotency_key: str | None = None
    created_at: WireDateTime
    updated_at: WireDateTime
    run_count: int
    runs: list[str]
    processing: BatchProcessing = Field(default_factory=BatchProcessing)


class CreateBatchRequest(WireModel):
    """Phase 1 of the SDK's streaming batch (``POST /api/v3/batches``; not routed yet)."""

    run_count: StrictInt = Field(gt=0)
    task_identifiers: list[str] | None = None
    parent_run_id: str | None = None
    resume_parent_on_completion: bool | None = None
    idempotency_key: IdempotencyKeyText | None = None
    idempotency_key_options: IdempotencyKeyOptions | None = None


class CreateBatchResponse(WireModel):
    """Phase 1 response: the batch id (and ``isCached`` when its idempotency key matched)."""

    id: str
    run_count: int
    is_cached: bool
    idempotency_key: str | None = None


class BatchStreamItem(WireModel):
    """One NDJSON line of phase 2 (``POST /api/v3/batches/{id}/items``; not routed yet)."""

    index: StrictInt = Field(ge=0)
    task: str
    payload: Any = None
    options: TriggerTaskOptions | None = None


class StreamBatchItemsResponse(WireModel):
    """Phase 2 response. ``sealed`` false makes the SDK retry the stream with missing items."""

    id: str
    items_accepted: int
    items_deduplicated: int
    sealed: bool
    enqueued_count: int | None = None
    expected_count: int | None = None
