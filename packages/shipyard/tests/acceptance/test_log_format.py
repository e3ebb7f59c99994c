"""Worker log lines keep ``logger`` attributes as fields: text for people, JSON for collectors.

A real ``shipyard worker`` runs a task that calls ``logger.info("charged", amount=5, …)``.
With ``SHIPYARD_LOG_FORMAT=json`` every line the worker writes is one JSON object, and the task's
line has ``message`` "charged" (nothing pasted into it), ``attributes`` {"amount": 5, …} and the
run id. With the text format the message stays clean and the attributes follow it as
``key=value``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from acceptance_support import POLL, Project, wait_until

from shipyard.engine.engine import Engine
from shipyard.logformat import RECORD_FIELD, JsonFormatter, TextFormatter

pytestmark = [pytest.mark.timeout(90)]

CHARGE = """
from shipyard import logger, task


@task(id="charge")
async def charge(payload: None) -> str:
    logger.info("charged", amount=5, currency="EUR", note="two words", items=[1, {"a": None}])
    logger.warn("100% done")
    return "ok"
"""


async def _run_worker(project: Project, client_engine: Engine, log_format: str) -> tuple[str, str]:
    project.write_tasks("charge", CHARGE)
    worker = project.spawn_shipyard(
        "worker", "--poll", str(POLL), name=f"worker-{log_format}", SHIPYARD_LOG_FORMAT=log_format
    )
    await project.wait_registered(worker)
    handle = await client_engine.trigger("charge", None, {})
    record = await client_engine.wait_for_final(handle.id, timeout=30)
    assert record.status == "COMPLETED", record
    await wait_until(
        lambda: "100% done" in worker.output(),
        timeout=10,
        what="the task's log lines",
        context=worker.output,
    )
    return handle.id, worker.output()


async def test_json_format_has_the_message_attributes_and_run_id_as_fields(
    project: Project, client_engine: Engine
) -> None:
    run_id, output = await _run_worker(project, client_engine, "json")
    lines = [line for line in output.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    charged = [e for e in entries if e["message"] == "charged"]
    assert len(charged) == 1, output
    entry = charged[0]
    assert entry["attributes"] == {
        "amount": 5,
        "currency": "EUR",
        "note": "two words",
        "items": [1, {"a": None}],
    }
    assert (entry["run_id"], entry["task_id"], entry["attempt"]) == (run_id, "charge", 1)
    assert (entry["level"], entry["logger"]) == ("info", "shipyard.task")
    assert entry["time"].endswith("Z") and "T" in entry["time"]
    warned = next(e for e in entries if e["message"] == "100% done")
    assert warned["level"] == "warning" and "attributes" not in warned
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)


async def test_text_format_keeps_the_message_clean_with_attributes_after_it(
    project: Project, client_engine: Engine
) -> None:
    run_id, output = await _run_worker(project, client_engine, "text")
    line = next(line for line in output.splitlines() if "charged" in line)
    assert line.split(" ", 1)[1] == (
        f"INFO    shipyard.task: [{run_id}] charged amount=5 currency=EUR "
        'note="two words" items=[1,{"a":null}]'
    )
    assert f"shipyard.task: [{run_id}] 100% done" in output


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()])
def test_plain_records_and_exceptions_format_too(formatter: logging.Formatter) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("shipyard.worker", logging.ERROR, "f", 1, "x %s", ("y",), None)
        record.exc_info = sys.exc_info()
    text = formatter.format(record)
    assert "x y" in text and "ValueError: boom" in text
    if isinstance(formatter, JsonFormatter):
        assert json.loads(text)["exception"].endswith("ValueError: boom")


def test_unusual_attribute_values_never_break_a_line() -> None:
    fields: dict[str, Any] = {"attributes": {"odd": "\ud800", "long": "x" * 2000, "n": None}}
    record = logging.LogRecord("shipyard.task", logging.INFO, "f", 1, "m", None, None)
    setattr(record, RECORD_FIELD, fields)
    render: Callable[[logging.Formatter], str] = lambda f: f.format(record)  # noqa: E731
    text = render(TextFormatter())
    assert text.endswith("… n=null") and "odd=\\ud800 " in text
    text.encode("utf-8")  # printable
    parsed = json.loads(render(JsonFormatter()))
    assert parsed["attributes"]["odd"] == "\ud800" and len(parsed["attributes"]["long"]) == 2000
