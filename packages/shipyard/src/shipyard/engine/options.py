"""Trigger options: parsed and validated once, before anything is written.

Every out-of-range or malformed value is a :class:`ValidationError` naming the option — never a
raw ``OverflowError`` from Python or a ``DataError`` from the database (NUL characters, which
PostgreSQL text cannot hold, are refused here for every string the store indexes).
"""

from __future__ import annotations

import contextlib
import datetime
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.durations import parse_duration_ms, resolve_time
from shipyard.engine.idempotency import normalize
from shipyard.errors import InvalidDurationError, TooManyTagsError, ValidationError
from shipyard.jsonutil import dumps
from shipyard.machines import validate_machine
from shipyard.metadata_ops import check_metadata_size
from shipyard.models.options import check_option_names

MAX_TAGS = 10
MAX_TAG_LENGTH = 128
DEFAULT_IDEMPOTENCY_TTL_MS = 30 * 24 * 3600 * 1000
PRIORITY_MAX_MS = 2_147_483_647
INT32_MAX = 2_147_483_647
MAX_ID_LENGTH = 256


def check_text(value: object, what: str, *, max_length: int = MAX_ID_LENGTH) -> str:
    """A non-empty string of at most ``max_length`` characters without NUL characters."""
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{what} must be a non-empty string; got {value!r:.60}.")
    if len(value) > max_length:
        raise ValidationError(
            f"{what} can be at most {max_length} characters; got {len(value)}.",
            limit=max_length,
            size=len(value),
        )
    if "\x00" in value:
        raise ValidationError(f"{what} cannot contain NUL (\\x00) characters.")
    return value


