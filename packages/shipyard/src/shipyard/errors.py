"""Every error Shipyard raises, under one base class.

Each error has a stable ``code`` (reused by the HTTP API) and carries structured context
(``run_id``, ``task_id``, the limit exceeded) as attributes, so callers can act on it
without parsing the message.

The tree::

    ShipyardError
    ├── ConfigError                    settings, .env or pyproject are invalid
    │   └── MissingExtraError          a part whose extra is not installed (``shipyard[engine]``)
    ├── ValidationError                bad input to a public call; nothing was written
    │   ├── PayloadTooLargeError       payload / output over its byte limit
    │   ├── MetadataTooLargeError      metadata over 256 KiB
    │   ├── TooManyTagsError           more than 10 tags, or a tag over 128 chars
    │   ├── BatchTooLargeError         more than 1,000 items in one batch
    │   ├── InvalidDurationError       a duration string the grammar does not accept
    │   ├── SerializationError         a payload that is not JSON-serialisable
    │   │   └── JsonTooDeepError       JSON nested deeper than 64 levels of arrays/objects
    │   ├── IdempotencyKeyError        a key over 2,048 chars, or a scope without context
    │   ├── RequestBodyError           an HTTP body that parses but means something else (422)
    │   ├── InvalidCronExpressionError a cron expression that is not 5 valid fields
    │   ├── UnknownTimezoneError       a time zone name that is not an IANA zone
    │   └── InvalidScheduleWindowError a schedule window other than "30m", "2h" or "N%"
    ├── UnknownTaskError               triggering a task id nobody defined or registered
    ├── UnknownQueueError              a queue name no task or worker defines
    ├── RateLimitedError               the environment's trigger rate limit (retry_after_ms)
    ├── DuplicateTaskError             two tasks with one id (names both files)
    ├── RunNotFoundError               no run with that id in this environment
    ├── RunFinishedError               sending to an input stream of a run that has finished
    ├── BatchNotFoundError             no batch with that id in this environment
    ├── WaitpointNotFoundError         no wait token with that id in this environment
    ├── ScheduleNotFoundError          no schedule with that id in this environment
    ├── WaitpointTimeoutError          a wait token timed out before it was completed
    ├── IllegalTransitionError         a run status change the state machine forbids
    ├── NotInRunError                  a call that only works inside a run, made outside one
    ├── SubtaskUnwrapError             ``Result.unwrap()`` on a failed child run
    ├── RunTimeoutError                ``runs.poll`` / waiting gave up before the run finished
    ├── AuthenticationError            no key, a wrong or revoked key, a bad public token (401)
    ├── ForbiddenError                 valid credentials that do not allow this (HTTP 403)
    ├── KeyNotFoundError               no secret key with that id
    ├── RequestInProgressError         a retried request whose first attempt is still running
    ├── RemoteEngineError              the engine server (SHIPYARD_API_URL) failed or is unreachable
    ├── PortInUseError                 ``shipyard dev``/``server`` cannot listen on its port
    ├── DeployError                    ``shipyard deploy`` cannot start (what is wrong, what to do)
    │   └── EngineImageError           the engine image cannot be built here or named
    ├── StoreError                     the database refused or failed an operation
    │   ├── StoreUnavailableError      the database could not be reached
    │   ├── DatabaseBusyError          SQLite stayed locked by another process for too long
    │   ├── DatabaseReadOnlyError      the SQLite file or its folder is read-only (reads work)
    │   ├── DatabaseCorruptError       the SQLite file is not a database, or is damaged
    │   ├── DatabaseFullError          the disk holding the SQLite file is full
    │   └── ClaimAfterFinishError      a worker's claim failed after its finish was written
    └── TaskError                      raised inside task code, or for it, to steer retries
        ├── AbortTaskRunError          fail now, no retries (hooks still run)
        ├── TaskPayloadParsedError     schema_task payload failed validation (no retry, no hooks)
        ├── MaxDurationExceededError   an attempt ran past max_duration (TIMED_OUT)
        ├── ApiError                   an HTTP error from retry.fetch (4xx except 408/429 is final)
        ├── TaskMiddlewareError        middleware failed outside ``next()`` (retryable)
        ├── TaskOutputError            the task's output is not JSON or over 10 MiB
        ├── NonDeterminismError        a replay reached another durable call than recorded
        └── ParallelWaitError          durable calls awaited concurrently
"""

