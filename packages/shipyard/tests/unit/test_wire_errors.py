"""Error bodies, HTTP statuses per Shipyard error, and the headers that steer the official
client's retries."""

from __future__ import annotations

import pytest

from shipyard.errors import (
    BatchNotFoundError,
    ConfigError,
    DatabaseBusyError,
    DatabaseFullError,
    IllegalTransitionError,
    InvalidDurationError,
    NotInRunError,
    PayloadTooLargeError,
    RateLimitedError,
    RunNotFoundError,
    ShipyardError,
    StoreUnavailableError,
    TooManyTagsError,
    UnknownQueueError,
    UnknownTaskError,
    ValidationError,
    WaitpointNotFoundError,
)
from shipyard.schemas import (
    RequestBodyError,
    error_headers,
    error_response,
    http_status_for,
    validation_error_response,
)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ValidationError("bad"), 400),
        (TooManyTagsError("too many"), 400),
        (InvalidDurationError("bad duration"), 400),
        (NotInRunError("not in a run"), 400),
        (RunNotFoundError("no run"), 404),
        (BatchNotFoundError("no batch"), 404),
        (WaitpointNotFoundError("no token"), 404),
        (UnknownTaskError("no task"), 404),
        (UnknownQueueError("no queue"), 404),
        (IllegalTransitionError("not delayed"), 409),
        (PayloadTooLargeError("too big", limit=3, size=4), 413),
        (RequestBodyError("send data", param="data"), 422),
        (RateLimitedError("slow down", retry_after_ms=1), 429),
        # The database cannot serve now: retryable, unlike a bug (a full disk, chaos suite).
        (StoreUnavailableError("cannot reach PostgreSQL"), 503),
        (DatabaseBusyError("locked"), 503),
        (DatabaseFullError("the disk is full"), 503),
        (ConfigError("broken"), 500),
        (ShipyardError("unknown"), 500),
    ],
)
def test_status_per_error(error: ShipyardError, status: int) -> None:
    assert http_status_for(error) == status


def test_error_body_carries_message_code_and_param() -> None:
    body = error_response(ValidationError("ttl is bad.", param="options.ttl")).to_wire()
    assert body == {"error": "ttl is bad.", "code": "VALIDATION_ERROR", "param": "options.ttl"}
    assert error_response(RunNotFoundError("Run run_1 not found.", run_id="run_1")).to_wire() == {
        "error": "Run run_1 not found.",
        "code": "RUN_NOT_FOUND",
    }


def test_retry_headers() -> None:
    limited = RateLimitedError("slow down", retry_after_ms=1_500)
    assert error_headers(429, limited) == {"Retry-After": "2"}
    assert error_headers(429) == {}
    for status in (400, 401, 403, 404, 409, 413, 422):
        assert error_headers(status) == {"x-should-retry": "false"}
    assert error_headers(408) == {}
    assert error_headers(500) == {}
    assert error_headers(503, DatabaseFullError("the disk is full")) == {"Retry-After": "1"}


def test_validation_errors_from_fastapi_locations() -> None:
    status, body = validation_error_response(
        [
            {"type": "missing", "loc": ("body", "items", 0, "task"), "msg": "Field required"},
            {"type": "int_parsing", "loc": ("query", "page[size]"), "msg": "Not a number"},
        ]
    )
    assert status == 400
    assert body.param == "items[0].task"
    assert body.error == "Invalid request: items[0].task: Field required; page[size]: Not a number"
    assert body.details is not None and len(body.details) == 2


def test_many_validation_errors_are_summarised() -> None:
    errors = [
        {"type": "missing", "loc": ("body", f"f{i}"), "msg": "Field required"} for i in range(8)
    ]
    _, body = validation_error_response(errors)
    assert body.error.endswith("and 3 more")
    assert body.details is not None and len(body.details) == 8


def test_no_errors_is_still_a_400() -> None:
    assert validation_error_response([])[0] == 400
