"""The ``shipyard`` CLI: thin commands over the same public calls user code makes."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from shipyard import __version__
from shipyard.cli.commitmsg import commit_msg
from shipyard.cli.deploy import deploy_app
from shipyard.cli.output import console, fail, print_json
from shipyard.cli.tooling import check_envs, deps
from shipyard.config import Settings, load_settings
from shipyard.errors import ShipyardError

T = TypeVar("T")

app = typer.Typer(
    name="shipyard",
    help="Shipyard: durable tasks, the app template, and the tools around them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
runs_app = typer.Typer(help="Inspect and manage runs.", no_args_is_help=True)
tasks_app = typer.Typer(help="Tasks registered by workers.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(tasks_app, name="tasks")


def _version(value: bool) -> None:
    if value:
        console.print(f"shipyard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    """Shipyard command line."""


def setup_logging(level: str) -> None:
    """One log format for every Shipyard process."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # The pool logs every discarded connection and failed reconnect as a warning; the worker
    # reports a database outage itself, in one line when it starts and one when it ends.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except ShipyardError as exc:
        fail(exc)


def _run(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return asyncio.run(factory())
    except ShipyardError as exc:
        fail(exc)


async def _with_engine(settings: Settings, body: Callable[[], Awaitable[T]]) -> T:
    from shipyard.engine.engine import Engine
    from shipyard.engine.registry import set_engine

    engine = Engine(settings)
    set_engine(engine)
    try:
        await engine.start()
        return await body()
    finally:
        await engine.close()
        set_engine(None)


# -- processes ------------------------------------------------------------------------------


@app.command()
def dev(
    port: Annotated[int | None, typer.Option(help="Engine server port.")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Worker concurrency.")] = None,
    reload: Annotated[bool, typer.Option(help="Restart the worker when task code changes.")] = True,
) -> None:
    """Start the local stack: engine server, a worker with hot reload of the task folders."""
    from shipyard.cli.dev import run_dev

    settings = _settings(server_port=port)
    setup_logging(settings.log_level)
    _run(lambda: run_dev(settings, concurrency=concurrency, reload=reload))


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Attempts run at once (SHIPYARD_WORKER_CONCURRENCY).")
    ] = None,
    grace: Annotated[
        float | None, typer.Option(help="Seconds to finish running attempts on SIGTERM.")
    ] = None,
    heartbeat: Annotated[
        float | None, typer.Option(help="Heartbeat interval; a lease is 3 of them.")
    ] = None,
    poll: Annotated[float | None, typer.Option(help="Backup poll interval in seconds.")] = None,
    max_parked: Annotated[
        int | None,
        typer.Option(help="Runs kept parked at durable waits; beyond, they resume by replay."),
    ] = None,
    parked_idle: Annotated[
        float | None,
        typer.Option(help="Seconds a run stays parked before it is dropped (replayed later)."),
    ] = None,
    wait_for_db: Annotated[
        bool, typer.Option("--wait-for-db", help="Wait for an unreachable database at start.")
    ] = False,
) -> None:
    """Run a worker: import the task folders, claim and execute runs until stopped."""
    settings = _settings(
        max_parked=max_parked,
        parked_idle=parked_idle,
        worker_concurrency=concurrency,
        shutdown_grace=grace,
        heartbeat_interval=heartbeat,
        poll_interval=poll,
        wait_for_db=wait_for_db or None,
    )
    setup_logging(settings.log_level)
    _run(lambda: run_worker(settings))


async def run_worker(settings: Settings) -> None:
    """Run one worker process until SIGTERM or SIGINT."""
    from shipyard.discovery import discover
    from shipyard.engine.engine import Engine
    from shipyard.engine.registry import set_engine
    from shipyard.worker.worker import Worker

    discover(settings)
    engine = Engine(settings)
    set_engine(engine)
    worker = Worker(engine)
    await worker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await worker.stop(settings.shutdown_grace)
    await engine.close()