from __future__ import annotations

from typing import Any


class ShipyardError(Exception):
    """Base class of every Shipyard error. ``code`` is stable across versions."""

    code = "SHIPYARD_ERROR"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context
        for key, value in context.items():
            setattr(self, key, value)

    def to_dict(self) -> dict[str, Any]:
        """The error as the HTTP API reports it."""
        return {"code": self.code, "message": self.message, **self.context}


class ConfigError(ShipyardError):
    """Settings, ``.env`` or ``[tool.shipyard]`` could not be read or are invalid."""

    code = "CONFIG_ERROR"


class MissingExtraError(ConfigError, ImportError):
    """A part of Shipyard needs an extra that is not installed (``extra``, ``modules``).

    Also an :class:`ImportError`, since it is raised where an import would have failed."""

    code = "MISSING_EXTRA"


class ValidationError(ShipyardError):
    """Bad input to a public call. Nothing was written."""

    code = "VALIDATION_ERROR"


class PayloadTooLargeError(ValidationError):
    """A payload or output is over its byte limit (``limit`` and ``size`` in bytes)."""

    code = "PAYLOAD_TOO_LARGE"


class MetadataTooLargeError(ValidationError):
    """Run metadata would be over 256 KiB (``limit`` and ``size`` in bytes)."""

    code = "METADATA_TOO_LARGE"


class TooManyTagsError(ValidationError):
    """More than 10 tags on a run, or one tag longer than 128 characters."""

    code = "INVALID_TAGS"


class BatchTooLargeError(ValidationError):
    """More than 1,000 items in one batch."""

    code = "BATCH_TOO_LARGE"


class InvalidDurationError(ValidationError):
    """A duration string that does not match ``^(\\d+(w|d|hr|h|m|s))+$``."""

    code = "INVALID_DURATION"


class SerializationError(ValidationError):
    """A payload, output or metadata value that is not JSON-serialisable."""

    code = "NOT_SERIALIZABLE"


class JsonTooDeepError(SerializationError):
    """JSON nested deeper than the limit (``limit`` levels of arrays and objects; ``path``).

    Stored values (payloads, outputs, metadata, token data) may nest at most
    ``shipyard.jsonutil.MAX_JSON_DEPTH`` (64) levels, so reading them never exhausts the
    Python stack.
    """

    code = "JSON_TOO_DEEP"


class IdempotencyKeyError(ValidationError):
    """An idempotency key that is too long, or a reset that lacks the context to rebuild it."""

    code = "INVALID_IDEMPOTENCY_KEY"


class InvalidCronExpressionError(ValidationError):
    """A cron expression that is not five valid fields (``expression``; ``field`` when known)."""

    code = "INVALID_CRON_EXPRESSION"


class UnknownTimezoneError(ValidationError):
    """A time zone that is not an IANA zone name such as ``Europe/London`` (``timezone``)."""

    code = "UNKNOWN_TIMEZONE"


class InvalidScheduleWindowError(ValidationError):
    """A schedule window that is not whole minutes or hours up to 24 h, or ``N%`` (``window``)."""

    code = "INVALID_SCHEDULE_WINDOW"


class RequestBodyError(ValidationError):
    """A request body that is well-formed JSON but cannot be accepted as sent (HTTP 422).

    ``param`` names the field the caller should send instead.
    """

    code = "UNPROCESSABLE_BODY"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message, param=param)


class UnknownTaskError(ShipyardError):
    """No task with this id is defined here or registered by any worker."""

    code = "UNKNOWN_TASK"


