"""Tests for shipyard.sdk.retry (retry.on_throw and retry.fetch) against a real HTTP server."""

from __future__ import annotations

import email.utils
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from shipyard.errors import AbortTaskRunError, ApiError, ValidationError
from shipyard.sdk.retry import on_throw, retry

FAST = {"min_timeout_ms": 1, "max_timeout_ms": 5, "randomize": False}


class _Script:
    """Per-path scripted responses; the last entry repeats. Counts requests per path."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.responses: dict[str, list[tuple[int, dict[str, str], float]]] = {}
        self.counts: dict[str, int] = {}
        self.methods: list[str] = []

    def set(self, path: str, *responses: tuple[int, dict[str, str], float]) -> None:
        self.responses[path] = list(responses)

    def next(self, path: str) -> tuple[int, dict[str, str], float]:
        with self.lock:
            count = self.counts.get(path, 0)
            self.counts[path] = count + 1
            script = self.responses.get(path, [(404, {}, 0.0)])
            return script[min(count, len(script) - 1)]


def _handler(script: _Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            script.methods.append(self.command)
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            status, headers, sleep_s = script.next(self.path)
            if sleep_s:
                time.sleep(sleep_s)
            body = f"status {status}".encode()
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up (timeout test)

        do_GET = _serve
        do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[str, _Script]]:
    script = _Script()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _ok(headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], float]:
    return (200, headers or {}, 0.0)


def _status(code: int, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], float]:
    return (code, headers or {}, 0.0)


# --- on_throw ---------------------------------------------------------------------------------


async def test_on_throw_async_succeeds_after_failures() -> None:
    seen: list[int] = []

    async def flaky(attempt: int) -> str:
        seen.append(attempt)
        if attempt < 3:
            raise RuntimeError(f"boom {attempt}")
        return "done"

    result = await retry.on_throw(flaky, max_attempts=3, min_timeout_ms=1, randomize=False)
    assert result == "done"
    assert seen == [1, 2, 3]


async def test_on_throw_sync_function() -> None:
    calls: list[int] = []

    def flaky(attempt: int) -> int:
        calls.append(attempt)
        if attempt == 1:
            raise ValueError("first")
        return attempt * 10

    assert await on_throw(flaky, min_timeout_ms=1) == 20
    assert calls == [1, 2]


async def test_on_throw_reraises_last_error() -> None:
    calls: list[int] = []

    def always(attempt: int) -> None:
        calls.append(attempt)
        raise KeyError(f"attempt {attempt}")

    with pytest.raises(KeyError, match="attempt 4"):
        await retry.on_throw(always, max_attempts=4, min_timeout_ms=1, max_timeout_ms=2)
    assert calls == [1, 2, 3, 4]


async def test_on_throw_waits_per_backoff() -> None:
    times: list[float] = []

    def failing(attempt: int) -> None:
        times.append(time.monotonic())
        raise RuntimeError("x")

    with pytest.raises(RuntimeError):
        await retry.on_throw(failing, max_attempts=3, min_timeout_ms=40, randomize=False)
    assert times[1] - times[0] >= 0.035
    assert times[2] - times[1] >= 0.075  # 40 * 2


async def test_on_throw_max_attempts_one() -> None:
    calls: list[int] = []

    def failing(attempt: int) -> None:
        calls.append(attempt)
        raise RuntimeError("once")

    with pytest.raises(RuntimeError, match="once"):
        await retry.on_throw(failing, max_attempts=1)
    assert calls == [1]


async def test_on_throw_does_not_retry_abort_or_4xx() -> None:
    calls: list[int] = []

    def abort(attempt: int) -> None:
        calls.append(attempt)
        raise AbortTaskRunError("stop")

    with pytest.raises(AbortTaskRunError):
        await retry.on_throw(abort, min_timeout_ms=1)
    assert calls == [1]

    def not_found(attempt: int) -> None:
        calls.append(attempt)
        raise ApiError("GET /x failed with status 404", status=404)

    with pytest.raises(ApiError):
        await retry.on_throw(not_found, min_timeout_ms=1)
    assert calls == [1, 1]


async def test_on_throw_validates_options() -> None:
    with pytest.raises(ValidationError, match="max_attempts"):
        await retry.on_throw(lambda attempt: attempt + 1, max_attempts=0)


# --- fetch ------------------------------------------------------------------------------------


async def test_fetch_retries_500_then_succeeds(server: tuple[str, _Script]) -> None:
    base, script = server
    script.set("/flaky", _status(500), _status(500), _ok())
    response = await retry.fetch(
        f"{base}/flaky", by_status={"5xx": {"strategy": "backoff", **FAST}}
    )
    assert response.status_code == 200
    assert response.text == "status 200"
    assert script.counts["/flaky"] == 3


async def test_fetch_default_by_status_retries_5xx(server: tuple[str, _Script]) -> None:
    base, script = server
    script.set("/flaky", _status(503), _ok())
    started = time.monotonic()
    response = await retry.fetch(f"{base}/flaky")
    assert response.status_code == 200
    assert script.counts["/flaky"] == 2
    # Default backoff: 1000 ms * (1 + U[0,1)).
    assert time.monotonic() - started >= 0.95


async def test_fetch_404_raises_immediately(server: tuple[str, _Script]) -> None:
    base, script = server
    script.set("/missing", _status(404))
    with pytest.raises(ApiError) as info:
        await retry.fetch(f"{base}/missing")
    assert info.value.context["status"] == 404
    assert info.value.retryable is False
    assert str(info.value) == f"GET {base}/missing failed with status 404 Not Found after 1 attempt"
    assert script.counts["/missing"] == 1


async def test_fetch_exhausted_raises_api_error(server: tuple[str, _Script]) -> None:
    base, script = server
    script.set("/down", _status(502, {"x-trace": "abc"}))
    with pytest.raises(ApiError) as info:
        await retry.fetch(
            f"{base}/down",
            method="post",
            json={"a": 1},
            by_status={"500-599": {"max_attempts": 4, **FAST}},
        )
    assert script.counts["/down"] == 4
    assert script.methods == ["POST"] * 4
    assert info.value.context["status"] == 502
    assert info.value.headers["x-trace"] == "abc"
    assert str(info.value) == (
        f"POST {base}/down failed with status 502 Bad Gateway after 4 attempts"
    )


async def test_fetch_429_retry_after_zero(server: tuple[str, _Script]) -> None:
    base, script = server
    script.set(
        "/limited", _status(429, {"retry-after": "0"}), _status(429, {"retry-after": "0"}), _ok()
    )
    started = time.monotonic()
    response = await retry.fetch(f"{base}/limited", by_status={"429": {"strategy": "headers"}})
    assert response.status_code == 200
    assert script.counts["/limited"] == 3
    # Retry-After 0 means no wait; the backoff it replaces would wait ≥ 1 s + 2 s. The bound is
    # loose on purpose: a loaded machine must not fail it.
    assert time.monotonic() - started < 2.5


async def test_fetch_headers_strategy_uses_reset_epoch(server: tuple[str, _Script]) -> None:
    base, script = server
    # Timed from before the reset is chosen: a pause between the two cannot shorten the wait
    # measured.
    started = time.monotonic()
    reset_s = time.time() + 0.3
    script.set("/reset", _status(429, {"x-ratelimit-reset": f"{reset_s:.3f}"}), _ok())
    response = await retry.fetch(f"{base}/reset", by_status={"429": {"strategy": "headers"}})
    assert response.status_code == 200
    assert script.counts["/reset"] == 2
    assert time.monotonic() - started >= 0.2


async def test_fetch_headers_strategy_http_date_in_past(server: tuple[str, _Script]) -> None:
    base, script = server
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    script.set("/date", _status(429, {"retry-after": past}), _ok())
    response = await retry.fetch(f"{base}/date", by_status={"429": {"strategy": "headers"}})
    assert response.status_code == 200
    assert script.counts["/date"] == 2


async def test_fetch_headers_strategy_custom_reset_header(server: tuple[str, _Script]) -> None:
    base, script = server
    reset_ms = int(time.time() * 1000) + 10
    script.set("/custom", _status(429, {"x-reset-ms": str(reset_ms)}), _ok())
    response = await retry.fetch(
        f"{base}/custom",
        by_status={
            "429": {
                "strategy": "headers",
                "reset_header": "x-reset-ms",
                "reset_format": "unix_timestamp_in_ms",
            }
        },
    )
    assert response.status_code == 200
    assert script.counts["/custom"] == 2


async def test_fetch_headers_strategy_is_bounded(server: tuple[str, _Script]) -> None:
    base, script = server
    script.set("/forever", _status(429, {"retry-after": "0"}))
    with pytest.raises(ApiError) as info:
        await retry.fetch(
            f"{base}/forever", by_status={"429": {"strategy": "headers", "max_attempts": 3}}
        )
    assert info.value.context["status"] == 429
    assert script.counts["/forever"] == 3


async def test_fetch_total_attempts_capped_at_ten(server: tuple[str, _Script]) -> None:
    base, script = server
    script.set("/always", _status(500))
    with pytest.raises(ApiError, match="after 10 attempts"):
        await retry.fetch(f"{base}/always", by_status={"5xx": {"max_attempts": 50, **FAST}})
    assert script.counts["/always"] == 10


async def test_fetch_first_matching_rule_wins_and_lists(server: tuple[str, _Script]) -> None:
    base, script = server
    script.set("/conflict", _status(409), _ok())
    response = await retry.fetch(
        f"{base}/conflict",
        by_status={"408,409,5xx": {**FAST, "max_attempts": 2}, "all": {"max_attempts": 1}},
    )
    assert response.status_code == 200
    assert script.counts["/conflict"] == 2


async def test_fetch_unmatched_status_not_retried(server: tuple[str, _Script]) -> None:
    base, script = server
    script.set("/err", _status(500), _ok())
    with pytest.raises(ApiError) as info:
        await retry.fetch(f"{base}/err", by_status={"429": {"strategy": "backoff"}})
    assert info.value.context["status"] == 500
    assert script.counts["/err"] == 1


async def test_fetch_body_filter(server: tuple[str, _Script]) -> None:
    base, script = server
    script.set("/body", _status(500), _ok())
    seen: list[Any] = []

    def only_if_says_503(body: Any) -> bool:
        seen.append(body)
        return bool(body == "status 503")

    with pytest.raises(ApiError):
        await retry.fetch(f"{base}/body", by_status={"5xx": {"body_filter": only_if_says_503}})
    assert seen == ["status 500"]
    assert script.counts["/body"] == 1


async def test_fetch_3xx_is_returned(server: tuple[str, _Script]) -> None:
    base, script = server
    script.set("/moved", _status(302, {"location": "/elsewhere"}))
    response = await retry.fetch(f"{base}/moved")
    assert response.status_code == 302
    assert script.counts["/moved"] == 1


async def test_fetch_timeout_retried_then_raised(server: tuple[str, _Script]) -> None:
    base, script = server
    script.set("/slow", (200, {}, 0.5))
    with pytest.raises(httpx.TimeoutException):
        await retry.fetch(
            f"{base}/slow", timeout_ms=50, connection_error={"max_attempts": 2, **FAST}
        )
    assert script.counts["/slow"] == 2


async def test_fetch_timeout_then_success(server: tuple[str, _Script]) -> None:
    base, script = server
    # The second request must answer within the timeout: 100 ms was within reach of a loaded
    # host's stall, which would time it out too and make a third.
    script.set("/slow-once", (200, {}, 3.0), _ok())
    response = await retry.fetch(
        f"{base}/slow-once", timeout_ms=1000, connection_error={**FAST, "strategy": "backoff"}
    )
    assert response.status_code == 200
    assert script.counts["/slow-once"] == 2


async def test_fetch_connection_error_retried() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens on this port now
    attempts: list[int] = []

    async def on_request(request: httpx.Request) -> None:
        attempts.append(1)

    async with httpx.AsyncClient(event_hooks={"request": [on_request]}) as client:
        with pytest.raises(httpx.ConnectError):
            await retry.fetch(
                f"http://127.0.0.1:{port}/",
                client=client,
                connection_error={"max_attempts": 3, **FAST},
            )
    assert len(attempts) == 3


async def test_fetch_uses_given_client(server: tuple[str, _Script]) -> None:
    base, script = server
    script.set("/hdr", _ok())
    async with httpx.AsyncClient(base_url=base) as client:
        response = await retry.fetch("/hdr", client=client)
        assert not client.is_closed
    assert response.status_code == 200
    assert script.counts["/hdr"] == 1


@pytest.mark.parametrize(
    ("by_status", "message"),
    [
        ({"abc": {"strategy": "backoff"}}, "Invalid by_status key 'abc'"),
        ({"5x": {"strategy": "backoff"}}, "Invalid by_status key '5x'"),
        ({"600": {"strategy": "backoff"}}, "Invalid by_status key '600'"),
        ({"429": {"strategy": "linear"}}, "strategy must be 'backoff' or 'headers'"),
        ({"429": {"maxAttempts": 3}}, "Unknown option 'maxAttempts'"),
        ({"429": {"reset_header": "x"}}, "Unknown option 'reset_header'"),
        ({"429": {"strategy": "headers", "reset_format": "weird"}}, "reset_format must be"),
    ],
)
async def test_fetch_validates_by_status(by_status: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        await retry.fetch("http://127.0.0.1:9/", by_status=by_status)


async def test_fetch_rejects_timeout_twice() -> None:
    with pytest.raises(ValidationError, match="not both"):
        await retry.fetch("http://127.0.0.1:9/", timeout_ms=10, timeout=1.0)
