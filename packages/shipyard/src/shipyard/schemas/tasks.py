"""Triggering a task over HTTP, and listing tasks.

``POST /api/v1/tasks/{taskId}/trigger`` takes a :class:`TriggerTaskRequest` and answers a
:class:`TriggerTaskResponse` with the run's public access token in the ``x-trigger-jwt``
response header. ``GET /api/v1/tasks`` answers a :class:`ListTasksResponse`.

The options are Trigger.dev's (``TriggerTaskRequestBody`` in ``@trigger.dev/core``), camelCase.
Fields the official SDK sends that Shipyard has no use for (``region``, ``lockToVersion``,
``test``, ``payloadSize`` …) are accepted and ignored, so a newer client keeps working; the ones
Shipyard acts on are validated here for shape and by the engine for meaning.

Example::

    request = TriggerTaskRequest.model_validate(await http_request.json())
    payload = request.decoded_payload()
    options = request.trigger_options()  # {"tags": [...], "max_attempts": 3, ...}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema, field_serializer

from shipyard.errors import ValidationError
from shipyard.schemas.payloads import decode_payload
from shipyard.schemas.wire import StrictFloat, StrictInt, WireDateTime, WireModel

__all__ = [
    "MACHINE_PRESETS",
    "DebounceOptions",
    "IdempotencyKeyOptions",
    "IdempotencyKeyText",
    "ListTasksResponse",
    "MachinePreset",
    "QueueRef",
    "Tag",
    "Tags",
    "TaskItem",
    "TriggerTaskOptions",
    "TriggerTaskRequest",
    "TriggerTaskResponse",
]

MachinePreset = Literal[
    "micro", "small-1x", "small-2x", "medium-1x", "medium-2x", "large-1x", "large-2x"
]
MACHINE_PRESETS: tuple[str, ...] = (
    "micro",
    "small-1x",
    "small-2x",
    "medium-1x",
    "medium-2x",
    "large-1x",
    "large-2x",
)
"""Machine preset names, as ``MachinePresetName`` in ``@trigger.dev/core``."""


def _stringify_key(value: Any) -> Any:
    # zod coerces a numeric concurrencyKey to a string; so do we (bools stay invalid).
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _as_list(value: Any) -> Any:
    # Trigger.dev takes one tag or a list; a list is the one shape the engine sees.
    return [value] if isinstance(value, str) else value


Tag = Annotated[str, Field(max_length=128)]
Tags = Annotated[
    list[Tag],
    BeforeValidator(_as_list),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": 128},
                {"type": "array", "items": {"type": "string", "maxLength": 128}},
            ]
        }
    ),
]
"""One tag or a list of tags (each at most 128 characters), always a list once parsed."""
IdempotencyKeyText = Annotated[str, Field(max_length=2048)]


class QueueRef(WireModel):
    """``options.queue`` as the SDK sends it: ``{"name": "email"}`` (a string also works)."""

    name: str = Field(min_length=1)
    concurrency_limit: StrictInt | None = None
    """Deprecated in Trigger.dev v4 and ignored: limits are set where the queue is defined."""


class DebounceOptions(WireModel):
    """``options.debounce``: coalesce triggers with the same ``key`` (``docs/queues.md``)."""

    key: str = Field(min_length=1, max_length=512)
    delay: str = Field(description='A duration such as "5s" (at least 1s).')
    mode: Literal["leading", "trailing"] | None = None
    max_delay: str | None = None


class IdempotencyKeyOptions(WireModel):
    """The key and scope a hashed ``idempotencyKey`` was made from (informational)."""

    key: str
    scope: Literal["run", "attempt", "global"]


class TriggerTaskOptions(WireModel):
    """``options`` of a trigger. Every field is optional."""

    queue: str | QueueRef | None = None
    """The name of a queue defined in code (``{"name": ...}`` from the SDK)."""
    concurrency_key: Annotated[str | None, BeforeValidator(_stringify_key)] = None
    idempotency_key: IdempotencyKeyText | None = None
    """The SDK sends the SHA-256 hex of the key; a raw key is hashed by the engine the same
    way (``sha256(key)``), so both sides agree."""
    idempotency_key_ttl: str | None = Field(
        default=None, validation_alias="idempotencyKeyTTL", serialization_alias="idempotencyKeyTTL"
    )
    idempotency_key_options: IdempotencyKeyOptions | None = None
    ttl: str | Annotated[StrictInt, Field(ge=0)] | None = None
    """A duration string or a number of seconds; ``0`` means no TTL."""
    delay: str | None = None
    """A duration string (``"10m"``) or an ISO-8601 date-time."""
    tags: Tags | None = None
    metadata: dict[str, Any] | None = None
    metadata_type: str | None = None
    max_attempts: StrictInt | None = None
    max_duration: StrictFloat | None = Field(default=None, description="Seconds (at least 5).")
    machine: MachinePreset | None = None
    priority: StrictFloat | None = Field(default=None, description="Seconds ahead in the queue.")
    debounce: DebounceOptions | None = None
    payload_type: str | None = None
    """How ``payload`` is encoded; see :mod:`shipyard.schemas.payloads`."""
    payload_size: Annotated[StrictInt, Field(ge=0)] | None = None
    parent_run_id: str | None = None
    test: bool | None = None
    lock_to_version: str | None = None
    region: str | None = None

    @field_serializer("queue")
    def _queue_as_object(self, queue: str | QueueRef | None) -> dict[str, Any] | None:
        # Trigger.dev's server takes only the object form; send that whichever form came in.
        if isinstance(queue, str):
            return {"name": queue}
        return queue.to_wire() if queue is not None else None

    def queue_name(self) -> str | None:
        """The queue's name, whichever form ``queue`` came in."""
        if isinstance(self.queue, QueueRef):
            return self.queue.name
        return self.queue

    def trigger_options(self) -> dict[str, Any]:
        """The options the engine's ``trigger`` understands, in its snake_case names.

        Only options that were given appear; ``metadataType`` other than JSON is refused.

        Example::

            TriggerTaskOptions(ttl="10m", tags="a").trigger_options()
            # {'ttl': '10m', 'tags': ['a']}
        """
        if self.metadata_type not in (None, "application/json"):
            raise ValidationError(
                f"Unsupported metadataType {self.metadata_type!r}: send metadata as a JSON object.",
                param="options.metadataType",
            )
        options: dict[str, Any] = {}
        simple = {
            "concurrency_key": self.concurrency_key,
            "idempotency_key": self.idempotency_key,
            "idempotency_key_ttl": self.idempotency_key_ttl,
            "ttl": self.ttl,
            "delay": self.delay,
            "metadata": self.metadata,
            "max_attempts": self.max_attempts,
            "max_duration": self.max_duration,
            "machine": self.machine,
            "priority": self.priority,
            "queue": self.queue_name(),
        }
        options.update({key: value for key, value in simple.items() if value is not None})
        if self.tags is not None:
            options["tags"] = list(self.tags)
        if self.debounce is not None:
            debounce: dict[str, Any] = {"key": self.debounce.key, "delay": self.debounce.delay}
            if self.debounce.mode is not None:
                debounce["mode"] = self.debounce.mode
            if self.debounce.max_delay is not None:
                debounce["max_delay"] = self.debounce.max_delay
            options["debounce"] = debounce
        return options


