"""The tasks pages: every registered task with its queue and retry settings, and the Test
page — a JSON payload editor prefilled from the task's schema (or its last run's payload),
the trigger options, and a Trigger button that goes to the new run."""

from __future__ import annotations

import json
import os
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from shipyard.engine.engine import Engine
from shipyard.errors import RateLimitedError, UnknownQueueError, UnknownTaskError, ValidationError
from shipyard.machines import MACHINES
from shipyard.models.schedules import Schedule
from shipyard.models.tasks import RegisteredTask
from shipyard.server.dashboard.auth import Session
from shipyard.server.dashboard.render import render
from shipyard.server.dashboard.runs import parse_json_field
from shipyard.server.dashboard.schedules import tick_payload
from shipyard.server.dashboard.site import PREFIX, Dashboard

__all__ = ["example_payload", "register", "trigger_options"]

_MAX_EXAMPLE_DEPTH = 8


def example_payload(schema: dict[str, Any]) -> Any:
    """A payload that fits a JSON Schema (pydantic's): each required property with its
    default, its first enum value or example, or an empty value of its type."""
    defs = schema.get("$defs") or schema.get("definitions") or {}
    return _example(schema, defs, 0)


def _example(schema: Any, defs: dict[str, Any], depth: int) -> Any:
    if not isinstance(schema, dict) or depth > _MAX_EXAMPLE_DEPTH:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _example(defs.get(ref.rsplit("/", 1)[-1]), defs, depth + 1)
    for key in ("default", "const"):
        if key in schema:
            return schema[key]
    if schema.get("examples"):
        return schema["examples"][0]
    if schema.get("enum"):
        return schema["enum"][0]
    for combined in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(combined) or () if o.get("type") != "null"]
        if options:
            return _example(options[0], defs, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        required = schema.get("required") or list(properties)
        return {
            name: _example(properties[name], defs, depth + 1)
            for name in required
            if name in properties
        }
    if kind == "array":
        item = _example(schema.get("items"), defs, depth + 1)
        return [item] if item is not None and schema.get("minItems", 0) > 0 else []
    return {"string": "", "integer": 0, "number": 0, "boolean": False}.get(str(kind))


def trigger_options(form: dict[str, str]) -> dict[str, Any]:
    """The trigger options the Test page's form sets (empty fields are left out)."""
    options: dict[str, Any] = {}
    if delay := form.get("delay", "").strip():
        options["delay"] = delay
    if ttl := form.get("ttl", "").strip():
        options["ttl"] = ttl
    tags = [t.strip() for t in form.get("tags", "").split(",") if t.strip()]
    if tags:
        options["tags"] = tags
    if key := form.get("idempotency_key", "").strip():
        options["idempotency_key"] = key
    if machine := form.get("machine", "").strip():
        options["machine"] = machine
    if attempts := form.get("max_attempts", "").strip():
        if not attempts.isdigit():
            raise ValidationError(f"Max attempts must be a whole number; got {attempts!r}.")
        options["max_attempts"] = int(attempts)
    if queue := form.get("queue", "").strip():
        options["queue"] = queue
    return options


async def _find(engine: Engine, task_id: str) -> RegisteredTask:
    for task in await engine.list_tasks():
        if task.id == task_id:
            return task
    raise UnknownTaskError(
        f"Task '{task_id}' is not registered in this environment: start a worker that has it.",
        task_id=task_id,
    )


def register(router: APIRouter, dash: Dashboard) -> None:
    """Add the tasks pages and the trigger action to ``router``."""

    async def tasks_page(request: Request, session: Session) -> Response:
        engine = session.engine
        tasks = await engine.list_tasks()
        # Each task's schedules (the first 100 of the environment: enough to show on a list).
        by_task: dict[str, list[Schedule]] = {}
        for schedule in (await engine.list_schedules(per_page=100)).data:
            by_task.setdefault(schedule.task, []).append(schedule)
        root = f"{engine.settings.project_root}{os.sep}"
        files = {t.id: t.file_path.removeprefix(root) for t in tasks}  # relative when inside
        return render(request, "tasks.html", session, tasks=tasks, schedules=by_task, files=files)

    async def initial_payload(engine: Engine, task: RegisteredTask) -> tuple[str, str]:
        """The editor's first text and where it came from."""
        last = await engine.list_runs(task_ids=[task.id], limit=1)
        if last.items:
            run = await engine.retrieve_run(last.items[0].id)
            return json.dumps(run.payload, indent=2, ensure_ascii=False), f"the last run ({run.id})"
        scheduled = (await engine.list_schedules(task=task.id, per_page=1)).data
        if scheduled:
            payload = tick_payload(engine, scheduled[0])
            return json.dumps(payload, indent=2), f"a tick of schedule {scheduled[0].id} now"
        if task.payload_schema:
            return json.dumps(example_payload(task.payload_schema), indent=2), "the task's schema"
        return "{}", "an empty object"

    async def test_page(request: Request, session: Session) -> Response:
        engine = session.engine
        task = await _find(engine, request.path_params["task_id"])
        payload, source = await initial_payload(engine, task)
        return render(
            request,
            "test.html",
            session,
            task=task,
            payload=payload,
            source=source,
            form={},
            error=None,
            machines=list(MACHINES),
            schema=json.dumps(task.payload_schema, indent=2) if task.payload_schema else None,
        )

    async def trigger(request: Request, session: Session, form: dict[str, str]) -> Response:
        engine = session.engine
        task = await _find(engine, request.path_params["task_id"])
        try:
            payload = parse_json_field(form.get("payload"), "The payload")
            handle = await engine.trigger(task.id, payload, trigger_options(form))
        except (ValidationError, UnknownQueueError, RateLimitedError) as exc:
            # The user's input (or the moment) was wrong: show the form again, as typed.
            return render(
                request,
                "test.html",
                session,
                400,
                task=task,
                payload=form.get("payload", ""),
                source=None,
                form=form,
                error=exc.message,
                machines=list(MACHINES),
                schema=json.dumps(task.payload_schema, indent=2) if task.payload_schema else None,
            )
        return RedirectResponse(f"{PREFIX}/runs/{handle.id}", status_code=303)

    router.add_api_route("/tasks", dash.page(tasks_page), methods=["GET"])
    router.add_api_route("/tasks/{task_id}/test", dash.page(test_page), methods=["GET"])
    router.add_api_route("/tasks/{task_id}/trigger", dash.action(trigger), methods=["POST"])
