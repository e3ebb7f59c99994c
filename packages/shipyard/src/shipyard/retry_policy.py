"""Retry options and the exact backoff formula (Trigger.dev's). Pure: no I/O, no clock.

``n`` is the 1-based number of the attempt that just failed::

    if n >= max_attempts: no retry
    R = 1 + U[0, 1) if randomize else 1
    delay_ms = round(min(max_timeout_ms, R * min_timeout_ms * factor ** (n - 1)))

Example::

    >>> opts = RetryOptions(factor=1.8, min_timeout_ms=500, max_attempts=5, randomize=False)
    >>> [backoff_delay_ms(opts, n) for n in range(1, 6)]
    [500, 900, 1620, 2916, None]
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.errors import ValidationError

__all__ = ["MAX_ATTEMPTS_CAP", "RetryOptions", "backoff_delay_ms"]

MAX_ATTEMPTS_CAP = 250
"""Global cap on attempts (``MAX_TASK_RUN_ATTEMPTS``): a run past attempt 250 always fails."""

_CAMEL_TO_SNAKE = {
    "maxAttempts": "max_attempts",
    "minTimeoutInMs": "min_timeout_ms",
    "maxTimeoutInMs": "max_timeout_ms",
    "min_timeout_in_ms": "min_timeout_ms",
    "max_timeout_in_ms": "max_timeout_ms",
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class RetryOptions:
    """How a failed attempt is retried. Missing fields take the core defaults.

    Example::

        >>> RetryOptions(max_attempts=5, min_timeout_ms=200).factor
        2.0

    Raises:
        ValidationError: ``max_attempts < 1``, ``factor <= 0``, a negative timeout, or a field
            of the wrong type.
    """

    max_attempts: int = 3
    factor: float = 2.0
    min_timeout_ms: int = 1000
    max_timeout_ms: int = 60000
    randomize: bool = True

    def __post_init__(self) -> None:
        if not _is_int(self.max_attempts) or self.max_attempts < 1:
            raise ValidationError(
                f"retry max_attempts must be an integer >= 1, got {self.max_attempts!r}",
                field="max_attempts",
            )
        factor: Any = self.factor
        if (
            not isinstance(factor, int | float)
            or isinstance(factor, bool)
            or not math.isfinite(factor)
            or factor <= 0
        ):
            raise ValidationError(
                f"retry factor must be a number > 0, got {factor!r}", field="factor"
            )
        for name in ("min_timeout_ms", "max_timeout_ms"):
            value = getattr(self, name)
            if not _is_int(value) or value < 0:
                raise ValidationError(
                    f"retry {name} must be an integer >= 0 (milliseconds), got {value!r}",
                    field=name,
                )
        if not isinstance(self.randomize, bool):
            raise ValidationError(
                f"retry randomize must be True or False, got {self.randomize!r}",
                field="randomize",
            )

    @classmethod
    def from_value(
        cls,
        value: RetryOptions | Mapping[str, Any] | None,
        default: RetryOptions | None = None,
    ) -> RetryOptions | None:
        """Build options from a task's ``retry`` setting.

        ``None`` gives ``default``. A mapping takes snake_case keys (``max_attempts``,
        ``factor``, ``min_timeout_ms``, ``max_timeout_ms``, ``randomize``); keys it leaves out
        take the core defaults, not ``default``'s values: a task's retry replaces the config
        default wholesale.

        Raises:
            ValidationError: an unknown key (named in the message) or an invalid value.

        Example::

            >>> RetryOptions.from_value({"max_attempts": 5}, default=RetryOptions(factor=3))
            RetryOptions(max_attempts=5, factor=2.0, min_timeout_ms=1000, max_timeout_ms=60000, randomize=True)
        """  # noqa: E501
        if value is None:
            return default
        if isinstance(value, RetryOptions):
            return value
        if not isinstance(value, Mapping):
            raise ValidationError(
                f"retry must be RetryOptions or a mapping, got {type(value).__name__}"
            )
        known = {field.name for field in dataclasses.fields(cls)}
        for key in value:
            if key not in known:
                hint = _CAMEL_TO_SNAKE.get(key)
                suggestion = f" (did you mean '{hint}'?)" if hint else ""
                raise ValidationError(
                    f"Unknown retry option '{key}'{suggestion}; known options: "
                    + ", ".join(sorted(known)),
                    field=key,
                )
        kwargs = dict(value)
        if _is_int(kwargs.get("factor")):
            kwargs["factor"] = float(kwargs["factor"])
        return cls(**kwargs)


def backoff_delay_ms(
    options: RetryOptions,
    attempt: int,
    rand: Callable[[], float] = random.random,
) -> int | None:
    """Delay before retrying after ``attempt`` (1-based) failed, or ``None`` for no retry.

    Jitter (``randomize``) multiplies by ``1 + rand()`` before the cap, so ``max_timeout_ms``
    is a true upper bound. Rounding is half-up, as JavaScript's ``Math.round``.

    Example::

        >>> backoff_delay_ms(RetryOptions(randomize=False), 1)
        1000
        >>> backoff_delay_ms(RetryOptions(max_attempts=1), 1) is None
        True
    """
    if attempt < 1:
        raise ValidationError(f"attempt numbers start at 1, got {attempt}", attempt=attempt)
    if attempt >= options.max_attempts:
        return None
    jitter = 1.0 + rand() if options.randomize else 1.0
    if options.min_timeout_ms == 0:
        return 0
    try:
        raw = jitter * options.min_timeout_ms * options.factor ** (attempt - 1)
    except OverflowError:
        # A huge exponent is capped anyway; float ** raises instead of returning inf.
        return options.max_timeout_ms
    return math.floor(min(float(options.max_timeout_ms), raw) + 0.5)
