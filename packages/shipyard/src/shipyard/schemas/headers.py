"""HTTP header names of the Trigger.dev wire protocol (lower case, as HTTP/2 and Starlette
spell them).

What the official client sends on every request, what it reads from responses, and what the
server may use to steer its retries. ``tests/fixtures/trigger-sdk/PROTOCOL.md`` in this
repository records where each comes from.
"""

from __future__ import annotations

__all__ = [
    "API_VERSION",
    "API_VERSION_HEADER",
    "BRANCH_HEADER",
    "RATELIMIT_RESET_HEADER",
    "REQUEST_IDEMPOTENCY_HEADER",
    "RETRY_AFTER_HEADER",
    "SHOULD_RETRY_HEADER",
    "SOURCE_HEADER",
    "TRIGGER_JWT_CLAIMS_HEADER",
    "TRIGGER_JWT_HEADER",
    "TRIGGER_VERSION_HEADER",
]

TRIGGER_JWT_HEADER = "x-trigger-jwt"
"""Response header on trigger, batch create and token create: the public access token (JWT)
for what was created. Without it the client signs a token itself with the secret key."""

TRIGGER_JWT_CLAIMS_HEADER = "x-trigger-jwt-claims"
"""Response header: JSON claims the client merges into a token it signs itself (only read when
``x-trigger-jwt`` is absent)."""

REQUEST_IDEMPOTENCY_HEADER = "x-trigger-request-idempotency-key"
"""Request header: a random UUID per logical call, the same on every retry of it. A server that
remembers it can answer a retried trigger with the run the first attempt created."""

SHOULD_RETRY_HEADER = "x-should-retry"
"""Response header: ``"true"``/``"false"`` overrides the client's own retry decision."""

RATELIMIT_RESET_HEADER = "x-ratelimit-reset"
"""Response header on 429: epoch milliseconds when the limit resets (the client waits until
then, plus up to a second of jitter)."""

RETRY_AFTER_HEADER = "retry-after"
"""Response header on 429: seconds to wait (read by the batch item stream; the main client
prefers ``x-ratelimit-reset``)."""

API_VERSION_HEADER = "x-trigger-api-version"
"""Request header: the client's API version, :data:`API_VERSION` for the pinned SDK."""

API_VERSION = "2025-07-16"
"""The API version @trigger.dev/sdk 4.8.3 sends."""

TRIGGER_VERSION_HEADER = "trigger-version"
"""Request header: the SDK package version, e.g. ``4.8.3``."""

SOURCE_HEADER = "x-trigger-source"
"""Request header: ``sdk`` unless the caller set another value."""

BRANCH_HEADER = "x-trigger-branch"
"""Request header: the preview (or dev) branch, sent when ``TRIGGER_PREVIEW_BRANCH``,
``VERCEL_GIT_COMMIT_REF`` or ``TRIGGER_DEV_BRANCH`` is set where the client runs."""
