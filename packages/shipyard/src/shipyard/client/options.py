"""SDK call arguments as the HTTP API's JSON: trigger options, durations and times.

The SDK takes Python values (``timedelta``, ``datetime``, seconds as numbers, an
``IdempotencyKey``); the API takes Trigger.dev's JSON (duration strings, ISO-8601 dates,
camelCase). Idempotency keys are hashed here exactly as the in-process engine hashes them
outside a run (:mod:`shipyard.idempotency`), so the server stores the same key either way.

Example::

    trigger_body({"n": 1}, {"ttl": 600, "tags": "a", "idempotency_key": "order-1"})
    # {"payload": '{"n":1}', "options": {"tags": ["a"], "idempotencyKey": "0baf…",
    #  "ttl": "10m", "payloadType": "application/json"}}
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from typing import Any

from shipyard.durations import parse_duration_ms
from shipyard.errors import ValidationError
from shipyard.idempotency import outside_run_key
from shipyard.jsonutil import dumps
from shipyard.models.options import check_option_names
from shipyard.schemas.runs import duration_text
from shipyard.schemas.wire import format_wire_datetime

__all__ = ["duration_value", "time_value", "trigger_body", "trigger_options"]

# Trigger options with the same meaning on the wire, snake_case → camelCase.
_PLAIN = {
    "concurrency_key": "concurrencyKey",
    "max_attempts": "maxAttempts",
    "max_duration": "maxDuration",
    "machine": "machine",
    "priority": "priority",
    "metadata": "metadata",
}


def duration_value(value: Any, what: str) -> str:
    """A duration (string, seconds, ``timedelta``) as a duration string, in whole seconds
    (a fraction of a second is rounded up: the API's grammar has no milliseconds)."""
    if isinstance(value, str):
        return value  # the server validates it and names the field when it is wrong
    ms = parse_duration_ms(value)
    if ms == 0:
        return "0s"
    return duration_text(math.ceil(ms / 1000) * 1000) if ms % 1000 else duration_text(ms)


def time_value(value: Any, what: str) -> str:
    """A time (``datetime``, ISO string, or a duration from now) as the API's ``delay`` /
    ``timeout``: a duration string, or an ISO-8601 date-time."""
    if isinstance(value, datetime.datetime):
        return format_wire_datetime(value)
    if isinstance(value, str):
        return value
    ms = parse_duration_ms(value)
    if ms % 1000:
        # Sub-second durations cannot be written as a duration string: send the moment.
        moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(milliseconds=ms)
        return format_wire_datetime(moment)
    return duration_text(ms) if ms else "0s"


def _queue_name(queue: Any) -> str:
    name = queue.get("name") if isinstance(queue, Mapping) else getattr(queue, "name", queue)
    if not isinstance(name, str):
        raise ValidationError(
            f"queue must be a queue name or a queue(); got {type(name).__name__}."
        )
    return name


def trigger_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The ``options`` object of a trigger body (camelCase, JSON values).

    An unknown option is refused here with the engine's message, so a typo fails the same way
    in-process and over HTTP; values are validated by the server.
    """
    if "connection" in options:
        raise ValidationError(
            "connection= (joining the caller's PostgreSQL transaction) needs the engine in this "
            "process; a remote client (SHIPYARD_API_URL) cannot join a transaction.",
            options=["connection"],
        )
    check_option_names(options)
    body: dict[str, Any] = {}
    for name, wire in _PLAIN.items():
        if options.get(name) is not None:
            body[wire] = dict(options[name]) if name == "metadata" else options[name]
    if (tags := options.get("tags")) is not None:
        body["tags"] = [tags] if isinstance(tags, str) else list(tags)
    if (key := options.get("idempotency_key")) is not None:
        body["idempotencyKey"] = str(outside_run_key(key))
    if (key_ttl := options.get("idempotency_key_ttl")) is not None:
        body["idempotencyKeyTTL"] = duration_value(key_ttl, "idempotency_key_ttl")
    if (queue := options.get("queue")) is not None:
        body["queue"] = {"name": _queue_name(queue)}
    if (delay := options.get("delay")) is not None:
        body["delay"] = time_value(delay, "delay")
    if (ttl := options.get("ttl")) is not None:
        body["ttl"] = duration_value(ttl, "ttl")
    if (debounce := options.get("debounce")) is not None:
        if not isinstance(debounce, Mapping):
            raise ValidationError('debounce must be a dict: {"key": ..., "delay": "5s"}.')
        wire_debounce: dict[str, Any] = {k: v for k, v in debounce.items() if k == "key"}
        if "delay" in debounce:
            wire_debounce["delay"] = duration_value(debounce["delay"], "debounce delay")
        if debounce.get("mode") is not None:
            wire_debounce["mode"] = debounce["mode"]
        if debounce.get("max_delay") is not None:
            wire_debounce["maxDelay"] = duration_value(debounce["max_delay"], "max_delay")
        body["debounce"] = wire_debounce
    return body


def trigger_body(payload: Any, options: Mapping[str, Any]) -> dict[str, Any]:
    """The body of ``POST /api/v1/tasks/{taskId}/trigger`` (and of one batch item).

    The payload travels as JSON text (``payloadType: application/json``, as Trigger.dev's SDK
    sends it), encoded here with the engine's rules: a value that is not JSON, or nested too
    deeply, fails before any request with the error the in-process engine raises.
    """
    wire = trigger_options(options)
    wire["payloadType"] = "application/json"
    return {"payload": dumps(payload, what="Payload"), "options": wire}
