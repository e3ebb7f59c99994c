"""``shipyard mcp`` as a coding client runs it: a subprocess spoken to over stdio by the
official SDK's client, in a temp project with a trigger/ folder and a SQLite file."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from acceptance_support import Project, free_port, wait_until
from mcp import Client, StdioServerParameters

TASKS = """
from pydantic import BaseModel

from shipyard import logger, metadata, schema_task


class Greeting(BaseModel):
    name: str


@schema_task(id="greet", schema=Greeting)
async def greet(request: Greeting) -> dict:
    logger.info("greeting", name=request.name)
    async with logger.trace("compose", style="short"):
        await asyncio.sleep(0.01)
        async with logger.trace("polish"):
            await asyncio.sleep(0.01)
            logger.info("polished")
    metadata.set("greeted", request.name)
    return {"message": f"Hello {request.name}"}
"""


@asynccontextmanager
async def mcp_session(project: Project, *flags: str, **env: str) -> AsyncIterator[Client]:
    """``python -m shipyard mcp FLAGS`` in the project, as an SDK client session."""
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "shipyard", "mcp", *flags],
        env=project.env(**env),
        cwd=str(project.root),
    )
    async with Client(server, read_timeout_seconds=60) as client:
        yield client


async def call(client: Client, name: str, arguments: dict[str, Any] | None = None) -> Any:
    result = await client.call_tool(name, arguments or {})
    text = "\n".join(getattr(block, "text", "") for block in result.content)
    assert not result.is_error, f"{name} failed: {text}"
    return result


async def test_an_agent_triggers_waits_and_debugs_a_run_over_stdio(project: Project) -> None:
    project.write_tasks("greetings", TASKS)
    worker = project.spawn_worker()
    await project.wait_registered(worker)

    async with mcp_session(project) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        assert {"trigger_task", "cancel_run", "get_current_worker"} <= listed

        current = (await call(client, "get_current_worker")).structured_content
        (greet,) = current["tasks"]
        assert greet["id"] == "greet"
        assert greet["payload_schema"]["required"] == ["name"]
        assert [w["pid"] for w in current["workers"]] == [worker.pid]

        triggered = await call(
            client, "trigger_task", {"task_id": "greet", "payload": {"name": "Ada"}}
        )
        run_id = triggered.structured_content["id"]
        assert "wait_for_run_to_complete" in triggered.structured_content["next"]

        done = await call(
            client, "wait_for_run_to_complete", {"run_id": run_id, "timeout_seconds": 60}
        )
        assert done.structured_content["status"] == "COMPLETED", project.procs.dump()
        assert done.structured_content["output"] == {"message": "Hello Ada"}

        details = await call(client, "get_run_details", {"run_id": run_id, "debug": True})
    data = details.structured_content
    assert [log["message"] for log in data["logs"]] == ["greeting", "polished"]
    assert data["run"]["metadata"] == {"greeted": "Ada"}
    assert {s["name"] for s in data["spans"]} == {"compose", "polish"}
    trace = details.content[-1].text
    print(trace)  # shown with -s: what an agent reads
    compose = next(line for line in trace.splitlines() if "span compose" in line)
    polish = next(line for line in trace.splitlines() if "span polish" in line)
    assert polish.startswith("  " + compose[: len(compose) - len(compose.lstrip())])
    assert '{"style": "short"}' in compose


async def test_readonly_hides_the_tools_that_change_something(project: Project) -> None:
    async with mcp_session(project, "--readonly") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        refused = await client.call_tool("trigger_task", {"task_id": "greet"})
    assert "trigger_task" not in names and "cancel_run" not in names
    assert {"get_current_worker", "get_run_details", "list_runs", "search_docs"} <= names
    assert refused.is_error and "--readonly" in refused.content[0].text


async def test_a_queued_run_without_a_worker_returns_at_the_timeout(project: Project) -> None:
    project.write_tasks("greetings", TASKS)
    worker = project.spawn_worker()
    await project.wait_registered(worker)  # registers the task, then goes away
    worker.kill_group()
    async with mcp_session(project) as client:
        triggered = await call(
            client, "trigger_task", {"task_id": "greet", "payload": {"name": "B"}}
        )
        waited = await call(
            client,
            "wait_for_run_to_complete",
            {"run_id": triggered.structured_content["id"], "timeout_seconds": 1},
        )
    assert waited.structured_content["timed_out"] is True
    assert waited.structured_content["status"] == "QUEUED"


async def test_start_and_stop_the_dev_server(project: Project) -> None:
    project.write_tasks("greetings", TASKS)
    port = free_port()
    env = {
        "SHIPYARD_SERVER_PORT": str(port),
        "SHIPYARD_API_PORT": "0",
        "SHIPYARD_FUNCTIONS_PORT": "0",
    }
    async with mcp_session(project, **env) as client:
        idle = (await call(client, "dev_server_status")).structured_content
        assert idle["running"] is False

        started = (
            await call(client, "start_dev_server", {"timeout_seconds": 60})
        ).structured_content
        assert started["message"] == "The dev server is running.", started
        assert started["urls"]["healthz"] == f"http://127.0.0.1:{port}/healthz"
        assert started["healthz"]["status"] == "ok"
        assert any("engine server" in line for line in started["started"])
        assert len(started["workers"]) == 1

        again = (await call(client, "start_dev_server")).structured_content
        assert again["pid"] == started["pid"] and "already" in again["message"]

        run_id = (
            await call(client, "trigger_task", {"task_id": "greet", "payload": {"name": "Dev"}})
        ).structured_content["id"]
        done = await call(client, "wait_for_run_to_complete", {"run_id": run_id})
        assert done.structured_content["status"] == "COMPLETED"

        stopped = (await call(client, "stop_dev_server")).structured_content
        assert stopped["stopped"] is True
        after = (await call(client, "dev_server_status")).structured_content
        assert after["running"] is False
        assert (await call(client, "stop_dev_server")).structured_content["stopped"] is False


async def test_the_dev_server_stops_when_the_mcp_server_exits(project: Project) -> None:
    project.write_tasks("greetings", TASKS)
    env = {
        "SHIPYARD_SERVER_PORT": str(free_port()),
        "SHIPYARD_API_PORT": "0",
        "SHIPYARD_FUNCTIONS_PORT": "0",
    }
    async with mcp_session(project, **env) as client:
        started = (
            await call(client, "start_dev_server", {"timeout_seconds": 60})
        ).structured_content
        pids = [started["pid"], *(w["pid"] for w in started["workers"])]

    def gone() -> bool:
        for pid in pids:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            return False
        return True

    state = project.root / ".shipyard" / "dev-server.json"
    # The MCP server forgets the dev server (deletes its state file) once it has seen it exit.
    await wait_until(
        lambda: gone() and not state.exists(),
        timeout=30,
        what="the dev server and its worker to exit and their state file to go",
    )