@app.command()
def server(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Run the engine server (HTTP API)."""
    import uvicorn

    from shipyard.engine.engine import Engine
    from shipyard.server.app import create_app

    settings = _settings(server_host=host, server_port=port)
    setup_logging(settings.log_level)
    uvicorn.run(
        create_app(Engine(settings)),
        host=settings.server_host,
        port=settings.server_port,
        log_level="warning",
    )


@app.command()
def migrate() -> None:
    """Apply pending database migrations (also done automatically on start)."""
    from shipyard.store import open_store
    from shipyard.store.protocol import MigrateParams

    settings = _settings()

    async def body() -> list[str]:
        store = open_store(settings)
        try:
            return await store.migrate(MigrateParams(now=int(time.time() * 1000)))
        finally:
            await store.close()

    applied = _run(body)
    if applied:
        console.print(f"Applied {len(applied)} migration(s): {', '.join(applied)}")
    else:
        console.print("Database is up to date.")


# -- triggering and runs ----------------------------------------------------------------------


@app.command()
def trigger(
    task_id: Annotated[str, typer.Argument(help="The task id.")],
    payload: Annotated[str, typer.Option(help="JSON payload.")] = "null",
    wait: Annotated[bool, typer.Option(help="Wait for the run to finish.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 300,
    tag: Annotated[list[str] | None, typer.Option(help="A tag (repeatable).")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Idempotency key.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Trigger a run of TASK_ID."""
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        fail(f"--payload is not valid JSON: {exc}", code=2)
    settings = _settings()
    options: dict[str, Any] = {}
    if tag:
        options["tags"] = tag
    if idempotency_key:
        options["idempotency_key"] = idempotency_key

    async def body() -> dict[str, Any]:
        from shipyard.engine.registry import get_engine
        from shipyard.sdk.runs import runs
        from shipyard.sdk.tasks import tasks

        handle = await tasks.trigger(task_id, data, **options)
        result: dict[str, Any] = {"id": handle.id, "is_cached": handle.is_cached}
        if wait:
            await get_engine().wait_for_final(handle.id, timeout=timeout)
            run = await runs.retrieve(handle.id)
            result.update(status=str(run.status), output=run.output, error=run.to_dict()["error"])
        return result

    result = _run(lambda: _with_engine(settings, body))
    if as_json:
        print_json(result)
    else:
        console.print(
            f"Triggered [bold]{result['id']}[/]" + (" (cached)" if result["is_cached"] else "")
        )
        if wait:
            console.print(f"Status: {result['status']}")
            if result.get("output") is not None:
                console.print_json(data=result["output"])
            if result.get("error"):
                console.print(f"[red]{result['error']['name']}: {result['error']['message']}[/]")
    if wait and result.get("status") != "COMPLETED":
        raise typer.Exit(1)


@runs_app.command("list")
def runs_list(
    status: Annotated[list[str] | None, typer.Option(help="Filter by status.")] = None,
    task: Annotated[str | None, typer.Option(help="Filter by task id.")] = None,
    tag: Annotated[str | None, typer.Option(help="Filter by tag.")] = None,
    limit: Annotated[int, typer.Option(help="How many runs.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List runs, newest first."""
    settings = _settings()

    async def body() -> list[dict[str, Any]]:
        from shipyard.sdk.runs import runs

        found = []
        async for run in runs.list(
            status=status or None, task_identifier=task, tag=tag, limit=min(limit, 1000)
        ):
            found.append(run.to_dict())
            if len(found) >= limit:
                break
        return found

    found = _run(lambda: _with_engine(settings, body))
    if as_json:
        print_json(found)
        return
    table = Table("id", "task", "status", "attempts", "created", "duration")
    for run in found:
        table.add_row(
            run["id"],
            run["task_identifier"],
            run["status"],
            str(run["attempt_count"]),
            str(run["created_at"])[:19],
            f"{run['duration_ms']} ms",
        )
    console.print(table)


@runs_app.command("get")
def runs_get(
    run_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one run with payload, output, error and attempts."""
    settings = _settings()

    async def body() -> dict[str, Any]:
        from shipyard.sdk.runs import runs

        return (await runs.retrieve(run_id)).to_dict()

    run = _run(lambda: _with_engine(settings, body))
    if as_json:
        print_json(run)
        return
    for key in ("id", "task_identifier", "status", "attempt_count", "created_at", "finished_at"):
        console.print(f"[bold]{key}[/]: {run[key]}")
    console.print("[bold]payload[/]:")
    console.print_json(data=run["payload"])
    if run["output"] is not None:
        console.print("[bold]output[/]:")
        console.print_json(data=run["output"])
    if run["error"]:
        console.print(f"[bold red]error[/]: {run['error']['name']}: {run['error']['message']}")
    if run["metadata"]:
        console.print("[bold]metadata[/]:")
        console.print_json(data=run["metadata"])


@runs_app.command("cancel")
def runs_cancel(run_id: str) -> None:
    """Cancel a run (and its non-final children)."""
    settings = _settings()

    async def body() -> str:
        from shipyard.sdk.runs import runs

        return str((await runs.cancel(run_id)).status)

    console.print(f"{run_id}: {_run(lambda: _with_engine(settings, body))}")


@runs_app.command("replay")
def runs_replay(run_id: str) -> None:
    """Trigger a new run with the same task and payload."""
    settings = _settings()

    async def body() -> str:
        from shipyard.sdk.runs import runs

        return (await runs.replay(run_id)).id

    console.print(f"Replayed {run_id} as [bold]{_run(lambda: _with_engine(settings, body))}[/]")


@tasks_app.command("list")
def tasks_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Tasks that workers registered in this environment."""
    settings = _settings()

    async def body() -> list[dict[str, Any]]:
        from shipyard.engine.registry import get_engine

        engine = get_engine()
        return [
            {
                "id": t.id,
                "file": t.file_path,
                "queue": t.queue,
                "max_attempts": t.max_attempts,
                "description": t.description,
            }
            for t in await engine.store.task_list(_task_list_params(engine.environment))
        ]

    found = _run(lambda: _with_engine(settings, body))
    if as_json:
        print_json(found)
        return
    table = Table("id", "queue", "max attempts", "file")
    for t in found:
        table.add_row(t["id"], t["queue"], str(t["max_attempts"]), t["file"])
    console.print(table)


app.command("check-envs")(check_envs)
app.command("deps")(deps)
app.command("commit-msg")(commit_msg)
app.add_typer(deploy_app, name="deploy")


def main() -> None:
    """Console-script entry point."""
    app()


def _task_list_params(environment: str) -> Any:
    """The store's params for listing tasks (until the engine offers the listing itself)."""
    from shipyard.store.protocol import TaskListParams

    return TaskListParams(environment)