class UnknownQueueError(ShipyardError):
    """A trigger named a queue that no task in code or registered by a worker defines."""

    code = "UNKNOWN_QUEUE"


class RateLimitedError(ShipyardError):
    """The environment's trigger rate limit was exceeded; retry after ``retry_after_ms``."""

    code = "RATE_LIMITED"
    retry_after_ms: int

    def __init__(self, message: str, *, retry_after_ms: int) -> None:
        super().__init__(message, retry_after_ms=retry_after_ms)


class DuplicateTaskError(ShipyardError):
    """Two tasks were defined with the same id."""

    code = "DUPLICATE_TASK"


class RunNotFoundError(ShipyardError):
    """No run with that id exists in this environment."""

    code = "RUN_NOT_FOUND"


class RunFinishedError(ShipyardError):
    """The run has finished, so it can no longer receive input (``run_id``, ``status``)."""

    code = "RUN_FINISHED"


class BatchNotFoundError(ShipyardError):
    """No batch with that id exists in this environment."""

    code = "BATCH_NOT_FOUND"


class WaitpointNotFoundError(ShipyardError):
    """No wait token with that id in this environment."""

    code = "WAITPOINT_NOT_FOUND"


class ScheduleNotFoundError(ShipyardError):
    """No schedule with that id in this environment (``schedule_id``)."""

    code = "SCHEDULE_NOT_FOUND"


class IllegalTransitionError(ShipyardError):
    """A run status change that the state machine does not allow."""

    code = "ILLEGAL_TRANSITION"


class NotInRunError(ShipyardError):
    """A call that only works inside a running task was made outside one."""

    code = "NOT_IN_RUN"


class DeployError(ShipyardError):
    """A deploy cannot start: what is wrong and what to do, as one message."""

    code = "DEPLOY_ERROR"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message, **context)


class EngineImageError(DeployError):
    """The engine's container image cannot be built here or named: what is wrong, what to do."""

    code = "ENGINE_IMAGE_ERROR"


class SubtaskUnwrapError(ShipyardError):
    """``Result.unwrap()`` was called on a child run that did not succeed."""

    code = "SUBTASK_UNWRAP"

    def __init__(self, run_id: str, task_id: str, cause: Any) -> None:
        message = f"Child run {run_id} of task '{task_id}' did not succeed: {cause}"
        super().__init__(message, run_id=run_id, task_id=task_id)
        self.cause = cause


class RunTimeoutError(ShipyardError):
    """Waiting for a run to finish took longer than allowed."""

    code = "RUN_TIMEOUT"


class PortInUseError(ShipyardError):
    """The engine server's port is taken (``port``, ``host``): pick another with ``--port``."""

    code = "PORT_IN_USE"


class StoreError(ShipyardError):
    """The database refused or failed an operation; the message says what to do."""

    code = "STORE_ERROR"


class StoreUnavailableError(StoreError):
    """The database could not be reached (``where`` is ``host:port/dbname`` or the file)."""

    code = "STORE_UNAVAILABLE"


class DatabaseBusyError(StoreError):
    """The SQLite database stayed locked by another process for too long."""

    code = "DATABASE_BUSY"


class DatabaseReadOnlyError(StoreError):
    """The SQLite file (or its folder) is read-only: reading works, writing does not."""

    code = "DATABASE_READ_ONLY"


class DatabaseCorruptError(StoreError):
    """The SQLite file is not a database, or its contents are damaged."""

    code = "DATABASE_CORRUPT"


class DatabaseFullError(StoreError):
    """The SQLite database could not grow: its disk (or size limit) is full."""

    code = "DATABASE_FULL"


