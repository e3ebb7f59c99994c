"""``retry``: retry helpers for code inside a task.

Two helpers, both using the same backoff formula as task retries:

* ``await retry.on_throw(fn, max_attempts=..., ...)`` calls ``fn(attempt)`` until it stops
  raising, waiting between attempts, and re-raises the last error once attempts are spent.
* ``await retry.fetch(url, ...)`` makes an HTTP request with httpx and retries error statuses,
  timeouts and connection errors.

Example::

    from shipyard.sdk.retry import retry

    async def load(attempt: int) -> dict:
        return await flaky_call()

    data = await retry.on_throw(load, max_attempts=5, min_timeout_ms=200)
    response = await retry.fetch(
        "https://api.example.com/items",
        by_status={"429": {"strategy": "headers"}, "5xx": {"strategy": "backoff"}},
        timeout_ms=5_000,
    )
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import email.utils
import inspect
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, overload

from shipyard.errors import ApiError, TaskError, ValidationError
from shipyard.retry_policy import RetryOptions, backoff_delay_ms

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_BY_STATUS", "FETCH_MAX_ATTEMPTS", "fetch", "on_throw", "retry"]

T = TypeVar("T")

FETCH_MAX_ATTEMPTS = 10
"""``retry.fetch`` never makes more than this many requests, whatever the options say."""

DEFAULT_BY_STATUS: Mapping[str, Mapping[str, Any]] = {"429,408,409,5xx": {"strategy": "backoff"}}
"""Statuses ``retry.fetch`` retries when ``by_status`` is not given."""

_RETRY_FIELDS = frozenset(field.name for field in dataclasses.fields(RetryOptions))
_HEADERS_FIELDS = frozenset(
    {"limit_header", "remaining_header", "reset_header", "reset_format", "body_filter"}
)
_RESET_FORMATS = ("unix_timestamp", "unix_timestamp_in_ms", "iso_8601", "delta_seconds")
ResetFormat = Literal["unix_timestamp", "unix_timestamp_in_ms", "iso_8601", "delta_seconds"]


def _transient_errors() -> tuple[type[Exception], ...]:
    # Retried like connection failures: the request may never have reached the server.
    # httpx is imported here, not at module level: it costs ~1 s of CLI start-up.
    import httpx

    return (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def _is_retryable_error(exc: Exception) -> bool:
    # AbortTaskRunError and 4xx ApiErrors mean "stop": retrying them cannot help.
    return not (isinstance(exc, TaskError) and not exc.retryable)


@overload
async def on_throw(
    fn: Callable[[int], Awaitable[T]],
    *,
    max_attempts: int = 3,
    factor: float = 2,
    min_timeout_ms: int = 1000,
    max_timeout_ms: int = 60000,
    randomize: bool = True,
) -> T: ...


@overload
async def on_throw(
    fn: Callable[[int], T],
    *,
    max_attempts: int = 3,
    factor: float = 2,
    min_timeout_ms: int = 1000,
    max_timeout_ms: int = 60000,
    randomize: bool = True,
) -> T: ...


async def on_throw(
    fn: Callable[[int], Awaitable[T] | T],
    *,
    max_attempts: int = 3,
    factor: float = 2,
    min_timeout_ms: int = 1000,
    max_timeout_ms: int = 60000,
    randomize: bool = True,
) -> T:
    """Call ``fn(attempt)`` (1-based; sync or async) and retry it while it raises.

    Waits ``backoff_delay_ms`` between attempts. After the last attempt the last error is
    re-raised unchanged. Errors that say not to retry (``AbortTaskRunError``, an ``ApiError``
    for a 4xx other than 408/429, any ``TaskError`` with ``retryable = False``) are re-raised
    at once.

    Raises:
        ValidationError: invalid retry options.

    Example::

        async def charge(attempt: int) -> str:
            return await payments.charge(order_id)

        receipt = await retry.on_throw(charge, max_attempts=4, min_timeout_ms=500)
    """
    options = RetryOptions(
        max_attempts=max_attempts,
        factor=float(factor) if isinstance(factor, int) else factor,
        min_timeout_ms=min_timeout_ms,
        max_timeout_ms=max_timeout_ms,
        randomize=randomize,
    )
    return await _run_with_retries(fn, options)


async def _run_with_retries(fn: Callable[[int], Awaitable[T] | T], options: RetryOptions) -> T:
    attempt = 1
    while True:
        try:
            result = fn(attempt)
            if inspect.isawaitable(result):
                return cast(T, await result)
            return result
        except Exception as exc:
            if not _is_retryable_error(exc):
                raise
            delay = backoff_delay_ms(options, attempt)
            if delay is None:
                raise
        await asyncio.sleep(delay / 1000)
        attempt += 1


@dataclass(frozen=True)
class _StatusRule:
    key: str
    ranges: tuple[tuple[int, int], ...]
    strategy: Literal["backoff", "headers"]
    options: RetryOptions
    reset_header: str | None = None
    reset_format: ResetFormat | None = None
    body_filter: Callable[[Any], bool] | None = None

    def matches_status(self, status: int) -> bool:
        return any(low <= status <= high for low, high in self.ranges)


_SINGLE = re.compile(r"^[1-5]\d\d$")
_RANGE = re.compile(r"^([1-5]\d\d)-([1-5]\d\d)$")
_WILDCARD = re.compile(r"^([1-5])(\d?)(x{1,2})$")


def _parse_status_part(part: str, key: str) -> tuple[int, int]:
    text = part.strip().lower()
    if text == "all":
        return (100, 599)
    if _SINGLE.match(text):
        return (int(text), int(text))
    if match := _RANGE.match(text):
        low, high = int(match.group(1)), int(match.group(2))
        if low <= high:
            return (low, high)
    if (match := _WILDCARD.match(text)) and len(match.group(2)) + len(match.group(3)) == 2:
        prefix = match.group(1) + match.group(2)
        size = 10 ** len(match.group(3))
        low = int(prefix) * size
        return (low, low + size - 1)
    raise ValidationError(
        f"Invalid by_status key {key!r}: use a status ('429'), a range ('500-599'), a class "
        "('5xx'), 'all', or a comma-separated list of these ('429,408,5xx')",
        key=key,
    )


def _parse_rule(key: str, spec: Mapping[str, Any]) -> _StatusRule:
    if not isinstance(spec, Mapping):
        raise ValidationError(f"by_status[{key!r}] must be a mapping with a 'strategy'", key=key)
    ranges = tuple(_parse_status_part(part, key) for part in key.split(","))
    strategy = spec.get("strategy", "backoff")
    if strategy not in ("backoff", "headers"):
        raise ValidationError(
            f"by_status[{key!r}] strategy must be 'backoff' or 'headers', got {strategy!r}",
            key=key,
        )
    allowed = {"strategy", "body_filter"} | _RETRY_FIELDS
    if strategy == "headers":
        allowed |= _HEADERS_FIELDS
    for name in spec:
        if name not in allowed:
            raise ValidationError(
                f"Unknown option {name!r} in by_status[{key!r}] for strategy {strategy!r}; "
                f"known options: {', '.join(sorted(allowed))}",
                key=key,
            )
    retry_fields: dict[str, Any] = {k: v for k, v in spec.items() if k in _RETRY_FIELDS}
    if strategy == "headers":
        # Rate-limit waits are the server's call; bound them only by the fetch-wide cap.
        retry_fields.setdefault("max_attempts", FETCH_MAX_ATTEMPTS)
    options = RetryOptions.from_value(retry_fields)
    assert options is not None  # a mapping always yields options
    reset_format = spec.get("reset_format")
    if reset_format is not None and reset_format not in _RESET_FORMATS:
        raise ValidationError(
            f"by_status[{key!r}] reset_format must be one of {', '.join(_RESET_FORMATS)}",
            key=key,
        )
    body_filter = spec.get("body_filter")
    if body_filter is not None and not callable(body_filter):
        raise ValidationError(
            f"by_status[{key!r}] body_filter must be a callable taking the parsed body", key=key
        )
    reset_header = spec.get("reset_header")
    return _StatusRule(
        key=key,
        ranges=ranges,
        strategy=strategy,
        options=options,
        reset_header=str(reset_header) if reset_header else None,
        reset_format=reset_format,
        body_filter=body_filter,
    )


def _connection_options(value: Mapping[str, Any] | None) -> RetryOptions:
    if value is None:
        return RetryOptions()
    fields = dict(value)
    strategy = fields.pop("strategy", "backoff")
    if strategy != "backoff":
        raise ValidationError(f"connection_error strategy must be 'backoff', got {strategy!r}")
    options = RetryOptions.from_value(fields)
    assert options is not None
    return options


def _response_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _find_rule(rules: list[_StatusRule], response: httpx.Response) -> _StatusRule | None:
    for rule in rules:
        if not rule.matches_status(response.status_code):
            continue
        if rule.body_filter is not None and not rule.body_filter(_response_body(response)):
            continue
        return rule
    return None


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _epoch_to_wait_ms(epoch: float, now_ms: float) -> int:
    # Values this large are already milliseconds (seconds would be past the year 33658).
    epoch_ms = epoch if epoch >= 1e12 else epoch * 1000
    return math.ceil(epoch_ms - now_ms)


def _http_date_ms(text: str) -> float | None:
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp() * 1000


def _reset_wait_ms(value: str, reset_format: ResetFormat | None, now_ms: float) -> int | None:
    text = value.strip()
    number = _number(text)
    if reset_format == "unix_timestamp":
        return None if number is None else math.ceil(number * 1000 - now_ms)
    if reset_format == "unix_timestamp_in_ms":
        return None if number is None else math.ceil(number - now_ms)
    if reset_format == "delta_seconds":
        return None if number is None else math.ceil(number * 1000)
    if reset_format == "iso_8601":
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        return math.ceil(moment.timestamp() * 1000 - now_ms)
    if number is not None:
        # Small numbers are a delta in seconds, large ones an epoch (s or ms).
        return math.ceil(number * 1000) if number < 1e9 else _epoch_to_wait_ms(number, now_ms)
    date_ms = _http_date_ms(text)
    return None if date_ms is None else math.ceil(date_ms - now_ms)


def _headers_wait_ms(rule: _StatusRule, headers: httpx.Headers, now_ms: float) -> int | None:
    """Wait before retrying, read from the response headers; ``None`` when none say."""
    if rule.reset_header and (value := headers.get(rule.reset_header)) is not None:
        wait = _reset_wait_ms(value, rule.reset_format, now_ms)
        if wait is not None:
            return max(0, wait)
    if (value := headers.get("retry-after")) is not None:
        text = value.strip()
        seconds = _number(text)
        if seconds is not None:
            return max(0, math.ceil(seconds * 1000))
        date_ms = _http_date_ms(text)
        if date_ms is not None:
            return max(0, math.ceil(date_ms - now_ms))
    if (value := headers.get("x-ratelimit-reset")) is not None:
        wait = _reset_wait_ms(value, None, now_ms)
        if wait is not None:
            return max(0, wait)
    return None


def _status_error(method: str, url: str, response: httpx.Response, attempts: int) -> ApiError:
    tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
    reason = f" {response.reason_phrase}" if response.reason_phrase else ""
    return ApiError(
        f"{method} {url} failed with status {response.status_code}{reason} after {tries}",
        status=response.status_code,
        headers=dict(response.headers.items()),
    )


async def fetch(
    url: str,
    *,
    method: str = "GET",
    by_status: Mapping[str, Mapping[str, Any]] | None = None,
    timeout_ms: int | None = None,
    connection_error: Mapping[str, Any] | None = None,
    client: httpx.AsyncClient | None = None,
    **request_kwargs: Any,
) -> httpx.Response:
    """Make an HTTP request with httpx, retrying error statuses, timeouts and lost connections.

    ``by_status`` maps status patterns to a strategy; the first matching pattern wins.
    Patterns: ``"429"``, ``"500-599"``, ``"5xx"``, ``"all"`` or a comma-separated list
    (``"429,408,409,5xx"``, the default, with backoff). Strategies:

    * ``{"strategy": "backoff", "max_attempts": 3, "factor": 2, "min_timeout_ms": 1000,
      "max_timeout_ms": 60000, "randomize": True}`` (missing fields take these defaults);
    * ``{"strategy": "headers", "reset_header": "x-ratelimit-reset", "reset_format": ...}``
      waits until the time the server names: ``reset_header`` (when given, read per
      ``reset_format``: ``unix_timestamp``, ``unix_timestamp_in_ms``, ``iso_8601``,
      ``delta_seconds``, or guessed), else ``retry-after`` (seconds or an HTTP date), else
      ``x-ratelimit-reset`` (epoch seconds or ms). With no usable header it backs off. It
      allows up to ``max_attempts`` (default 10) requests. ``limit_header`` and
      ``remaining_header`` are accepted for compatibility and not needed.

    Either strategy may add ``body_filter``: a callable given the parsed JSON body (or text)
    that returns whether this rule applies. Timeouts (``timeout_ms`` per request) and
    connection errors are retried with the ``connection_error`` backoff options (default: 3
    attempts); once spent, the httpx exception is re-raised. No more than 10 requests are made
    in total. The request body must be replayable (``content``, ``json``, ``data``), since it
    is sent again on retry. ``request_kwargs`` go to ``httpx.AsyncClient.request``.

    Returns:
        The response, for any status below 400.

    Raises:
        ApiError: an error status that is not retried (e.g. 404) or whose retries are spent.
            ``status`` and ``headers`` are set; the message names the method, URL and status.
        ValidationError: invalid options.

    Example::

        response = await retry.fetch(
            "https://api.example.com/charge",
            method="POST",
            json={"amount": 100},
            by_status={"429": {"strategy": "headers"}, "500-599": {"max_attempts": 5}},
        )
    """
    import httpx

    method = method.upper()
    rules = [_parse_rule(key, spec) for key, spec in (by_status or DEFAULT_BY_STATUS).items()]
    conn_options = _connection_options(connection_error)
    if timeout_ms is not None:
        if "timeout" in request_kwargs:
            raise ValidationError("Pass either timeout_ms or timeout to retry.fetch, not both")
        if timeout_ms <= 0:
            raise ValidationError(f"timeout_ms must be > 0, got {timeout_ms}")
        request_kwargs["timeout"] = httpx.Timeout(timeout_ms / 1000)

    if client is None:
        async with httpx.AsyncClient() as own_client:
            return await _fetch_with(own_client, url, method, rules, conn_options, request_kwargs)
    return await _fetch_with(client, url, method, rules, conn_options, request_kwargs)


async def _fetch_with(
    client: httpx.AsyncClient,
    url: str,
    method: str,
    rules: list[_StatusRule],
    conn_options: RetryOptions,
    request_kwargs: dict[str, Any],
) -> httpx.Response:
    attempt = 1
    while True:
        try:
            response = await client.request(method, url, **request_kwargs)
        except _transient_errors():
            delay = backoff_delay_ms(conn_options, attempt)
            if delay is None or attempt >= FETCH_MAX_ATTEMPTS:
                raise
        else:
            if response.status_code < 400:
                return response
            rule = _find_rule(rules, response)
            if rule is None:
                raise _status_error(method, url, response, attempt)
            wait: int | None = None
            if rule.strategy == "headers" and attempt < rule.options.max_attempts:
                wait = _headers_wait_ms(rule, response.headers, time.time() * 1000)
            delay = backoff_delay_ms(rule.options, attempt) if wait is None else wait
            if delay is None or attempt >= FETCH_MAX_ATTEMPTS:
                raise _status_error(method, url, response, attempt)
        await asyncio.sleep(delay / 1000)
        attempt += 1


class _Retry:
    """The ``retry`` namespace: ``retry.on_throw(...)`` and ``retry.fetch(...)``."""

    # Written out rather than ``staticmethod(on_throw)``: that keeps only the first overload,
    # so sync callables would not type-check.
    @overload
    async def on_throw(
        self,
        fn: Callable[[int], Awaitable[T]],
        *,
        max_attempts: int = 3,
        factor: float = 2,
        min_timeout_ms: int = 1000,
        max_timeout_ms: int = 60000,
        randomize: bool = True,
    ) -> T: ...

    @overload
    async def on_throw(
        self,
        fn: Callable[[int], T],
        *,
        max_attempts: int = 3,
        factor: float = 2,
        min_timeout_ms: int = 1000,
        max_timeout_ms: int = 60000,
        randomize: bool = True,
    ) -> T: ...

    async def on_throw(
        self,
        fn: Callable[[int], Awaitable[T] | T],
        *,
        max_attempts: int = 3,
        factor: float = 2,
        min_timeout_ms: int = 1000,
        max_timeout_ms: int = 60000,
        randomize: bool = True,
    ) -> T:
        """Same as the module-level :func:`on_throw`."""
        options = RetryOptions(
            max_attempts=max_attempts,
            factor=float(factor) if isinstance(factor, int) else factor,
            min_timeout_ms=min_timeout_ms,
            max_timeout_ms=max_timeout_ms,
            randomize=randomize,
        )
        return await _run_with_retries(fn, options)

    fetch = staticmethod(fetch)


retry = _Retry()
"""Retry helpers for task code. ``await retry.on_throw(fn, ...)``, ``await retry.fetch(url)``."""
