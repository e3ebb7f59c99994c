"""Tests for shipyard.retry_policy: options and the exact backoff formula (``docs/runs.md``)."""

from __future__ import annotations

import random

import pytest

from shipyard.errors import ValidationError
from shipyard.retry_policy import MAX_ATTEMPTS_CAP, RetryOptions, backoff_delay_ms


def test_core_defaults() -> None:
    options = RetryOptions()
    assert (
        options.max_attempts,
        options.factor,
        options.min_timeout_ms,
        options.max_timeout_ms,
        options.randomize,
    ) == (3, 2.0, 1000, 60000, True)
    assert MAX_ATTEMPTS_CAP == 250


def test_documented_example_sequence() -> None:
    options = RetryOptions(max_attempts=10, factor=1.8, min_timeout_ms=500, randomize=False)
    delays = [backoff_delay_ms(options, n) for n in range(1, 5)]
    assert delays == [500, 900, 1620, 2916]


def test_default_options_without_jitter() -> None:
    options = RetryOptions(max_attempts=10, randomize=False)
    delays = [backoff_delay_ms(options, n) for n in range(1, 10)]
    assert delays == [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]


def test_cap_applies() -> None:
    options = RetryOptions(max_attempts=5, min_timeout_ms=1000, max_timeout_ms=10000)
    assert backoff_delay_ms(options, 4, rand=lambda: 0.0) == 8000
    assert backoff_delay_ms(options, 4, rand=lambda: 0.5) == 10000


def test_jitter_is_applied_before_rounding_and_cap() -> None:
    options = RetryOptions(max_attempts=10, factor=2, min_timeout_ms=1000)
    assert backoff_delay_ms(options, 1, rand=lambda: 0.0) == 1000
    assert backoff_delay_ms(options, 1, rand=lambda: 0.5) == 1500
    assert backoff_delay_ms(options, 2, rand=lambda: 0.25) == 2500
    assert backoff_delay_ms(options, 1, rand=lambda: 0.0005) == 1001  # 1000.5 rounds up


def test_rounding_is_half_up() -> None:
    options = RetryOptions(max_attempts=5, factor=1.5, min_timeout_ms=1, randomize=False)
    # 1 * 1.5 ** 1 = 1.5 -> 2 (Python's round would give 2 too); 1.5 ** 3 = 3.375 -> 3
    assert backoff_delay_ms(options, 2) == 2
    assert backoff_delay_ms(options, 4) == 3
    options = RetryOptions(max_attempts=5, factor=2.5, min_timeout_ms=1, randomize=False)
    # 2.5 -> 3 half up (banker's rounding would give 2)
    assert backoff_delay_ms(options, 2) == 3


def test_random_jitter_range() -> None:
    options = RetryOptions(max_attempts=20, min_timeout_ms=1000, max_timeout_ms=20000)
    rng = random.Random(1234)
    for attempt in range(1, 8):
        base = min(20000, 1000 * 2 ** (attempt - 1))
        for _ in range(200):
            delay = backoff_delay_ms(options, attempt, rand=rng.random)
            assert delay is not None
            assert base <= delay <= min(20000, 2 * base)
    # Capped attempts are exactly the cap.
    assert backoff_delay_ms(options, 6, rand=rng.random) == 20000


def test_no_retry_at_or_after_max_attempts() -> None:
    options = RetryOptions(max_attempts=3, randomize=False)
    assert backoff_delay_ms(options, 2) == 2000
    assert backoff_delay_ms(options, 3) is None
    assert backoff_delay_ms(options, 4) is None


def test_max_attempts_one_never_retries() -> None:
    assert backoff_delay_ms(RetryOptions(max_attempts=1), 1) is None


def test_zero_min_timeout_and_huge_attempts() -> None:
    assert backoff_delay_ms(RetryOptions(max_attempts=5, min_timeout_ms=0), 3) == 0
    options = RetryOptions(max_attempts=100_000, max_timeout_ms=5000, randomize=False)
    assert backoff_delay_ms(options, 5000) == 5000


def test_attempt_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="start at 1"):
        backoff_delay_ms(RetryOptions(), 0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 1.5}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"factor": 0}, "factor"),
        ({"factor": -1.0}, "factor"),
        ({"factor": float("inf")}, "factor"),
        ({"min_timeout_ms": -1}, "min_timeout_ms"),
        ({"max_timeout_ms": -5}, "max_timeout_ms"),
        ({"randomize": 1}, "randomize"),
    ],
)
def test_validation(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        RetryOptions(**kwargs)  # type: ignore[arg-type]
    assert info.value.context["field"] == field
    assert field in str(info.value)


def test_from_value_none_uses_default() -> None:
    default = RetryOptions(max_attempts=7)
    assert RetryOptions.from_value(None) is None
    assert RetryOptions.from_value(None, default) is default


def test_from_value_instance_passes_through() -> None:
    options = RetryOptions(max_attempts=2)
    assert RetryOptions.from_value(options, RetryOptions(max_attempts=9)) is options


def test_from_value_mapping_replaces_default_wholesale() -> None:
    default = RetryOptions(max_attempts=9, factor=3.0, min_timeout_ms=5, randomize=False)
    options = RetryOptions.from_value({"max_attempts": 5}, default)
    assert options == RetryOptions(
        max_attempts=5, factor=2.0, min_timeout_ms=1000, max_timeout_ms=60000, randomize=True
    )


def test_from_value_all_fields() -> None:
    options = RetryOptions.from_value(
        {
            "max_attempts": 4,
            "factor": 3,
            "min_timeout_ms": 10,
            "max_timeout_ms": 100,
            "randomize": False,
        }
    )
    assert options == RetryOptions(4, 3.0, 10, 100, False)
    assert options is not None
    assert isinstance(options.factor, float)


def test_from_value_empty_mapping_is_core_defaults() -> None:
    assert RetryOptions.from_value({}, RetryOptions(max_attempts=1)) == RetryOptions()


def test_from_value_rejects_unknown_key() -> None:
    with pytest.raises(ValidationError) as info:
        RetryOptions.from_value({"maxAttempts": 3})
    assert str(info.value).startswith(
        "Unknown retry option 'maxAttempts' (did you mean 'max_attempts'?)"
    )
    with pytest.raises(ValidationError, match="Unknown retry option 'jitter'"):
        RetryOptions.from_value({"jitter": True})


def test_from_value_validates_values() -> None:
    with pytest.raises(ValidationError, match="max_attempts"):
        RetryOptions.from_value({"max_attempts": 0})
    with pytest.raises(ValidationError, match="mapping"):
        RetryOptions.from_value(3)  # type: ignore[arg-type]
