"""Whether a failed attempt is retried, and when (SEMANTICS §1.2–1.4).

The engine-side checks, in order: a canceled run is not retried; a non-retryable error fails
now; attempt 250 is the global cap; ``attempt >= max_attempts`` fails; otherwise the run is
retried after the backoff delay (or what ``catch_error`` asked for, still bounded by
``max_attempts``).
"""

from __future__ import annotations

import dataclasses
import traceback
from dataclasses import dataclass
from typing import Any

from shipyard.errors import ApiError, TaskError
from shipyard.retry_policy import MAX_ATTEMPTS_CAP, RetryOptions, backoff_delay_ms


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """``delay_ms`` is None when the run must fail now."""

    delay_ms: int | None
    reason: str

    @property
    def retry(self) -> bool:
        """True if the run will be attempted again."""
        return self.delay_ms is not None


def is_retryable(error: BaseException) -> bool:
    """False for AbortTaskRunError, schema failures, max duration and final HTTP errors."""
    if isinstance(error, ApiError):
        return bool(error.retryable)
    if isinstance(error, TaskError):
        return type(error).retryable
    return True


def decide(
    *,
    error: BaseException,
    attempt: int,
    max_attempts: int,
    options: RetryOptions,
    override_delay_ms: int | None = None,
    skip_retrying: bool = False,
) -> RetryDecision:
    """Apply the ordered checks; ``override_delay_ms`` comes from ``catch_error``."""
    if skip_retrying:
        return RetryDecision(None, "catch_error asked to skip retrying")
    if not is_retryable(error):
        return RetryDecision(None, f"{type(error).__name__} is not retryable")
    if attempt >= MAX_ATTEMPTS_CAP:
        return RetryDecision(None, f"attempt {attempt} reached the cap of {MAX_ATTEMPTS_CAP}")
    if attempt >= max_attempts:
        return RetryDecision(None, f"attempt {attempt} of {max_attempts}")
    if override_delay_ms is not None:
        return RetryDecision(max(0, override_delay_ms), "catch_error chose the delay")
    # The run's max_attempts (per-trigger override included) bounds the run; the options only
    # shape the delay, so their own max_attempts must not stop a retry the run still allows.
    delay = backoff_delay_ms(dataclasses.replace(options, max_attempts=max_attempts), attempt)
    if delay is None:
        return RetryDecision(None, f"attempt {attempt} of {max_attempts}")
    return RetryDecision(delay, "backoff")


def serialize_error(error: BaseException) -> dict[str, Any]:
    """An exception as ``{name, message, stack}`` (plus ``code`` for Shipyard errors)."""
    data: dict[str, Any] = {
        "name": type(error).__name__,
        "message": str(error),
        "stack": "".join(traceback.format_exception(error)),
    }
    code = getattr(error, "code", None)
    if isinstance(code, str):
        data["code"] = code
    return data
