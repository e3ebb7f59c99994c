"""Whether a failed attempt is retried, and when (``docs/runs.md``, Retries).

The engine-side checks, in order: a canceled run is not retried; a non-retryable error fails
now; attempt 250 is the global cap; ``attempt >= max_attempts`` fails; otherwise the run is
retried after the backoff delay (or what ``catch_error`` asked for, still bounded by
``max_attempts``).
"""

from __future__ import annotations

import dataclasses
import datetime
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.errors import ApiError, TaskError, ValidationError
from shipyard.retry_policy import MAX_ATTEMPTS_CAP, RetryOptions, backoff_delay_ms

if TYPE_CHECKING:
    from shipyard.config import Settings
    from shipyard.engine.definitions import TaskDefinition

# What a catch_error hook may answer (Trigger.dev's keys, in snake_case).
CATCH_ERROR_KEYS = ("skip_retrying", "retry_at", "retry_delay_ms", "retry", "error")


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


def retry_options(settings: Settings, task: TaskDefinition) -> RetryOptions:
    """The task's retry options, or the configured default (replaced wholesale)."""
    if task.retry is not None:
        return task.retry
    default = RetryOptions.from_value(settings.retries_default)
    assert default is not None
    return default


def retries_disabled(settings: Settings) -> bool:
    """Development with retries turned off."""
    return settings.environment == "development" and not settings.retries_enabled_in_dev


@dataclass(frozen=True, slots=True)
class CatchAnswer:
    """A ``catch_error`` answer, validated: skip retrying, a delay, and the error to record."""

    skip_retrying: bool
    delay_ms: int | None
    error: BaseException


def parse_catch_answer(
    answer: object, error: BaseException, attempt: int, now_ms: int
) -> CatchAnswer:
    """Validate what a ``catch_error`` hook returned.

    A dict with a key other than :data:`CATCH_ERROR_KEYS` (e.g. Trigger.dev's spelling
    ``retryAt``) is a :class:`ValidationError` naming the accepted keys — never silently ignored.
    """
    if not isinstance(answer, Mapping):
        raise ValidationError(
            f"catch_error must return None or a dict with any of "
            f"{', '.join(CATCH_ERROR_KEYS)}; got {type(answer).__name__}."
        )
    unknown = sorted(str(k) for k in answer if k not in CATCH_ERROR_KEYS)
    if unknown:
        raise ValidationError(
            f"catch_error returned unknown key{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(k) for k in unknown)}; accepted keys: "
            f"{', '.join(CATCH_ERROR_KEYS)}.",
            keys=unknown,
        )
    recorded = answer.get("error", error)
    if recorded is None:
        recorded = error
    if not isinstance(recorded, BaseException):
        recorded = Exception(str(recorded))
    if answer.get("skip_retrying"):
        return CatchAnswer(True, None, recorded)
    if (retry_at := answer.get("retry_at")) is not None:
        if isinstance(retry_at, datetime.datetime):
            if retry_at.tzinfo is None:
                retry_at = retry_at.replace(tzinfo=datetime.UTC)
            return CatchAnswer(False, int(retry_at.timestamp() * 1000) - now_ms, recorded)
        if isinstance(retry_at, int | float) and not isinstance(retry_at, bool):
            return CatchAnswer(False, int(retry_at) - now_ms, recorded)
        raise ValidationError("catch_error 'retry_at' must be a datetime or epoch milliseconds.")
    if (delay := answer.get("retry_delay_ms")) is not None:
        if not isinstance(delay, int | float) or isinstance(delay, bool):
            raise ValidationError("catch_error 'retry_delay_ms' must be a number.")
        return CatchAnswer(False, int(delay), recorded)
    if (retry := answer.get("retry")) is not None:
        custom = RetryOptions.from_value(retry)
        assert custom is not None
        custom_delay = backoff_delay_ms(custom, attempt)
        if custom_delay is None:
            return CatchAnswer(True, None, recorded)
        return CatchAnswer(False, custom_delay, recorded)
    return CatchAnswer(False, None, recorded)
