"""The HTTP API's wire models: every request and response body of the engine server, in
Trigger.dev's JSON shapes (camelCase), as pydantic models.

A neutral package: it imports pydantic, the standard library and Shipyard's neutral modules
(``errors``, ``jsonutil``, ``durations``, ``metadata_ops``, ``records``), never the engine, the
SDK, the store or the server. Conversions from engine values take any object of the right
shape (``RunLike``, ``WaitTokenInfoLike``, ``QueueInfoLike`` protocols).

=================  ==========================================================================
module             what it holds
=================  ==========================================================================
``wire``           :class:`WireModel` (camelCase, ``None`` left out) and :data:`WireDateTime`
``errors``         ``{"error": …}`` bodies, HTTP status per error, retry headers
``headers``        header names the official client sends and reads (``x-trigger-jwt`` …)
``payloads``       ``payloadType`` decoding (JSON, SuperJSON, text)
``tasks``          trigger request/response and options, the task list
``batches``        batch trigger and batch retrieve (and the SDK's streaming batch bodies)
``runs``           the run object (retrieve, list) and cancel/replay/reschedule/tags bodies
``metadata``       metadata updates and their operations
``events``         a run's change feed (logs, spans, status changes)
``tokens``         wait tokens: create, list, retrieve, complete
``queues``         queues: list, retrieve, pause/resume, override/reset
``schedules``      schedules: create, update (request bodies), time zones
``idempotency``    idempotency key reset
``filters``        ``filter[...]``/``page[...]`` query parsing
=================  ==========================================================================

``tests/fixtures/trigger-sdk/PROTOCOL.md`` records what the official ``@trigger.dev/sdk``
sends and validates; the models here follow it.
"""

from __future__ import annotations

