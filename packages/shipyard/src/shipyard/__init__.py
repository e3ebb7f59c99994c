"""Shipyard: a durable task engine with Trigger.dev v4 semantics, for Python.

Example::

    from shipyard import task, metadata, logger

    @task(id="hello")
    async def hello(payload: dict) -> str:
        logger.info("greeting", name=payload["name"])
        metadata.set("greeted", True)
        return f"Hello {payload['name']}"
"""

from shipyard.engine.idempotency import IdempotencyKey
from shipyard.errors import (
    AbortTaskRunError,
    ApiError,
    BatchTooLargeError,
    ConfigError,
    DuplicateTaskError,
    IdempotencyKeyError,
    InvalidDurationError,
    JsonTooDeepError,
    MetadataTooLargeError,
    NonDeterminismError,
    NotInRunError,
    ParallelWaitError,
    PayloadTooLargeError,
    RateLimitedError,
    RunFinishedError,
    RunNotFoundError,
    SerializationError,
    ShipyardError,
    SubtaskUnwrapError,
    TaskPayloadParsedError,
    TooManyTagsError,
    UnknownQueueError,
    UnknownTaskError,
    ValidationError,
    WaitpointNotFoundError,
    WaitpointTimeoutError,
)
from shipyard.models.context import Context
from shipyard.models.handles import BatchHandle, BatchResult, Result, RunHandle, TaskRunError
from shipyard.models.options import TriggerOptions
from shipyard.models.queues import QueueInfo
from shipyard.models.realtime import RealtimeRun
from shipyard.models.runs import Attempt, Run, RunEvent
from shipyard.models.schedules import Schedule, ScheduledPayload
from shipyard.models.tokens import WaitToken, WaitTokenInfo, WaitTokenResult
from shipyard.retry_policy import RetryOptions
from shipyard.sdk.backend import aclose, configure
from shipyard.sdk.batch import batch
from shipyard.sdk.idempotency import idempotency_keys
from shipyard.sdk.locals import locals
from shipyard.sdk.logger import logger
from shipyard.sdk.metadata import metadata
from shipyard.sdk.queues import Queue, queue, queues
from shipyard.sdk.retry import retry
from shipyard.sdk.runs import runs
from shipyard.sdk.schedules import schedules
from shipyard.sdk.streams import streams
from shipyard.sdk.tags import tags
from shipyard.sdk.task import Task, schema_task, task
from shipyard.sdk.tasks import tasks
from shipyard.sdk.wait import wait
from shipyard.statuses import RunStatus
from shipyard.version import __version__

__all__ = [
    "AbortTaskRunError",
    "ApiError",
    "Attempt",
    "BatchHandle",
    "BatchResult",
    "BatchTooLargeError",
    "ConfigError",
    "Context",
    "DuplicateTaskError",
    "IdempotencyKey",
    "IdempotencyKeyError",
    "InvalidDurationError",
    "JsonTooDeepError",
    "MetadataTooLargeError",
    "NonDeterminismError",
    "NotInRunError",
    "ParallelWaitError",
    "PayloadTooLargeError",
    "Queue",
    "QueueInfo",
    "RateLimitedError",
    "RealtimeRun",
    "Result",
    "RetryOptions",
    "Run",
    "RunEvent",
    "RunFinishedError",
    "RunHandle",
    "RunNotFoundError",
    "RunStatus",
    "Schedule",
    "ScheduledPayload",
    "SerializationError",
    "ShipyardError",
    "SubtaskUnwrapError",
    "Task",
    "TaskPayloadParsedError",
    "TaskRunError",
    "TooManyTagsError",
    "TriggerOptions",
    "UnknownQueueError",
    "UnknownTaskError",
    "ValidationError",
    "WaitToken",
    "WaitTokenInfo",
    "WaitTokenResult",
    "WaitpointNotFoundError",
    "WaitpointTimeoutError",
    "__version__",
    "aclose",
    "batch",
    "configure",
    "idempotency_keys",
    "locals",
    "logger",
    "metadata",
    "queue",
    "queues",
    "retry",
    "runs",
    "schedules",
    "schema_task",
    "streams",
    "tags",
    "task",
    "tasks",
    "wait",
]