class ClaimAfterFinishError(StoreError):
    """The claim that follows a worker's finish failed, or its answer was lost, after the
    finish had committed (PostgreSQL writes them in two transactions). ``accepted`` is the
    finish's answer, one bool per result; the claim may have committed too, so the worker
    takes its runs as possibly leased to it unseen. Its cause is the claim's error."""

    code = "CLAIM_AFTER_FINISH"

    def __init__(self, accepted: list[bool]) -> None:
        super().__init__("Claiming after a finish failed; the finish was written.")
        self.accepted = accepted


class TaskError(ShipyardError):
    """Base of the errors task code raises to steer what happens to the run."""

    code = "TASK_ERROR"
    retryable = True


class AbortTaskRunError(TaskError):
    """Fail this run now without retrying. ``on_failure`` and ``on_complete`` still run.

    Example::

        if not payload.get("user_id"):
            raise AbortTaskRunError("user_id is required")
    """

    code = "ABORT_TASK_RUN"
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)


class TaskPayloadParsedError(TaskError):
    """A ``schema_task`` payload failed validation when the run started."""

    code = "TASK_PAYLOAD_PARSED_ERROR"
    retryable = False


class MaxDurationExceededError(TaskError):
    """An attempt ran longer than its ``max_duration``; the run ends TIMED_OUT."""

    code = "MAX_DURATION_EXCEEDED"
    retryable = False


class ApiError(TaskError):
    """An HTTP error response. 4xx other than 408 and 429 is not retried."""

    code = "API_ERROR"

    def __init__(self, message: str, *, status: int, headers: dict[str, str] | None = None):
        super().__init__(message, status=status)
        self.headers = headers or {}
        self.retryable = not (400 <= status < 500) or status in (408, 429)


class TaskMiddlewareError(TaskError):
    """Middleware raised outside ``next()``, or did not await it: the attempt fails (retryable)."""

    code = "TASK_MIDDLEWARE_ERROR"


class TaskOutputError(TaskError):
    """The task's return value could not be stored (not JSON, or over 10 MiB)."""

    code = "TASK_OUTPUT_ERROR"


class NonDeterminismError(TaskError):
    """A replay reached a different durable call than the one recorded at the same place.

    The task's code changed the order of its durable calls (waits, trigger_and_wait, tokens)
    between the original execution and the replay; the run fails rather than continue with
    results that belong to other calls.
    """

    code = "TASK_NON_DETERMINISM"
    retryable = False


class ParallelWaitError(TaskError):
    """Durable calls were awaited concurrently (``asyncio.gather`` over waits).

    Use ``batch_trigger_and_wait`` to wait for many runs at once.
    """

    code = "TASK_DID_CONCURRENT_WAIT"
    retryable = False


class WaitpointTimeoutError(ShipyardError):
    """A wait token's ``timeout`` passed before it was completed (``wait.for_token``)."""

    code = "WAITPOINT_TIMEOUT"


class AuthenticationError(ShipyardError):
    """Missing or wrong credentials (HTTP 401): no key, a wrong or revoked secret key, a key of
    another environment's server, a public access token (JWT) that is malformed, forged, for
    another environment or expired. ``status`` is the HTTP status when raised by the client."""

    code = "UNAUTHORIZED"


class ForbiddenError(ShipyardError):
    """Valid credentials that do not allow the request (HTTP 403): a public access token out of
    its scopes, a single-use token used again, a public token on a secret-key route."""

    code = "FORBIDDEN"


class KeyNotFoundError(ShipyardError):
    """No secret key with that id (``shipyard keys revoke``)."""

    code = "KEY_NOT_FOUND"


class RequestInProgressError(ShipyardError):
    """A request carrying a request id whose first attempt is still running (HTTP 409; retry
    it: the retry answers what the first attempt did)."""

    code = "REQUEST_IN_PROGRESS"


class RemoteEngineError(ShipyardError):
    """The engine server at ``SHIPYARD_API_URL`` could not be reached, or failed (HTTP 5xx or
    an answer that is not the API's), after the client's retries. ``status`` is the HTTP
    status when there was an answer; ``url`` the server's base URL."""

    code = "REMOTE_ENGINE_ERROR"
