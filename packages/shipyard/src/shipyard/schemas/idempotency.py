"""Idempotency keys over HTTP: ``POST /api/v1/idempotencyKeys/{key}/reset``.

The path carries the key exactly as stored (URL-encoded). The official SDK never sends a raw
key: ``idempotencyKeys.reset(task, key, {scope})`` hashes it client-side first, as
``sha256(hex)`` of ``[...keyParts, ...scopeParts].join("-")`` (``run`` scope adds the parent
run id, ``attempt`` adds the run id and attempt number, ``global`` adds nothing), the same
rule Shipyard's ``idempotency_keys.create`` follows, so the hashes agree. A run- or
attempt-scoped reset from outside a task needs ``parentRunId`` or the SDK throws before any
request. A 64-character key it did not create is sent as is, and on a 404 the SDK retries with
the hash of it; so answer 404 when no run had the key.
"""

from __future__ import annotations

from pydantic import Field

from shipyard.schemas.wire import WireModel

__all__ = ["ResetIdempotencyKeyRequest", "ResetIdempotencyKeyResponse"]


class ResetIdempotencyKeyRequest(WireModel):
    """Body of the reset: which task's runs hold the key (keys are unique per task)."""

    task_identifier: str = Field(min_length=1)


class ResetIdempotencyKeyResponse(WireModel):
    """Response of the reset: the key that was cleared."""

    id: str