from shipyard.schemas.batches import (
    MAX_BATCH_ITEMS,
    BatchProcessing,
    BatchProcessingError,
    BatchRun,
    BatchStatus,
    BatchStreamItem,
    BatchTriggerItem,
    BatchTriggerRequest,
    BatchTriggerResponse,
    CreateBatchRequest,
    CreateBatchResponse,
    RetrieveBatchResponse,
    StreamBatchItemsResponse,
)
from shipyard.schemas.errors import (
    ErrorDetail,
    ErrorResponse,
    RequestBodyError,
    error_headers,
    error_response,
    http_status_for,
    validation_error_response,
)
from shipyard.schemas.events import (
    EventKind,
    ListRunEventsResponse,
    RunEvent,
)
from shipyard.schemas.filters import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    RUN_FILTERS_SUPPORTED,
    CursorPage,
    OffsetPage,
    RunListQuery,
    TokenListQuery,
    parse_offset_page,
    parse_run_list_query,
    parse_token_list_query,
)
from shipyard.schemas.idempotency import (
    ResetIdempotencyKeyRequest,
    ResetIdempotencyKeyResponse,
)
from shipyard.schemas.metadata import (
    MetadataDeleteOperation,
    MetadataIncrementOperation,
    MetadataListOperation,
    MetadataOperation,
    MetadataSetOperation,
    MetadataUpdateOperation,
    UpdateMetadataRequest,
    UpdateMetadataResponse,
)
from shipyard.schemas.payloads import (
    SUPPORTED_PAYLOAD_TYPES,
    decode_payload,
    decode_superjson,
)
from shipyard.schemas.queues import (
    TASK_QUEUE_PREFIX,
    ListQueuesResponse,
    OffsetPagination,
    OverrideQueueConcurrencyRequest,
    PauseQueueRequest,
    QueueConcurrency,
    QueueInfoLike,
    QueueItem,
    QueueLookup,
    ResetQueueConcurrencyRequest,
    queue_friendly_id,
    queue_lookup,
)
from shipyard.schemas.runs import (
    FAILED_STATUSES,
    FINAL_STATUSES,
    RUN_STATUSES,
    AddTagsRequest,
    AddTagsResponse,
    AttemptLike,
    CanceledRunResponse,
    CursorPagination,
    ListRunItem,
    ListRunsResponse,
    RelatedRun,
    RelatedRuns,
    ReplayRunRequest,
    ReplayRunResponse,
    RescheduleRunRequest,
    RetrieveRunResponse,
    RunAttempt,
    RunEnvironment,
    RunErrorLike,
    RunLike,
    RunSchedule,
    RunStatusName,
    ScheduleGenerator,
    SerializedError,
    TriggerFunction,
    duration_text,
)
from shipyard.schemas.tasks import (
    MACHINE_PRESETS,
    DebounceOptions,
    IdempotencyKeyOptions,
    IdempotencyKeyText,
    ListTasksResponse,
    MachinePreset,
    QueueRef,
    Tag,
    Tags,
    TaskItem,
    TriggerTaskOptions,
    TriggerTaskRequest,
    TriggerTaskResponse,
)
from shipyard.schemas.tokens import (
    CompleteWaitpointTokenRequest,
    CompleteWaitpointTokenResponse,
    CreateWaitpointTokenRequest,
    CreateWaitpointTokenResponse,
    ListWaitpointTokensResponse,
    RetrieveWaitpointTokenResponse,
    TokenErrorLike,
    WaitpointTokenItem,
    WaitpointTokenStatus,
    WaitTokenInfoLike,
)
from shipyard.schemas.wire import (
    StrictFloat,
    StrictInt,
    WireDateTime,
    WireModel,
    format_wire_datetime,
    parse_wire_datetime,
)

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "FAILED_STATUSES",
    "FINAL_STATUSES",
    "MACHINE_PRESETS",
    "MAX_BATCH_ITEMS",
    "MAX_PAGE_SIZE",
    "RUN_FILTERS_SUPPORTED",
    "RUN_STATUSES",
    "SUPPORTED_PAYLOAD_TYPES",
    "TASK_QUEUE_PREFIX",
    "AddTagsRequest",
    "AddTagsResponse",
    "AttemptLike",
    "BatchProcessing",
    "BatchProcessingError",
    "BatchRun",
    "BatchStatus",
    "BatchStreamItem",
    "BatchTriggerItem",
    "BatchTriggerRequest",
    "BatchTriggerResponse",
    "CanceledRunResponse",
    "CompleteWaitpointTokenRequest",
    "CompleteWaitpointTokenResponse",
    "CreateBatchRequest",
    "CreateBatchResponse",
    "CreateWaitpointTokenRequest",
    "CreateWaitpointTokenResponse",
    "CursorPage",
    "CursorPagination",
    "DebounceOptions",
    "ErrorDetail",
    "ErrorResponse",
    "EventKind",
    "IdempotencyKeyOptions",
    "IdempotencyKeyText",
    "ListQueuesResponse",
    "ListRunEventsResponse",
    "ListRunItem",
    "ListRunsResponse",
    "ListTasksResponse",
    "ListWaitpointTokensResponse",
    "MachinePreset",
    "MetadataDeleteOperation",
    "MetadataIncrementOperation",
    "MetadataListOperation",
    "MetadataOperation",
    "MetadataSetOperation",
    "MetadataUpdateOperation",
    "OffsetPage",
    "OffsetPagination",
    "OverrideQueueConcurrencyRequest",
    "PauseQueueRequest",
    "QueueConcurrency",
    "QueueInfoLike",
    "QueueItem",
    "QueueLookup",
    "QueueRef",
    "RelatedRun",
    "RelatedRuns",
    "ReplayRunRequest",
    "ReplayRunResponse",
    "RequestBodyError",
    "RescheduleRunRequest",
    "ResetIdempotencyKeyRequest",
    "ResetIdempotencyKeyResponse",
    "ResetQueueConcurrencyRequest",
    "RetrieveBatchResponse",
    "RetrieveRunResponse",
    "RetrieveWaitpointTokenResponse",
    "RunAttempt",
    "RunEnvironment",
    "RunErrorLike",
    "RunEvent",
    "RunLike",
    "RunListQuery",
    "RunSchedule",
    "RunStatusName",
    "ScheduleGenerator",
    "SerializedError",
    "StreamBatchItemsResponse",
    "StrictFloat",
    "StrictInt",
    "Tag",
    "Tags",
    "TaskItem",
    "TokenErrorLike",
    "TokenListQuery",
    "TriggerFunction",
    "TriggerTaskOptions",
    "TriggerTaskRequest",
    "TriggerTaskResponse",
    "UpdateMetadataRequest",
    "UpdateMetadataResponse",
    "WaitTokenInfoLike",
    "WaitpointTokenItem",
    "WaitpointTokenStatus",
    "WireDateTime",
    "WireModel",
    "decode_payload",
    "decode_superjson",
    "duration_text",
    "error_headers",
    "error_response",
    "format_wire_datetime",
    "http_status_for",
    "parse_offset_page",
    "parse_run_list_query",
    "parse_token_list_query",
    "parse_wire_datetime",
    "queue_friendly_id",
    "queue_lookup",
    "validation_error_response",
]
