"""Every MCP tool through the SDK's in-memory client, on both backends.

The server is the real one (``build_server``) over the test's engine; the client is the
official SDK's ``mcp.Client`` connected in-process. Runs are executed by a real in-process
worker (``start_worker``), so results, logs and spans are what a task really recorded.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from pydantic import BaseModel, Field

from shipyard import AbortTaskRunError, logger, metadata, queue, runs, schema_task, task, wait
from shipyard.config import load_settings
from shipyard.engine.engine import Engine
from shipyard.mcp import McpOptions, ToolContext, build_server
from shipyard.testing.eventually import eventually

REPO_ROOT = Path(__file__).resolve().parents[4]
CHANGING = {
    "trigger_task",
    "cancel_run",
    "replay_run",
    "complete_token",
    "pause_queue",
    "resume_queue",
    "start_dev_server",
    "stop_dev_server",
}
EVERY_TOOL = CHANGING | {
    "get_current_worker",
    "get_run_details",
    "list_runs",
    "wait_for_run_to_complete",
    "list_queues",
    "list_schedules",
    "search_docs",
    "dev_server_status",
}


@asynccontextmanager
async def connect(engine: Engine | None = None, **options: Any) -> AsyncIterator[Client]:
    """An in-memory MCP client of a server over ``engine`` with ``options``."""
    flags = McpOptions(**options)
    context = ToolContext(flags, engine=engine) if engine is not None else ToolContext(flags)
    async with Client(build_server(flags, context)) as client:
        yield client


async def call(client: Client, name: str, arguments: dict[str, Any] | None = None) -> Any:
    """Call a tool that must succeed; its structured result."""
    result = await client.call_tool(name, arguments or {})
    text = "\n".join(getattr(block, "text", "") for block in result.content)
    assert not result.is_error, f"{name} failed: {text}"
    return result.structured_content


async def call_error(client: Client, name: str, arguments: dict[str, Any] | None = None) -> str:
    """Call a tool that must fail; its error text (one clear message, no traceback)."""
    result = await client.call_tool(name, arguments or {})
    assert result.is_error, f"{name} unexpectedly succeeded: {result.structured_content}"
    text = "\n".join(getattr(block, "text", "") for block in result.content)
    assert "Traceback" not in text
    return text


class Invoice(BaseModel):
    invoice_id: str
    lines: list[float] = Field(min_length=1)


def define_tasks() -> None:
    """A typed task that logs and traces, an untyped one, and one that aborts."""

    @schema_task(id="send-invoice", schema=Invoice, retry={"max_attempts": 4, "factor": 1.5})
    async def send_invoice(request: Invoice) -> dict[str, Any]:
        logger.info("rendering", invoice_id=request.invoice_id)
        async with logger.trace("render", pages=1):
            await asyncio.sleep(0.02)
            async with logger.trace("upload"):
                await asyncio.sleep(0.02)
                logger.warn("slow upload")
        metadata.set("stage", "sent")
        return {"sent": True, "total": sum(request.lines)}

    @task(id="echo", queue=queue(name="echo-queue", concurrency_limit=2))
    async def echo(payload: Any) -> Any:
        return payload

    @task(id="abort", retry={"max_attempts": 3})
    async def abort(payload: Any) -> None:
        logger.error("giving up", reason="bad input")
        raise AbortTaskRunError("the payload cannot be sent")


# -- listing ----------------------------------------------------------------------------------


async def test_every_tool_is_listed_with_a_description_and_a_bounded_schema(engine):
    async with connect(engine) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == EVERY_TOOL
    for tool in tools.values():
        assert tool.description and len(tool.description) > 60, tool.name
        schema = tool.input_schema
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is (tool.name not in CHANGING)
    wait_timeout = tools["wait_for_run_to_complete"].input_schema["properties"]["timeout_seconds"]
    assert (wait_timeout["default"], wait_timeout["minimum"], wait_timeout["maximum"]) == (
        60,
        0,
        600,
    )
    trigger = tools["trigger_task"].input_schema
    assert trigger["required"] == ["task_id"]
    assert set(trigger["properties"]) == {
        "task_id",
        "payload",
        "delay",
        "tags",
        "idempotency_key",
        "idempotency_key_ttl",
        "ttl",
        "machine",
        "max_attempts",
        "queue",
        "concurrency_key",
    }
    assert trigger["properties"]["tags"]["maxItems"] == 10
    assert trigger["properties"]["machine"]["enum"][0] == "micro"
    assert [alt["type"] for alt in trigger["properties"]["ttl"]["anyOf"]] == ["string", "integer"]
    assert "title" not in trigger["properties"]["task_id"]
    listing = tools["list_runs"].input_schema["properties"]
    assert {"status", "task_id", "tag", "period", "from", "to", "limit", "cursor"} <= set(listing)
    assert listing["limit"]["maximum"] == 100
    assert tools["get_run_details"].input_schema["properties"]["debug"]["default"] is False


async def test_readonly_hides_every_tool_that_changes_something(engine):
    async with connect(engine, readonly=True) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == EVERY_TOOL - CHANGING
        message = await call_error(client, "trigger_task", {"task_id": "echo"})
    assert "--readonly" in message


async def test_older_clients_on_the_handshake_protocol_get_the_same_tools(engine):
    flags = McpOptions()
    server = build_server(flags, ToolContext(flags, engine=engine))
    async with Client(server, mode="legacy") as client:
        assert client.protocol_version < "2026"
        assert {t.name for t in (await client.list_tools()).tools} == EVERY_TOOL
        worker = await call(client, "get_current_worker")
    assert worker["environment"] == "development"


# -- tasks and runs -----------------------------------------------------------------------------


async def test_worker_trigger_wait_and_debug_a_run(engine, start_worker):
    define_tasks()
    await start_worker()
    async with connect(engine) as client:
        worker = await call(client, "get_current_worker")
        by_id = {t["id"]: t for t in worker["tasks"]}
        assert set(by_id) == {"send-invoice", "echo", "abort"}
        assert len(worker["workers"]) == 1
        invoice = by_id["send-invoice"]
        assert invoice["payload_schema"] == Invoice.model_json_schema()
        assert invoice["retry"]["max_attempts"] == 4 and invoice["retry"]["factor"] == 1.5
        assert invoice["queue"]["name"] == "task/send-invoice"
        assert by_id["echo"]["payload_schema"] == {}
        assert by_id["echo"]["queue"] == {
            "name": "echo-queue",
            "concurrency_limit": 2,
            "paused": False,
        }

        triggered = await call(
            client,
            "trigger_task",
            {
                "task_id": "send-invoice",
                "payload": {"invoice_id": "inv_1", "lines": [10.0, 2.5]},
                "tags": ["user_42"],
                "idempotency_key": "inv_1",
                "machine": "small-2x",
                "max_attempts": 2,
                "ttl": "10m",
            },
        )
        run_id = triggered["id"]
        assert run_id.startswith("run_") and triggered["is_cached"] is False
        assert "wait_for_run_to_complete" in triggered["next"]
        again = await call(
            client,
            "trigger_task",
            {"task_id": "send-invoice", "payload": {}, "idempotency_key": "inv_1"},
        )
        assert again["id"] == run_id and again["is_cached"] is True

        done = await call(
            client, "wait_for_run_to_complete", {"run_id": run_id, "timeout_seconds": 30}
        )
        assert done["timed_out"] is False and done["status"] == "COMPLETED"
        assert done["output"] == {"sent": True, "total": 12.5}

        details = await client.call_tool("get_run_details", {"run_id": run_id, "debug": True})
    assert not details.is_error
    data = details.structured_content
    run = data["run"]
    assert run["status"] == "COMPLETED" and run["tags"] == ["user_42"]
    assert run["payload"] == {"invoice_id": "inv_1", "lines": [10.0, 2.5]}
    assert run["metadata"] == {"stage": "sent"} and run["max_attempts"] == 2
    assert [a["status"] for a in run["attempts"]] == ["COMPLETED"]
    assert [(log["level"], log["message"]) for log in data["logs"]] == [
        ("info", "rendering"),
        ("warn", "slow upload"),
    ]
    assert data["logs"][0]["attributes"] == {"invoice_id": "inv_1"}
    spans = {s["name"]: s for s in data["spans"]}
    assert spans["upload"]["parent_id"] == spans["render"]["span_id"]
    assert spans["render"]["attributes"] == {"pages": 1}
    assert spans["render"]["duration_ms"] >= 40
    trace = details.content[-1].text
    lines = trace.splitlines()
    assert lines[0].startswith(f"{run_id} send-invoice COMPLETED, 1 attempt")
    render = next(line for line in lines if "span render" in line)
    upload = next(line for line in lines if "span upload" in line)
    slow = next(line for line in lines if "[warn] slow upload" in line)

    def indent(line: str) -> int:
        return len(line) - len(line.lstrip())

    assert indent(render) < indent(upload) < indent(slow)
    assert '{"pages": 1}' in render
    assert any(line.strip().endswith("status COMPLETED") for line in lines)


async def test_a_failed_run_shows_its_error_attempts_and_logs(engine, start_worker):
    define_tasks()
    await start_worker()
    async with connect(engine) as client:
        run_id = (await call(client, "trigger_task", {"task_id": "abort", "payload": 1}))["id"]
        done = await call(client, "wait_for_run_to_complete", {"run_id": run_id})
        assert done["status"] == "FAILED"
        assert done["error"]["message"] == "the payload cannot be sent"
        details = await call(client, "get_run_details", {"run_id": run_id, "max_logs": 0})
        assert details["logs"] == [] and details["logs_omitted"] == 1
        assert "spans" not in details
        details = await call(client, "get_run_details", {"run_id": run_id})
    assert details["logs"][0]["attributes"] == {"reason": "bad input"}
    assert details["run"]["attempts"][0]["error"]["name"] == "AbortTaskRunError"


async def test_wait_for_a_queued_run_returns_at_its_timeout(engine):
    define_tasks()  # defined here, but no worker runs: the run waits for one
    async with connect(engine) as client:
        run_id = (await call(client, "trigger_task", {"task_id": "echo", "payload": 1}))["id"]
        started = time.monotonic()
        waited = await asyncio.wait_for(
            call(client, "wait_for_run_to_complete", {"run_id": run_id, "timeout_seconds": 1}),
            timeout=30,
        )
        assert time.monotonic() - started >= 1
        assert waited["timed_out"] is True and waited["status"] == "PENDING_VERSION"
        assert "still PENDING_VERSION after 1 s" in waited["message"]
        assert "No worker is running" in waited["message"]
        assert "start_dev_server" in waited["message"]
        once = await call(
            client, "wait_for_run_to_complete", {"run_id": run_id, "timeout_seconds": 0}
        )
        assert once["timed_out"] is True


async def test_list_runs_filters_and_pages(engine):
    define_tasks()
    async with connect(engine) as client:
        ids = []
        for index in range(5):
            tags = ["even"] if index % 2 == 0 else ["odd"]
            triggered = await call(
                client, "trigger_task", {"task_id": "echo", "payload": index, "tags": tags}
            )
            ids.append(triggered["id"])
        other = (await call(client, "trigger_task", {"task_id": "abort"}))["id"]

        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            arguments: dict[str, Any] = {"task_id": "echo", "limit": 2}
            if cursor:
                arguments["cursor"] = cursor
            page = await call(client, "list_runs", arguments)
            seen += [r["id"] for r in page["runs"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == list(reversed(ids)) and pages == 3

        everything = await call(client, "list_runs", {"limit": 100})
        assert [r["id"] for r in everything["runs"]] == [other, *reversed(ids)]
        assert everything["runs"][0]["task_id"] == "abort"
        even = await call(client, "list_runs", {"tag": "even"})
        assert [r["id"] for r in even["runs"]] == [ids[4], ids[2], ids[0]]
        # No worker has the tasks: the runs wait for one.
        queued = await call(client, "list_runs", {"status": ["PENDING_VERSION"], "period": "1h"})
        assert queued["count"] == 6
        assert (await call(client, "list_runs", {"status": ["COMPLETED"]}))["runs"] == []
        future = await call(client, "list_runs", {"from": "2999-01-01T00:00:00Z"})
        assert future["runs"] == []
        past = await call(client, "list_runs", {"to": "2000-01-01T00:00:00Z"})
        assert past["runs"] == []

        both = await call_error(client, "list_runs", {"period": "1d", "from": "2020-01-01"})
        assert both == "Give either period or from, not both."
        bad_cursor = await call_error(client, "list_runs", {"cursor": "page-2"})
        assert "not a next_cursor" in bad_cursor
        bad_status = await call_error(client, "list_runs", {"status": ["DONE"]})
        assert bad_status.startswith("Invalid arguments for list_runs: status.0")
        bad_period = await call_error(client, "list_runs", {"period": "yesterday"})
        assert "period" in bad_period
        bad_time = await call_error(client, "list_runs", {"from": "last tuesday"})
        assert "ISO-8601" in bad_time


async def test_cancel_and_replay(engine):
    define_tasks()
    async with connect(engine) as client:
        run_id = (
            await call(
                client, "trigger_task", {"task_id": "echo", "payload": {"n": 1}, "tags": ["t"]}
            )
        )["id"]
        canceled = await call(client, "cancel_run", {"run_id": run_id})
        assert canceled["status"] == "CANCELED"
        assert "was PENDING_VERSION and is now CANCELED" in canceled["message"]
        again = await call(client, "cancel_run", {"run_id": run_id})
        assert "already finished CANCELED; nothing changed" in again["message"]
        replayed = await call(client, "replay_run", {"run_id": run_id})
        assert replayed["id"] != run_id and replayed["replay_of"] == run_id
    copy = await runs.retrieve(replayed["id"])
    assert copy.payload == {"n": 1} and copy.tags == ("t",)


async def test_complete_token_resumes_the_waiting_run(engine, start_worker):
    token = await wait.create_token(timeout="10m")

    @task(id="approve")
    async def approve(payload: Any) -> Any:
        result = await wait.for_token(payload["token"])
        return result.output

    await start_worker()
    async with connect(engine) as client:
        run_id = (
            await call(
                client, "trigger_task", {"task_id": "approve", "payload": {"token": token.id}}
            )
        )["id"]
        completed = await call(
            client, "complete_token", {"token_id": token.id, "data": {"approved": True}}
        )
        assert completed["status"] == "COMPLETED" and completed["output"] == {"approved": True}
        done = await call(
            client, "wait_for_run_to_complete", {"run_id": run_id, "timeout_seconds": 30}
        )
        assert done["status"] == "COMPLETED" and done["output"] == {"approved": True}
        kept = await call(client, "complete_token", {"token_id": token.id, "data": "late"})
        assert kept["output"] == {"approved": True}
        missing = await call_error(client, "complete_token", {"token_id": "waitpoint_nope"})
    assert missing.startswith("Wait token waitpoint_nope not found")


async def test_queues_list_pause_and_resume(engine, start_worker):
    define_tasks()
    await start_worker()
    async with connect(engine) as client:
        listed = await call(client, "list_queues")
        by_name = {q["name"]: q for q in listed["queues"]}
        assert by_name["echo-queue"]["concurrency_limit"] == 2
        assert by_name["echo-queue"]["paused"] is False
        paused = await call(client, "pause_queue", {"name": "echo-queue"})
        assert paused["queue"]["paused"] is True and "resume_queue" in paused["message"]
        worker = await call(client, "get_current_worker")
        echo = next(t for t in worker["tasks"] if t["id"] == "echo")
        assert echo["queue"]["paused"] is True
        resumed = await call(client, "resume_queue", {"name": "echo-queue"})
        assert resumed["queue"]["paused"] is False
        missing = await call_error(client, "pause_queue", {"name": "nope"})
    assert missing == "Queue 'nope' not found in this environment."


async def test_list_schedules(engine, start_worker):
    from shipyard import schedules

    @schedules.task(id="nightly", cron={"pattern": "0 3 * * *", "timezone": "Europe/Paris"})
    async def nightly(payload):
        return None

    async with connect(engine) as client:
        empty = await call(client, "list_schedules")
        assert empty["data"] == [] and "@schedules.task" in empty["next"]
        await start_worker()
        listed = await call(client, "list_schedules", {"task": "nightly"})
        [schedule] = listed["data"]
        assert (schedule["task"], schedule["type"], schedule["timezone"]) == (
            "nightly",
            "DECLARATIVE",
            "Europe/Paris",
        )
        assert schedule["generator"]["description"] == "At 03:00 every day"
        assert listed["pagination"]["count"] == 1
        bad = await call_error(client, "list_schedules", {"per_page": 0})
    assert "per_page" in bad


async def test_dev_server_start_status_and_stop(engine, tmp_path):
    (tmp_path / "trigger" / "hello.py").write_text(
        "from shipyard import task\n\n\n"
        '@task(id="hello")\n'
        "async def hello(payload):\n"
        '    return {"hello": payload}\n'
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = engine.settings.model_copy(
        update={"server_port": port, "api_port": 0, "functions_port": 0}
    )
    flags = McpOptions()
    context = ToolContext(flags, engine=engine, settings=settings)
    async with Client(build_server(flags, context)) as client:
        idle = await call(client, "dev_server_status", {"log_lines": 0})
        assert idle["running"] is False and idle["log_tail"] == []
        assert (await call(client, "stop_dev_server"))["message"] == "No dev server is running."
        started = await call(client, "start_dev_server", {"timeout_seconds": 60})
        try:
            assert started["message"] == "The dev server is running.", started
            assert started["healthz"]["tasks"] == 1
            assert started["urls"]["engine_server"] == f"http://127.0.0.1:{port}"
            run_id = (await call(client, "trigger_task", {"task_id": "hello", "payload": 1}))["id"]
            done = await call(client, "wait_for_run_to_complete", {"run_id": run_id})
            assert done["output"] == {"hello": 1}
            # The worker logs a run's end just after its finish commits: the line may land a
            # moment after wait_for_run_to_complete saw the run completed.
            status = await eventually(
                lambda: call(client, "dev_server_status", {"log_lines": 200}),
                until=lambda st: any(run_id in line for line in st["log_tail"]),
            )
            assert status["running"] is True and status["pid"] == started["pid"]
        finally:
            stopped = await call(client, "stop_dev_server")
        assert stopped["stopped"] is True
        assert (await call(client, "dev_server_status"))["running"] is False
        bounded = await call_error(client, "start_dev_server", {"timeout_seconds": 121})
    assert "less than or equal to 120" in bounded


# -- errors ---------------------------------------------------------------------------------------


async def test_errors_come_back_as_tool_errors_with_the_cli_message(engine):
    async with connect(engine) as client:
        missing = await call_error(client, "get_run_details", {"run_id": "run_nope"})
        assert missing == "Run run_nope not found in environment 'development'."
        assert (
            await call_error(client, "wait_for_run_to_complete", {"run_id": "run_x"})
        ).startswith("Run run_x not found")
        bad_id = await call_error(client, "trigger_task", {"task_id": "x" * 129})
        assert bad_id == "task id can be at most 128 characters; got 129."
        extra = await call_error(client, "get_run_details", {"run_id": "run_x", "verbose": True})
        assert extra.startswith("Invalid arguments for get_run_details: verbose: Extra inputs")
        required = await call_error(client, "cancel_run", {})
        assert required == "Invalid arguments for cancel_run: run_id: Field required."
        bounded = await call_error(
            client, "wait_for_run_to_complete", {"run_id": "run_x", "timeout_seconds": 601}
        )
        assert "less than or equal to 600" in bounded
        bad_delay = await call_error(client, "trigger_task", {"task_id": "x", "delay": "soon"})
        assert "soon" in bad_delay
        nameless = await call_error(client, "no_such_tool")
    assert nameless.startswith("Unknown tool 'no_such_tool'; available: get_current_worker")


async def test_dev_only_accepts_the_local_development_engine(engine):
    async with connect(engine, dev_only=True) as client:
        assert (await call(client, "list_queues"))["queues"] == []


@pytest.mark.parametrize(
    ("overrides", "expected", "hidden"),
    [
        ({"environment": "staging"}, "its environment is 'staging', not 'development'", None),
        (
            {"database_url": "postgresql://app:s3cret@db.example.com:5432/prod"},
            "its database is on 'db.example.com', not on this machine",
            "s3cret",
        ),
    ],
)
async def test_dev_only_refuses_any_other_engine(tmp_path, overrides, expected, hidden):
    settings = load_settings(project_root=tmp_path, **overrides)
    flags = McpOptions(dev_only=True)
    async with Client(build_server(flags, ToolContext(flags, settings=settings))) as client:
        for name in ("get_current_worker", "list_runs", "list_queues", "start_dev_server"):
            message = await call_error(client, name)
            assert "--dev-only" in message and expected in message
            assert hidden is None or hidden not in message
        # Docs need no engine.
        assert (await call(client, "search_docs", {"query": "anything"}))["results"] == []


async def test_a_remote_api_url_is_used_and_an_unreachable_one_named(engine):
    """With --api-url the engine tools go over HTTP (end to end against a real server in
    tests/client); a server that does not answer is one clear message naming it, and the dev
    server tools, which need this project's engine, refuse."""
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    calls: list[tuple[str, dict[str, Any]]] = [
        ("get_current_worker", {}),
        ("trigger_task", {"task_id": "echo"}),
        ("get_run_details", {"run_id": "run_x"}),
        ("list_runs", {}),
        ("list_queues", {}),
    ]
    async with connect(engine, api_url=url) as client:
        # Side by side: each waits out the client's retries (~2 s) before its error.
        messages = await asyncio.gather(*(call_error(client, *call) for call in calls))
        for message in messages:
            assert f"The engine server at {url} could not be reached" in message, message
        message = await call_error(client, "start_dev_server")
        assert "needs this project's own engine" in message and url in message


async def test_search_docs_reads_the_repository_docs(engine):
    async with connect(engine, project_root=REPO_ROOT) as client:
        found = await call(client, "search_docs", {"query": "concurrency key", "limit": 3})
    top = found["results"][0]
    assert top["file"] == "docs/queues.md"
    assert top["heading"].endswith("Concurrency keys: one sub-queue per key")
    assert "concurrency_key" in top["text"]
    assert len(found["results"]) == 3