class TriggerTaskRequest(WireModel):
    """Body of ``POST /api/v1/tasks/{taskId}/trigger``.

    Example::

        {"payload": {"to": "a@example.com"}, "options": {"tags": ["welcome"], "ttl": "1h"}}
    """

    payload: Any = None
    context: Any = None
    """Accepted for compatibility and ignored."""
    options: TriggerTaskOptions | None = None

    def decoded_payload(self, *, param: str = "payload") -> Any:
        """The payload as a Python value, decoded according to ``options.payloadType``."""
        payload_type = self.options.payload_type if self.options else None
        return decode_payload(self.payload, payload_type, param=param)

    def trigger_options(self) -> dict[str, Any]:
        """The engine's trigger options (see :meth:`TriggerTaskOptions.trigger_options`)."""
        return self.options.trigger_options() if self.options else {}


class TriggerTaskResponse(WireModel):
    """Response of a trigger: the run id, and whether an idempotency key matched an existing
    run. The run's public access token travels in the ``x-trigger-jwt`` response header."""

    id: str
    is_cached: bool = False


class TaskItem(WireModel):
    """A task a worker registered, as ``GET /api/v1/tasks`` lists it."""

    id: str
    file_path: str
    queue: str
    max_attempts: int
    max_duration: int | None = Field(default=None, description="Seconds.")
    machine: str | None = None
    ttl: str | None = None
    description: str | None = None
    payload_schema: dict[str, Any] | None = None
    """The JSON Schema of the payload, for ``schema_task`` tasks."""
    updated_at: WireDateTime


class ListTasksResponse(WireModel):
    """Response of ``GET /api/v1/tasks``: every task registered in the environment."""

    data: list[TaskItem]
