"""``shipyard tokens list|complete`` and ``shipyard queues list|pause|resume``, as real
``python -m shipyard`` processes against a temp project whose runs a real worker executes:
filters, ``--json`` shapes, the effect on the waiting or queued runs, and bad input as one
line with a non-zero exit code.
"""

from __future__ import annotations

import asyncio

import pytest
from acceptance_support import Project, run_cli

from shipyard.engine.engine import Engine

pytestmark = pytest.mark.timeout(120)

TASKS = """
from shipyard import queue, task, wait


@task(id="approval")
async def approval(payload, ctx):
    token = await wait.create_token(tags=["approval", payload["who"]])
    mark(f"{ctx.run.id}.token", token.id)
    result = await wait.for_token(token)
    return result.output


held = queue(name="held", concurrency_limit=1)


@task(id="held-task", queue=held)
async def held_task(payload):
    return payload
"""

TOKEN_KEYS = {
    "id",
    "url",
    "status",
    "completed_at",
    "timeout_at",
    "idempotency_key",
    "idempotency_key_expires_at",
    "tags",
    "created_at",
    "output",
    "error",
}


async def test_tokens_list_and_complete(project: Project, client_engine: Engine) -> None:
    project.write_tasks("tasks", TASKS)
    worker = project.spawn_worker()
    await project.wait_registered(worker)
    run = await client_engine.trigger("approval", {"who": "alice"}, {})
    token_id = await project.wait_marker(f"{run.id}.token")
    await project.wait_status(run.id, "WAITING")

    listed, alice, bob, completed_only, text, bad_status = await asyncio.gather(
        run_cli(project, "tokens", "list", "--json"),
        run_cli(project, "tokens", "list", "--status", "WAITING", "--tag", "alice", "--json"),
        run_cli(project, "tokens", "list", "--tag", "approval", "--tag", "bob", "--json"),
        run_cli(project, "tokens", "list", "--status", "COMPLETED", "--json"),
        run_cli(project, "tokens", "list"),
        run_cli(project, "tokens", "list", "--status", "DONE"),
    )
    assert listed.code == 0, listed
    [token] = listed.json()
    assert set(token) == TOKEN_KEYS
    assert token["id"] == token_id and token["status"] == "WAITING"
    assert token["tags"] == ["approval", "alice"]
    assert token["url"].startswith("http://") and token_id in token["url"]
    assert token["created_at"].endswith("+00:00") and token["completed_at"] is None
    assert [t["id"] for t in alice.json()] == [token_id]
    assert bob.json() == [] and completed_only.json() == []
    assert text.code == 0 and token_id in text.stdout and "WAITING" in text.stdout, text
    assert "approval, alice" in text.stdout
    assert bad_status.code == 2, bad_status
    assert bad_status.err == (
        "error: Unknown token status 'DONE'; one of WAITING, COMPLETED, TIMED_OUT."
    )

    bad_json, unknown = await asyncio.gather(
        run_cli(project, "tokens", "complete", token_id, "--data", "{not json"),
        run_cli(project, "tokens", "complete", "waitpoint_nope", "--data", "1"),
    )
    assert bad_json.code == 2 and bad_json.err.startswith("error: --data is not valid JSON:")
    assert "Traceback" not in bad_json.stderr
    assert unknown.code == 1 and unknown.stdout == "", unknown
    assert unknown.err == "error: Wait token waitpoint_nope not found in environment 'development'."
    assert project.run_row(run.id)["status"] == "WAITING"  # neither touched the token

    done = await run_cli(
        project, "tokens", "complete", token_id, "--data", '{"approved": true}', "--json"
    )
    assert done.code == 0, done
    completed = done.json()
    assert set(completed) == TOKEN_KEYS
    assert completed["status"] == "COMPLETED" and completed["output"] == {"approved": True}
    assert completed["completed_at"] is not None
    finished = await project.wait_status(run.id, "COMPLETED", timeout=30)
    assert finished["output"] == '{"approved":true}'

    again = await run_cli(project, "tokens", "complete", token_id, "--data", '{"approved": false}')
    assert again.code == 0, again
    assert again.stdout.strip() == f"{token_id} was already COMPLETED; nothing changed."
    [kept] = (await run_cli(project, "tokens", "list", "--json")).json()
    assert kept["status"] == "COMPLETED"


async def test_queues_list_pause_and_resume(project: Project, client_engine: Engine) -> None:
    project.write_tasks("tasks", TASKS)
    worker = project.spawn_worker()
    await project.wait_registered(worker)

    paused = await run_cli(project, "queues", "pause", "held")
    assert paused.code == 0, paused
    assert paused.stdout.strip() == "Queue held paused: 0 running, 0 queued."
    held = await client_engine.trigger("held-task", {"n": 1}, {})

    listed, text, unknown, missing_name = await asyncio.gather(
        run_cli(project, "queues", "list", "--json"),
        run_cli(project, "queues", "list"),
        run_cli(project, "queues", "pause", "nope"),
        run_cli(project, "queues", "resume"),
    )
    assert listed.code == 0, listed
    queues = {q["name"]: q for q in listed.json()}
    assert set(queues) >= {"held", "task/approval"}
    assert queues["held"] == {
        "name": "held",
        "concurrency_limit": 1,
        "limit_override": None,
        "effective_limit": 1,
        "paused": True,
        "running": 0,
        "queued": 1,
    }
    assert queues["task/approval"]["paused"] is False
    assert project.run_row(held.id)["status"] == "QUEUED"

    assert text.code == 0, text
    header = text.stdout.splitlines()[1]
    assert [c.strip() for c in header.strip("┃ ").split("┃")] == [
        "name",
        "running",
        "queued",
        "limit",
        "paused",
    ]
    row = next(line for line in text.stdout.splitlines() if "held" in line)
    assert [c.strip() for c in row.strip("│ ").split("│")] == ["held", "0", "1", "1", "yes"]

    assert unknown.code == 1 and unknown.err == "error: Queue 'nope' not found in this environment."
    # A usage error: the parser's message (typer's), exit 2, no traceback.
    assert missing_name.code == 2 and "Missing argument" in missing_name.err, missing_name
    assert "Traceback" not in missing_name.stderr

    resumed = await run_cli(project, "queues", "resume", "held", "--json")
    assert resumed.code == 0, resumed
    assert resumed.json()["paused"] is False and resumed.json()["name"] == "held"
    await project.wait_status(held.id, "COMPLETED", timeout=30)
