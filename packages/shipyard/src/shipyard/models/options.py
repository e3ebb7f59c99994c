"""The keyword options of a trigger, as a typed dict (``task.trigger(payload, **options)``).

Type checkers see each option's type; the engine validates the values
(:mod:`shipyard.engine.options`) and rejects unknown names.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

from shipyard.errors import ValidationError

__all__ = ["SUPPORTED", "DebounceOptions", "TriggerOptions", "check_option_names"]

Duration = str | int | float | datetime.timedelta


class DebounceOptions(TypedDict, total=False):
    """``debounce={"key": ..., "delay": "5s", "mode": "trailing", "max_delay": "1m"}``."""

    key: str
    delay: Duration
    mode: Literal["leading", "trailing"]
    max_delay: Duration


class TriggerOptions(TypedDict, total=False):
    """Every option of ``trigger`` / ``batch_trigger`` / ``trigger_and_wait``.

    - ``idempotency_key``: a string, a list of parts, or an ``IdempotencyKey``; raw strings are
      hashed in the ``run`` scope. ``idempotency_key_ttl``: a duration (default 30 days).
    - ``delay``: a duration, a ``datetime`` or an ISO-8601 string; ``ttl``: a duration or
      seconds (0 = none).
    - ``tags``: up to 10 strings of 1–128 characters. ``metadata``: a JSON object ≤ 256 KiB.
    - ``queue``: the name of a queue defined in code (or a ``queue()`` object);
      ``concurrency_key``: a sub-queue per key with the queue's limit.
    - ``priority``: seconds ahead in line; ``machine``: a preset name; ``max_attempts``,
      ``max_duration`` (seconds, at least 5).
    - ``debounce``: see :class:`DebounceOptions`.
    - ``connection``: a psycopg connection in an open transaction (PostgreSQL only): the run
      exists only if that transaction commits. ``trigger`` and ``trigger_and_wait`` only: the
      batch calls refuse it.
    """

    tags: str | Sequence[str]
    metadata: Mapping[str, Any]
    max_attempts: int
    max_duration: int | float
    idempotency_key: str | Sequence[str]
    idempotency_key_ttl: Duration
    machine: str
    priority: int | float
    queue: Any
    concurrency_key: str
    delay: Duration | datetime.datetime
    ttl: Duration
    debounce: DebounceOptions
    connection: Any


SUPPORTED = (
    "tags",
    "metadata",
    "max_attempts",
    "max_duration",
    "idempotency_key",
    "idempotency_key_ttl",
    "machine",
    "priority",
    "queue",
    "concurrency_key",
    "delay",
    "ttl",
    "debounce",
)
"""The trigger options the engine and the remote client take (``connection`` aside)."""


def check_option_names(options: Mapping[str, Any]) -> None:
    """Refuse option names that are not trigger options, naming them and the supported ones.

    Raises:
        ValidationError: an unknown option (a typo, or Trigger.dev's camelCase spelling).
    """
    unknown = sorted(set(options) - set(SUPPORTED))
    if unknown:
        raise ValidationError(
            f"Unknown trigger option{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(u) for u in unknown)}; supported: {', '.join(SUPPORTED)}.",
            options=unknown,
        )
