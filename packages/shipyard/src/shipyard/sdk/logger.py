"""Structured logs and trace spans, kept as run events in order.

Inside a run each call records an event on the run (written every second, before the run
suspends at a durable wait, and at the end of the attempt) and also goes to Python logging
(logger ``shipyard.task``), so ``shipyard dev`` shows it. Outside a run only the Python log
line is written. The Python log record keeps the message as written and carries the run id,
task id, attempt and attributes as structured fields (``record.shipyard``), laid out by the
text or JSON log format (``shipyard.logformat``).

Example::

    logger.info("Fetched page", url=url, status=200)

    @logger.trace("parse")
    async def parse(html: str) -> dict: ...

    async with logger.trace("upload", bucket="media") as span:
        span.set_attribute("bytes", 1024)
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from shipyard.engine.scope import current_scope
from shipyard.errors import ShipyardError
from shipyard.ids import new_id
from shipyard.jsonutil import MAX_JSON_DEPTH, dumps, loads
from shipyard.logformat import RECORD_FIELD
from shipyard.records import NewEvent

_python_log = logging.getLogger("shipyard.task")
_LEVELS = {
    "debug": logging.DEBUG,
    "log": logging.INFO,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
MAX_ATTRIBUTES = 256
MAX_ATTRIBUTE_VALUE = 131_072
F = TypeVar("F", bound=Callable[..., Any])


def _attributes(attributes: dict[str, Any]) -> str | None:
    """The attributes as stored JSON; a value JSON cannot hold is stored as its repr."""
    if not attributes:
        return None
    trimmed: dict[str, Any] = {}
    for key, value in list(attributes.items())[:MAX_ATTRIBUTES]:
        if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_VALUE:
            value = value[:MAX_ATTRIBUTE_VALUE]
        trimmed[str(key)] = value
    try:
        # A span wraps its attributes two levels deep; each value may use the full depth.
        return dumps(trimmed, what="Log attributes", max_depth=MAX_JSON_DEPTH + 2)
    except ShipyardError:
        return dumps({k: _storable(v) for k, v in trimmed.items()})


def _storable(value: Any) -> Any:
    try:
        dumps(value, max_depth=MAX_JSON_DEPTH + 1)
        return value
    except ShipyardError:
        pass
    try:
        text = repr(value)
    except Exception:  # RecursionError from a deep value, or a broken __repr__
        text = f"<{type(value).__name__}>"
    # As repr, not as a string that might be not storable itself (a lone surrogate).
    return text[:MAX_ATTRIBUTE_VALUE].encode("utf-8", "backslashreplace").decode("utf-8")


def _record(kind: str, level: str | None, message: str, attributes: str | None, ts: int) -> None:
    scope = current_scope()
    if scope is None:
        return
    with scope.lock:
        scope.pending_events.append(
            NewEvent(
                run_id=scope.ctx.run.id,
                ts=ts,
                kind=kind,
                level=level,
                message=message,
                attributes=attributes,
            )
        )


class Span:
    """A timed section of a run. Use via :meth:`Logger.trace`."""

    def __init__(self, name: str, attributes: dict[str, Any]) -> None:
        self.name = name
        self.id = new_id("span")
        self.attributes = dict(attributes)
        self.started_at = 0
        self._t0 = 0.0
        self._parent: str | None = None

    def set_attribute(self, key: str, value: Any) -> None:
        """Attach an attribute to the span."""
        self.attributes[key] = value

    def _start(self) -> None:
        self.started_at = int(time.time() * 1000)
        self._t0 = time.perf_counter()
        scope = current_scope()
        if scope is not None:
            self._parent = scope.span_stack[-1] if scope.span_stack else None
            scope.span_stack.append(self.id)

    def _end(self, error: BaseException | None) -> None:
        duration_ms = (time.perf_counter() - self._t0) * 1000
        scope = current_scope()
        if scope is not None and scope.span_stack and scope.span_stack[-1] == self.id:
            scope.span_stack.pop()
        body = {
            "span_id": self.id,
            "parent_id": self._parent,
            "duration_ms": round(duration_ms, 3),
            "status": "error" if error else "ok",
            "attributes": self.attributes,
        }
        if error is not None:
            body["error"] = f"{type(error).__name__}: {error}"
        _record("span", None, self.name, _attributes(body), self.started_at)

    async def __aenter__(self) -> Span:
        self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._end(exc)

    def __enter__(self) -> Span:
        self._start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._end(exc)


class _Trace:
    """What ``logger.trace(name)`` returns: a decorator and a (sync or async) context manager."""

    def __init__(self, name: str, attributes: dict[str, Any]) -> None:
        self._name = name
        self._attributes = attributes
        self._span: Span | None = None

    def __call__(self, fn: F) -> F:
        name, attributes = self._name, self._attributes
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with Span(name, attributes):
                    return await fn(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with Span(name, attributes):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    async def __aenter__(self) -> Span:
        self._span = Span(self._name, self._attributes)
        return await self._span.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._span is not None
        await self._span.__aexit__(exc_type, exc, tb)

    def __enter__(self) -> Span:
        self._span = Span(self._name, self._attributes)
        return self._span.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._span is not None
        self._span.__exit__(exc_type, exc, tb)


class Logger:
    """``logger``: structured logs and spans for the current run."""

    def _log(self, level: str, message: str, attributes: dict[str, Any]) -> None:
        ts = int(time.time() * 1000)
        scope = current_scope()
        encoded = _attributes(attributes)
        if scope is not None:
            _record("log", level, message, encoded, ts)
        if _python_log.isEnabledFor(_LEVELS[level]):
            # The message stays as written; the run and the attributes travel as fields that
            # the text and JSON formats (shipyard.logformat) lay out.
            fields: dict[str, Any] = {}
            if scope is not None:
                fields["run_id"] = scope.ctx.run.id
                fields["task_id"] = scope.ctx.task.id
                fields["attempt"] = scope.ctx.attempt.number
            if encoded is not None:
                fields["attributes"] = loads(encoded)
            _python_log.log(_LEVELS[level], message, extra={RECORD_FIELD: fields})

    def debug(self, message: str, **attributes: Any) -> None:
        """A debug line."""
        self._log("debug", message, attributes)

    def log(self, message: str, **attributes: Any) -> None:
        """A plain log line."""
        self._log("log", message, attributes)

    def info(self, message: str, **attributes: Any) -> None:
        """An info line."""
        self._log("info", message, attributes)

    def warn(self, message: str, **attributes: Any) -> None:
        """A warning."""
        self._log("warn", message, attributes)

    def error(self, message: str, **attributes: Any) -> None:
        """An error line (does not fail the run)."""
        self._log("error", message, attributes)

    def trace(self, name: str, **attributes: Any) -> _Trace:
        """A span: ``@logger.trace("x")`` or ``async with logger.trace("x") as span:``."""
        return _Trace(name, attributes)


logger = Logger()
