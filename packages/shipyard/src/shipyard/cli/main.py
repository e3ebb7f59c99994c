"""The ``shipyard`` CLI: thin commands over the same public calls user code makes."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import signal
from typing import Annotated, Any

from shipyard.extras import missing_extra

try:
    import typer
    from rich.markup import escape
    from rich.table import Table
except ImportError as exc:  # a light install: the console script says so before importing us
    raise missing_extra(exc, "cli", "The shipyard command") from None

from shipyard.cli.lazy import LazyGroup
from shipyard.cli.output import console, fail, print_json
from shipyard.cli.session import ApiUrlOption, require_extra
from shipyard.cli.session import load_cli_settings as _settings
from shipyard.cli.session import run_async as _run
from shipyard.cli.session import wait_for_final as _wait_for_final
from shipyard.cli.session import with_engine as _with_engine
from shipyard.config import Settings
from shipyard.errors import ShipyardError
from shipyard.version import __version__

app = typer.Typer(
    name="shipyard",
    help="Shipyard: durable tasks, the app template, and the tools around them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=LazyGroup,
)
tasks_app = typer.Typer(help="Tasks registered by workers.", no_args_is_help=True)
versions_app = typer.Typer(
    help="Versions of the task code workers registered.", no_args_is_help=True
)
workers_app = typer.Typer(help="Workers running now.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
app.add_typer(versions_app, name="versions")
app.add_typer(workers_app, name="workers")


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


def setup_logging(level: str, fmt: str = "text") -> None:
    """One log format for every Shipyard process: ``text`` or ``json`` (SHIPYARD_LOG_FORMAT)."""
    from shipyard.logformat import install_handler

    install_handler(level, fmt)
    # The pool logs every discarded connection and failed reconnect as a warning; the worker
    # reports a database outage itself, in one line when it starts and one when it ends.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


def _warn_transaction_pooler(settings: Settings) -> None:
    """One warning line when the database URL is a transaction-mode pooler (no LISTEN)."""
    from shipyard.tooling.pooler import transaction_pooler_warning

    warning = transaction_pooler_warning(settings.database_url)
    if warning:
        logging.getLogger("shipyard").warning(warning)


# -- processes ------------------------------------------------------------------------------


LogFormatOption = Annotated[
    str | None,
    typer.Option(
        "--log-format", help="Log lines as text or json, one object a line (SHIPYARD_LOG_FORMAT)."
    ),
]


@app.command()
def dev(
    port: Annotated[
        int | None, typer.Option(help="Engine server port (SHIPYARD_SERVER_PORT, 3030).")
    ] = None,
    concurrency: Annotated[int | None, typer.Option(help="Worker concurrency.")] = None,
    reload: Annotated[bool, typer.Option(help="Restart the worker when task code changes.")] = True,
    log_format: LogFormatOption = None,
) -> None:
    """Start the local stack: engine server, a worker with hot reload of the task folders.

    The project's .env is read first (variables already set win); the worker, the app API and
    the functions get the same settings as the engine server.
    """
    require_extra("engine", "shipyard dev", ("fastapi", "uvicorn", "watchfiles"))
    from shipyard.cli.dev import load_project_dotenv, run_dev

    load_project_dotenv()
    settings = _settings(server_port=port, log_format=log_format)
    setup_logging(settings.log_level, settings.log_format)
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
    log_format: LogFormatOption = None,
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
        log_format=log_format,
    )
    setup_logging(settings.log_level, settings.log_format)
    _warn_transaction_pooler(settings)
    _run(lambda: run_worker(settings))


async def run_worker(settings: Settings) -> None:
    """Run one worker process until SIGTERM or SIGINT."""
    from shipyard.discovery import discover
    from shipyard.engine.engine import Engine
    from shipyard.engine.registry import set_engine
    from shipyard.worker.heap import freeze_startup_heap
    from shipyard.worker.worker import Worker

    discover(settings)
    engine = Engine(settings)
    set_engine(engine)
    worker = Worker(engine)
    try:
        await worker.start()
        freeze_startup_heap()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await worker.stop(settings.shutdown_grace)
    finally:
        # Also when starting failed: an open pool left to asyncio.run's cleanup can keep the
        # process from exiting at all.
        await engine.close()


@app.command()
def server(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    log_format: LogFormatOption = None,
) -> None:
    """Run the engine server (HTTP API)."""
    require_extra("engine", "shipyard server", ("fastapi", "uvicorn"))
    import uvicorn

    from shipyard.cli.dev import listen
    from shipyard.engine.engine import Engine
    from shipyard.server.app import create_app
    from shipyard.tooling.apphost import server_config

    settings = _settings(server_host=host, server_port=port, log_format=log_format)
    setup_logging(settings.log_level, settings.log_format)
    _warn_transaction_pooler(settings)
    try:
        settings.resolved_secret_key()  # callback URLs are verified with it: fail now, not later
        sock = listen(settings)
    except ShipyardError as exc:
        fail(exc)
    uvicorn.Server(server_config(create_app(Engine(settings)), lifespan="auto")).run(sockets=[sock])


@app.command()
def migrate(
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"applied": [migration, …]}.')
    ] = False,
) -> None:
    """Apply pending database migrations (also done automatically on start)."""
    from shipyard.engine.engine import Engine

    settings = _settings()

    async def body() -> list[str]:
        engine = Engine(settings)
        try:
            return await engine.migrate()
        finally:
            await engine.close()

    applied = _run(body)
    if as_json:
        print_json({"applied": applied})
    elif applied:
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
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (docs/cli.md).")] = False,
    api_url: ApiUrlOption = None,
) -> None:
    """Trigger a run of TASK_ID."""
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        fail(f"--payload is not valid JSON: {exc}", code=2)
    settings = _settings(api_url=api_url)
    options: dict[str, Any] = {}
    if tag:
        options["tags"] = tag
    if idempotency_key:
        options["idempotency_key"] = idempotency_key

    async def body() -> dict[str, Any]:
        from shipyard.sdk.runs import runs
        from shipyard.sdk.tasks import tasks

        handle = await tasks.trigger(task_id, data, **options)
        result: dict[str, Any] = {"id": handle.id, "is_cached": handle.is_cached}
        if not wait:
            result["status"] = str((await runs.retrieve(handle.id)).status)
        if wait:
            await _wait_for_final(handle.id, timeout)
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
        if result.get("status") == "PENDING_VERSION":
            console.print(
                f"No running worker has '{task_id}' yet: the run waits (PENDING_VERSION) and "
                "starts when one does (`shipyard dev`, `shipyard worker`)."
            )
        if wait:
            console.print(f"Status: {result['status']}")
            if result.get("output") is not None:
                console.print_json(data=result["output"])
            if result.get("error"):
                error = f"{result['error']['name']}: {result['error']['message']}"
                console.print(f"[red]{escape(error)}[/]", highlight=False)
    if wait and result.get("status") != "COMPLETED":
        raise typer.Exit(1)


@tasks_app.command("list")
def tasks_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (docs/cli.md).")] = False,
    api_url: ApiUrlOption = None,
) -> None:
    """Tasks that workers registered in this environment."""
    settings = _settings(api_url=api_url)

    async def body() -> list[dict[str, Any]]:
        from shipyard.sdk.backend import default_backend

        return [
            {
                "id": t.id,
                "file": t.file_path,
                "queue": t.queue,
                "max_attempts": t.max_attempts,
                "description": t.description,
            }
            for t in await default_backend().list_tasks()
        ]

    found = _run(lambda: _with_engine(settings, body))
    if as_json:
        print_json(found)
        return
    table = Table("id", "queue", "max attempts", "file")
    for t in found:
        table.add_row(t["id"], t["queue"], str(t["max_attempts"]), t["file"])
    console.print(table)


@versions_app.command("list")
def versions_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Versions of the task code this environment's workers registered, newest first.

    A run locks to the version of the worker that claims it; a run of a task no live version
    has waits as PENDING_VERSION until a worker with the task starts.
    """
    settings = _settings()

    async def body() -> list[dict[str, Any]]:
        from shipyard.engine.registry import get_engine

        return [v.to_dict() for v in await get_engine().list_versions()]

    found = _run(lambda: _with_engine(settings, body, local_only="shipyard versions list"))
    if as_json:
        print_json(found)
        return
    table = Table("version", "live workers", "tasks", "registered", "last heartbeat")
    for v in found:
        table.add_row(
            v["version"],
            str(v["live_workers"]),
            ", ".join(v["task_ids"]) or "-",
            v["registered_at"][:19],
            (v["last_heartbeat_at"] or "-")[:19],
        )
    console.print(table)


def _iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).isoformat()


@workers_app.command("list")
def workers_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Workers of this environment running now, with the version each runs."""
    settings = _settings()

    async def body() -> list[dict[str, Any]]:
        from shipyard.engine.registry import get_engine

        engine = get_engine()
        return [
            {
                "id": w.id,
                "version": w.version,
                "host": w.host,
                "pid": w.pid,
                "started_at": _iso(w.started_at),
                "heartbeat_at": _iso(w.heartbeat_at),
            }
            for w in await engine.live_workers(engine.live_window_ms)
        ]

    found = _run(lambda: _with_engine(settings, body, local_only="shipyard workers list"))
    if as_json:
        print_json(found)
        return
    table = Table("id", "version", "host", "pid", "started", "last heartbeat")
    for w in found:
        table.add_row(
            w["id"],
            w["version"] or "-",
            w["host"],
            str(w["pid"]),
            w["started_at"][:19],
            w["heartbeat_at"][:19],
        )
    console.print(table)


def main() -> None:
    """Console-script entry point."""
    app()
