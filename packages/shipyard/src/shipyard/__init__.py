"""Shipyard: a durable task engine with Trigger.dev v4 semantics, for Python.

Example::

    from shipyard import task, metadata, logger

    @task(id="hello")
    async def hello(payload: dict) -> str:
        logger.info("greeting", name=payload["name"])
        metadata.set("greeted", True)
        return f"Hello {payload['name']}"
"""

from shipyard.engine.registry import configure
from shipyard.engine.runs import RunStatus
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
from shipyard.retry_policy import RetryOptions
from shipyard.sdk.batch import batch
from shipyard.sdk.context import Context
from shipyard.sdk.handles import BatchHandle, BatchResult, Result, RunHandle, TaskRunError
from shipyard.sdk.idempotency import IdempotencyKey, idempotency_keys
from shipyard.sdk.locals import locals
from shipyard.sdk.logger import logger
from shipyard.sdk.metadata import metadata
from shipyard.sdk.queues import Queue, queue, queues
from shipyard.sdk.retry import retry
from shipyard.sdk.runs import Run, runs
from shipyard.sdk.tags import tags
from shipyard.sdk.task import Task, schema_task, task
from shipyard.sdk.tasks import tasks
from shipyard.sdk.tokens import WaitToken, WaitTokenInfo, WaitTokenResult
from shipyard.sdk.wait import wait

__version__ = "0.1.0"

__all__ = [
    "AbortTaskRunError",
    "ApiError",
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
    "RateLimitedError",
    "Result",
    "RetryOptions",
    "Run",
    "RunHandle",
    "RunNotFoundError",
    "RunStatus",
    "SerializationError",
    "ShipyardError",
    "SubtaskUnwrapError",
    "Task",
    "TaskPayloadParsedError",
    "TaskRunError",
    "TooManyTagsError",
    "UnknownQueueError",
    "UnknownTaskError",
    "ValidationError",
    "WaitToken",
    "WaitTokenInfo",
    "WaitTokenResult",
    "WaitpointNotFoundError",
    "WaitpointTimeoutError",
    "__version__",
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
    "schema_task",
    "tags",
    "task",
    "tasks",
    "wait",
]
