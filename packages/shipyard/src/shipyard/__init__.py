"""Shipyard: a durable task engine with Trigger.dev v4 semantics, for Python.

Example::

    from shipyard import task, metadata, logger

    @task(id="hello")
    async def hello(payload: dict) -> str:
        logger.info("greeting", name=payload["name"])
        metadata.set("greeted", True)
        return f"Hello {payload['name']}"
"""

import importlib
import typing

# Public names are imported on first use (__getattr__, at the end), so `import shipyard` or
# `import shipyard.config` loads only what is used: the whole SDK (the engine, the models, the
# SDK's namespaces) costs ~0.15 s of CPU, which every CLI command and helper process would pay
# at start. Type checkers read the imports below.
if typing.TYPE_CHECKING:
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

# Each public name and the module it lives in.
_LAZY: dict[str, str] = {
    "__version__": "shipyard.version",
    "AbortTaskRunError": "shipyard.errors",
    "aclose": "shipyard.sdk.backend",
    "ApiError": "shipyard.errors",
    "Attempt": "shipyard.models.runs",
    "batch": "shipyard.sdk.batch",
    "BatchHandle": "shipyard.models.handles",
    "BatchResult": "shipyard.models.handles",
    "BatchTooLargeError": "shipyard.errors",
    "ConfigError": "shipyard.errors",
    "configure": "shipyard.sdk.backend",
    "Context": "shipyard.models.context",
    "DuplicateTaskError": "shipyard.errors",
    "idempotency_keys": "shipyard.sdk.idempotency",
    "IdempotencyKey": "shipyard.engine.idempotency",
    "IdempotencyKeyError": "shipyard.errors",
    "InvalidDurationError": "shipyard.errors",
    "JsonTooDeepError": "shipyard.errors",
    "locals": "shipyard.sdk.locals",
    "logger": "shipyard.sdk.logger",
    "metadata": "shipyard.sdk.metadata",
    "MetadataTooLargeError": "shipyard.errors",
    "NonDeterminismError": "shipyard.errors",
    "NotInRunError": "shipyard.errors",
    "ParallelWaitError": "shipyard.errors",
    "PayloadTooLargeError": "shipyard.errors",
    "Queue": "shipyard.sdk.queues",
    "queue": "shipyard.sdk.queues",
    "QueueInfo": "shipyard.models.queues",
    "queues": "shipyard.sdk.queues",
    "RateLimitedError": "shipyard.errors",
    "RealtimeRun": "shipyard.models.realtime",
    "Result": "shipyard.models.handles",
    "retry": "shipyard.sdk.retry",
    "RetryOptions": "shipyard.retry_policy",
    "Run": "shipyard.models.runs",
    "RunEvent": "shipyard.models.runs",
    "RunFinishedError": "shipyard.errors",
    "RunHandle": "shipyard.models.handles",
    "RunNotFoundError": "shipyard.errors",
    "runs": "shipyard.sdk.runs",
    "RunStatus": "shipyard.statuses",
    "Schedule": "shipyard.models.schedules",
    "ScheduledPayload": "shipyard.models.schedules",
    "schedules": "shipyard.sdk.schedules",
    "schema_task": "shipyard.sdk.task",
    "SerializationError": "shipyard.errors",
    "ShipyardError": "shipyard.errors",
    "streams": "shipyard.sdk.streams",
    "SubtaskUnwrapError": "shipyard.errors",
    "tags": "shipyard.sdk.tags",
    "Task": "shipyard.sdk.task",
    "task": "shipyard.sdk.task",
    "TaskPayloadParsedError": "shipyard.errors",
    "TaskRunError": "shipyard.models.handles",
    "tasks": "shipyard.sdk.tasks",
    "TooManyTagsError": "shipyard.errors",
    "TriggerOptions": "shipyard.models.options",
    "UnknownQueueError": "shipyard.errors",
    "UnknownTaskError": "shipyard.errors",
    "ValidationError": "shipyard.errors",
    "wait": "shipyard.sdk.wait",
    "WaitpointNotFoundError": "shipyard.errors",
    "WaitpointTimeoutError": "shipyard.errors",
    "WaitToken": "shipyard.models.tokens",
    "WaitTokenInfo": "shipyard.models.tokens",
    "WaitTokenResult": "shipyard.models.tokens",
}

if not typing.TYPE_CHECKING:  # hidden from type checkers: a typo stays an error there

    def __getattr__(name: str) -> object:
        """The public name ``name``, imported from its module on first use."""
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'shipyard' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        """Every name the module has, the public ones loaded or not."""
        return sorted(set(globals()) | set(_LAZY))