def check_number(value: object, what: str, *, minimum: float, maximum: float) -> float:
    """A finite int or float (not a bool) within ``[minimum, maximum]``."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValidationError(f"{what} must be a number; got {type(value).__name__}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"{what} must be a finite number; got {value!r}.")
    if not minimum <= value <= maximum:
        raise ValidationError(
            f"{what} must be between {minimum:,g} and {maximum:,g}; got {value!r:.40}.",
            minimum=minimum,
            maximum=maximum,
        )
    return value


DEBOUNCE_KEY_MAX = 512
CONCURRENCY_KEY_MAX = 512


@dataclass(slots=True)
class ParsedOptions:
    """Validated options of one trigger."""

    tags: tuple[str, ...] = ()
    metadata: str = "{}"
    max_attempts: int | None = None
    max_duration: int | None = None
    idempotency_key: str | None = None
    idempotency_key_ttl_ms: int = DEFAULT_IDEMPOTENCY_TTL_MS
    machine: str | None = None
    priority_ms: int = 0
    queue: str | None = None
    concurrency_key: str | None = None
    delay: Any = None
    ttl_ms: int | None = None
    ttl_set: bool = False
    debounce: DebounceOptions | None = None


@dataclass(slots=True)
class DebounceOptions:
    """``debounce={"key", "delay", "mode", "max_delay"}``, validated."""

    key: str
    delay_ms: int
    trailing: bool
    max_delay_ms: int | None


def parse_debounce(value: Any) -> DebounceOptions:
    """Validate the debounce option (``docs/queues.md``)."""
    if not isinstance(value, Mapping):
        raise ValidationError('debounce must be a dict: {"key": ..., "delay": "5s"}.')
    unknown = sorted(set(value) - {"key", "delay", "mode", "max_delay"})
    if unknown:
        raise ValidationError(f"Unknown debounce option(s): {', '.join(unknown)}.")
    key = check_text(value.get("key"), "debounce key", max_length=DEBOUNCE_KEY_MAX)
    if "delay" not in value or isinstance(value["delay"], datetime.datetime):
        raise ValidationError("debounce delay must be a duration such as '5s' (not a date).")
    delay_ms = parse_duration_ms(value["delay"])
    if delay_ms < 1000:
        raise ValidationError(f"debounce delay must be at least 1s; got {delay_ms} ms.")
    mode = value.get("mode", "leading")
    if mode not in ("leading", "trailing"):
        raise ValidationError(f"debounce mode must be 'leading' or 'trailing'; got {mode!r}.")
    max_delay_ms = None
    if value.get("max_delay") is not None:
        max_delay_ms = parse_duration_ms(value["max_delay"])
        if max_delay_ms <= delay_ms:
            raise ValidationError(
                f"debounce max_delay ({max_delay_ms} ms) must be longer than delay "
                f"({delay_ms} ms).",
                max_delay_ms=max_delay_ms,
                delay_ms=delay_ms,
            )
    return DebounceOptions(key, delay_ms, mode == "trailing", max_delay_ms)


def validate_tags(tags: str | Sequence[str] | None) -> tuple[str, ...]:
    """At most 10 tags of 1–128 characters; empty strings are dropped, duplicates merged."""
    if tags is None:
        return ()
    items = [tags] if isinstance(tags, str) else list(tags)
    cleaned: list[str] = []
    for tag in items:
        if not isinstance(tag, str):
            raise TooManyTagsError(f"Tags must be strings; got {type(tag).__name__}.")
        if not tag:
            continue
        if "\x00" in tag:
            raise TooManyTagsError("A tag cannot contain NUL (\\x00) characters.")
        if len(tag) > MAX_TAG_LENGTH:
            raise TooManyTagsError(
                f"A tag can be at most {MAX_TAG_LENGTH} characters; '{tag[:20]}…' has {len(tag)}.",
                limit=MAX_TAG_LENGTH,
                size=len(tag),
            )
        if tag not in cleaned:
            cleaned.append(tag)
    if len(cleaned) > MAX_TAGS:
        raise TooManyTagsError(
            f"A run can have at most {MAX_TAGS} tags; got {len(cleaned)}.",
            limit=MAX_TAGS,
            size=len(cleaned),
        )
    return tuple(cleaned)


@contextlib.contextmanager
def _naming(option: str) -> Iterator[None]:
    """Say which option a duration or time error is about (``delay: Invalid time …``)."""
    try:
        yield
    except InvalidDurationError as exc:
        raise InvalidDurationError(
            f"{option}: {exc.message}", **{**exc.context, "param": option}
        ) from None


def parse_options(options: Mapping[str, Any], now_ms: int) -> ParsedOptions:
    """Validate trigger keyword options; an unknown option is an error naming it.

    ``now_ms`` bounds absolute times (a ``delay`` more than 100 years ahead is refused).
    """
    if not options:
        return ParsedOptions()  # the common trigger: nothing to validate
    if "connection" in options:
        raise ValidationError(
            "connection= (joining the caller's PostgreSQL transaction) is supported by trigger() "
            "and trigger_and_wait() only, not by batch triggers.",
            options=["connection"],
        )
    check_option_names(options)
    parsed = ParsedOptions(tags=validate_tags(options.get("tags")))
    metadata = options.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise ValidationError("metadata must be a dict.")
        check_metadata_size(metadata)
        parsed.metadata = dumps(dict(metadata), what="Metadata")
    if (max_attempts := options.get("max_attempts")) is not None:
        if not isinstance(max_attempts, int) or isinstance(max_attempts, bool):
            raise ValidationError("max_attempts must be an integer.")
        parsed.max_attempts = max(
            1,
            int(check_number(max_attempts, "max_attempts", minimum=-INT32_MAX, maximum=INT32_MAX)),
        )
    if (max_duration := options.get("max_duration")) is not None:
        seconds = check_number(max_duration, "max_duration", minimum=0, maximum=INT32_MAX)
        parsed.max_duration = max(5, int(seconds))
    if (key := options.get("idempotency_key")) is not None:
        parsed.idempotency_key = normalize(key)
    if (ttl := options.get("idempotency_key_ttl")) is not None:
        with _naming("idempotency_key_ttl"):
            parsed.idempotency_key_ttl_ms = parse_duration_ms(ttl)
    if (machine := options.get("machine")) is not None:
        parsed.machine = validate_machine(machine)
    if (priority := options.get("priority")) is not None:
        seconds = check_number(priority, "priority", minimum=-1e15, maximum=1e15)
        parsed.priority_ms = max(-PRIORITY_MAX_MS, min(round(seconds * 1000), PRIORITY_MAX_MS))
    if (queue := options.get("queue")) is not None:
        name = queue.get("name") if isinstance(queue, Mapping) else getattr(queue, "name", queue)
        parsed.queue = check_text(name, "queue", max_length=128)
    if (key := options.get("concurrency_key")) is not None:
        parsed.concurrency_key = check_text(key, "concurrency_key", max_length=CONCURRENCY_KEY_MAX)
    if (delay := options.get("delay")) is not None:
        with _naming("delay"):
            resolve_time(delay, now_ms)  # validated now; resolved against the clock at insert
        parsed.delay = delay
    if "ttl" in options and options["ttl"] is not None:
        parsed.ttl_set = True
        with _naming("ttl"):
            parsed.ttl_ms = parse_duration_ms(options["ttl"]) or None
    if (debounce := options.get("debounce")) is not None:
        parsed.debounce = parse_debounce(debounce)
    return parsed
