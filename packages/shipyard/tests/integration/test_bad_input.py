"""Bad input gets a specific error naming the limit, and nothing is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shipyard import (
    BatchTooLargeError,
    DuplicateTaskError,
    InvalidDurationError,
    MetadataTooLargeError,
    PayloadTooLargeError,
    SerializationError,
    TooManyTagsError,
    ValidationError,
    batch,
    runs,
    task,
    tasks,
)
from shipyard.config import Settings
from shipyard.discovery import discover
from shipyard.engine.engine import Engine


async def _run_count(engine: Engine) -> int:
    return len([r async for r in runs.list(limit=1000)])


@pytest.fixture
def echo() -> Any:
    @task(id="echo")
    async def echo(payload: Any) -> Any:
        return payload

    return echo


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda t: t.trigger("x" * (3 * 1024 * 1024)), PayloadTooLargeError, "3 MiB"),
        (lambda t: t.trigger({}, tags=[f"t{i}" for i in range(11)]), TooManyTagsError, "10 tags"),
        (lambda t: t.trigger({}, tags=["x" * 129]), TooManyTagsError, "128 characters"),
        (
            lambda t: t.trigger({}, metadata={"blob": "x" * 262_144}),
            MetadataTooLargeError,
            "256 KiB",
        ),
        (lambda t: t.batch_trigger([{}] * 1001), BatchTooLargeError, "1,000 items"),
        # A task no worker has is not an error (PENDING_VERSION); an invalid task id is.
        (lambda t: tasks.trigger("x" * 129, {}), ValidationError, "task id can be at most 128"),
        (
            lambda t: t.trigger({}, idempotency_key="k", idempotency_key_ttl="5 minutes"),
            InvalidDurationError,
            "5 minutes",
        ),
        (lambda t: t.trigger({"when": {1, 2}}), SerializationError, "set"),
        (lambda t: t.trigger({}, delay_seconds=3), ValidationError, "delay_seconds"),
        (lambda t: t.trigger({}, machine="huge"), ValidationError, "small-1x"),
        (lambda t: t.trigger({}, idempotency_key="k" * 2049), ValidationError, "2048"),
    ],
    ids=[
        "payload-over-3MiB",
        "11-tags",
        "129-char-tag",
        "metadata-over-256KiB",
        "batch-of-1001",
        "task-id-too-long",
        "invalid-duration",
        "not-json",
        "unknown-option",
        "unknown-machine",
        "idempotency-key-too-long",
    ],
)
async def test_rejected_with_nothing_written(
    engine: Engine, echo: Any, call: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        await call(echo)
    assert await _run_count(engine) == 0


async def test_a_batch_with_one_bad_item_writes_nothing(engine: Engine, echo: Any) -> None:
    with pytest.raises(SerializationError):
        await batch.trigger([{"id": "echo", "payload": 1}, {"id": "echo", "payload": object()}])
    with pytest.raises(ValidationError, match="task id"):
        await batch.trigger([{"id": "echo", "payload": 1}, {"id": "x" * 129, "payload": 2}])
    assert await _run_count(engine) == 0


async def test_exactly_at_the_limits_is_accepted(engine: Engine, echo: Any) -> None:
    handle = await echo.trigger({}, tags=[f"t{i}" for i in range(10)] + [""], metadata={"a": 1})
    assert (await runs.retrieve(handle.id)).tags == tuple(f"t{i}" for i in range(10))
    big = await echo.batch_trigger([{"n": i} for i in range(1000)])
    assert big.run_count == 1000


def test_duplicate_task_ids_name_both_files(settings: Settings) -> None:
    folder = Path(settings.project_root) / "trigger"
    for name in ("first", "second"):
        (folder / f"{name}.py").write_text(
            "from shipyard import task\n\n"
            f"@task(id='same-id')\nasync def {name}(payload):\n    return 1\n"
        )
    with pytest.raises(DuplicateTaskError) as info:
        discover(settings)
    assert "first.py" in str(info.value) and "second.py" in str(info.value)


def test_task_signature_is_checked() -> None:
    with pytest.raises(ValidationError, match=r"\(payload\) or \(payload, ctx\)"):

        @task(id="bad-signature")
        async def bad(a: Any, b: Any, c: Any) -> None:
            return None
