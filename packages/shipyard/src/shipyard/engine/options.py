"""Trigger options: parsed and validated once, before anything is written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.durations import parse_duration_ms
from shipyard.errors import TooManyTagsError, ValidationError
from shipyard.jsonutil import dumps
from shipyard.metadata_ops import check_metadata_size
from shipyard.sdk.idempotency import normalize

MAX_TAGS = 10
MAX_TAG_LENGTH = 128
DEFAULT_IDEMPOTENCY_TTL_MS = 30 * 24 * 3600 * 1000
PRIORITY_MAX_MS = 2_147_483_647

SUPPORTED = (
    "tags",
    "metadata",
    "max_attempts",
    "max_duration",
    "idempotency_key",
    "idempotency_key_ttl",
    "machine",
    "priority",
)


@dataclass(slots=True)
class TriggerOptions:
    """Validated options of one trigger."""

    tags: tuple[str, ...] = ()
    metadata: str = "{}"
    max_attempts: int | None = None
    max_duration: int | None = None
    idempotency_key: str | None = None
    idempotency_key_ttl_ms: int = DEFAULT_IDEMPOTENCY_TTL_MS
    machine: str | None = None
    priority_ms: int = 0


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


def parse_options(options: Mapping[str, Any]) -> TriggerOptions:
    """Validate trigger keyword options; an unknown option is an error naming it."""
    unknown = sorted(set(options) - set(SUPPORTED))
    if unknown:
        raise ValidationError(
            f"Unknown trigger option{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(u) for u in unknown)}; supported: {', '.join(SUPPORTED)}.",
            options=unknown,
        )
    parsed = TriggerOptions(tags=validate_tags(options.get("tags")))
    metadata = options.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise ValidationError("metadata must be a dict.")
        check_metadata_size(metadata)
        parsed.metadata = dumps(dict(metadata), what="Metadata")
    if (max_attempts := options.get("max_attempts")) is not None:
        if not isinstance(max_attempts, int) or isinstance(max_attempts, bool):
            raise ValidationError("max_attempts must be an integer.")
        parsed.max_attempts = max(1, max_attempts)
    if (max_duration := options.get("max_duration")) is not None:
        if not isinstance(max_duration, int | float) or isinstance(max_duration, bool):
            raise ValidationError("max_duration must be a number of seconds.")
        parsed.max_duration = max(5, int(max_duration))
    if (key := options.get("idempotency_key")) is not None:
        parsed.idempotency_key = normalize(key)
    if (ttl := options.get("idempotency_key_ttl")) is not None:
        parsed.idempotency_key_ttl_ms = parse_duration_ms(ttl)
    if (machine := options.get("machine")) is not None:
        from shipyard.sdk.context import MACHINES

        if machine not in MACHINES:
            raise ValidationError(
                f"Unknown machine {machine!r}; presets: {', '.join(MACHINES)}.", machine=machine
            )
        parsed.machine = machine
    if (priority := options.get("priority")) is not None:
        if not isinstance(priority, int | float) or isinstance(priority, bool):
            raise ValidationError("priority must be a number of seconds.")
        parsed.priority_ms = max(-PRIORITY_MAX_MS, min(round(priority * 1000), PRIORITY_MAX_MS))
    return parsed
