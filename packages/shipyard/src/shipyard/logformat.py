"""How Shipyard processes write log lines: text for people, JSON for log collectors.

``shipyard.logger`` passes a run's context and the call's attributes as structured fields
(``record.shipyard``: ``run_id``, ``task_id``, ``attempt``, ``attributes``), never pasted into
the message. :class:`TextFormatter` writes them around the message::

    12:00:01 INFO    shipyard.task: [run_01…] charged amount=5 currency=EUR

and :class:`JsonFormatter` writes one object per line (``SHIPYARD_LOG_FORMAT=json``)::

    {"time": "2024-05-01T12:00:01.250Z", "level": "info", "logger": "shipyard.task",
     "message": "charged", "run_id": "run_01…", "task_id": "charge", "attempt": 1,
     "attributes": {"amount": 5, "currency": "EUR"}}

Example::

    install_handler("info", "json")   # what `shipyard worker` does with SHIPYARD_LOG_FORMAT=json
"""

from __future__ import annotations

import datetime
import json
import logging
import re
from typing import Any

__all__ = ["RECORD_FIELD", "JsonFormatter", "TextFormatter", "install_handler", "structured"]

RECORD_FIELD = "shipyard"
"""The ``LogRecord`` attribute holding the structured fields (``extra={"shipyard": {...}}``)."""

_CONTEXT_KEYS = ("run_id", "task_id", "attempt")
_BARE = re.compile(r"^[^\s\"=]+$")
_TEXT_VALUE_MAX = 500


def structured(record: logging.LogRecord) -> dict[str, Any]:
    """The record's structured fields; ``{}`` for a plain log line."""
    fields = getattr(record, RECORD_FIELD, None)
    return fields if isinstance(fields, dict) else {}


def _compact(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError, RecursionError):
        return repr(type(value))


def _text_value(value: Any) -> str:
    text = value if isinstance(value, str) and _BARE.match(value) else _compact(value)
    if len(text) > _TEXT_VALUE_MAX:
        text = text[:_TEXT_VALUE_MAX] + "…"
    return text


def _printable(text: str) -> str:
    """``text``, with anything UTF-8 cannot encode (a lone surrogate) escaped."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


class TextFormatter(logging.Formatter):
    """``HH:MM:SS LEVEL logger: [run id] message key=value …`` (values compact JSON)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The line, with the run id before the message and the attributes after it."""
        fields = structured(record)
        if not fields:
            return super().formatMessage(record)
        message = record.message
        if fields.get("run_id"):
            message = f"[{fields['run_id']}] {message}"
        attributes = fields.get("attributes")
        if isinstance(attributes, dict) and attributes:
            pairs = " ".join(f"{key}={_text_value(v)}" for key, v in attributes.items())
            message = f"{message} {pairs}"
        saved, record.message = record.message, message
        try:
            return _printable(super().formatMessage(record))
        finally:
            record.message = saved


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ms), level, logger, message and the fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        created = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        entry: dict[str, Any] = {
            "time": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = structured(record)
        for key in _CONTEXT_KEYS:
            if fields.get(key) is not None:
                entry[key] = fields[key]
        if fields.get("attributes"):
            entry["attributes"] = fields["attributes"]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        try:
            text = json.dumps(entry, ensure_ascii=False, default=str)
        except (TypeError, ValueError, RecursionError):
            entry["attributes"] = _compact(entry.get("attributes"))
            text = json.dumps(entry, ensure_ascii=False, default=str)
        if _printable(text) is not text:  # a lone surrogate: escape rather than lose the line
            text = json.dumps(entry, default=str)
        return text


def install_handler(level: str, fmt: str = "text") -> None:
    """Send every log line to stderr in ``fmt`` (``text`` or ``json``) from ``level`` up.

    Does nothing when the root logger has a handler already (as ``logging.basicConfig``).
    """
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler])
