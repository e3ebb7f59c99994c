"""``shipyard keys``: secret keys of the HTTP API, one environment each (create, list,
revoke). Only a hash of a key is stored: ``create`` prints the key once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from shipyard.cli.output import console, fail, id_column, print_json
from shipyard.cli.session import load_cli_settings, run_async, with_engine
from shipyard.models.access import AccessKey, CreatedKey

if TYPE_CHECKING:
    from shipyard.engine.engine import Engine

__all__ = ["keys_app"]

keys_app = typer.Typer(
    help="Secret keys of the HTTP API (one environment each).", no_args_is_help=True
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (shapes: docs/cli.md).")]


def _engine() -> Engine:
    from shipyard.engine.registry import get_engine

    return get_engine()


@keys_app.command("create")
def keys_create(
    env: Annotated[
        str | None,
        typer.Option(
            "--env",
            help="The key's environment: production, staging, preview/<branch> … "
            "(default: SHIPYARD_ENVIRONMENT).",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="A name to tell the key apart.")] = None,
    rotate: Annotated[
        bool,
        typer.Option(
            "--rotate",
            help="Then revoke the environment's other live keys of the same --name "
            "(what a preview deploy does on every deploy).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Create a secret key; it is printed this once (only its hash is stored)."""
    settings = load_cli_settings()
    environment = env or settings.environment
    if rotate and not name:
        fail("--rotate needs --name: it revokes the other keys of that name.", code=2)

    async def body() -> CreatedKey:
        engine = _engine()
        created = await engine.create_key(environment, name=name)
        if rotate:
            for key in await engine.list_keys(environment):
                if key.name == name and key.id != created.info.id and not key.revoked:
                    await engine.revoke_key(key.id)
        return created

    created = run_async(lambda: with_engine(settings, body))
    if as_json:
        print_json(created.to_dict())
        return
    console.print(
        f"Secret key {created.info.id} of environment {created.info.environment}:",
        highlight=False,
        markup=False,
    )
    console.print(created.key, highlight=False, markup=False, soft_wrap=True)
    console.print(
        "It is shown this once: store it now (as SHIPYARD_SECRET_KEY of the client).",
        highlight=False,
        markup=False,
    )


@keys_app.command("list")
def keys_list(
    env: Annotated[
        str | None, typer.Option("--env", help="Only this environment's keys (default: all).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Secret keys (never the keys themselves): id, environment, name, prefix, dates."""
    settings = load_cli_settings()

    async def body() -> list[AccessKey]:
        return await _engine().list_keys(env)

    found = run_async(lambda: with_engine(settings, body))
    if as_json:
        print_json([key.to_dict() for key in found])
        return
    table = Table(
        id_column("id", [k.id for k in found]),
        "environment",
        "name",
        "prefix",
        "created",
        "revoked",
    )
    for key in found:
        table.add_row(
            key.id,
            key.environment,
            key.name or "",
            key.prefix + "…",
            key.created_at.strftime("%Y-%m-%d %H:%M"),
            key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else "",
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[
        str | None, typer.Argument(help="The key's id (key_…, from keys list).")
    ] = None,
    env: Annotated[
        str | None,
        typer.Option(
            "--env",
            help="Instead of one key: revoke every live key of this environment "
            "(what `shipyard deploy cleanup` does for a preview).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a key (or every key of ``--env``): servers stop accepting it within seconds."""
    if (key_id is None) == (env is None):
        fail("Give a key id, or --env ENV to revoke every key of an environment.", code=2)
    settings = load_cli_settings()

    async def body() -> list[AccessKey]:
        engine = _engine()
        if key_id is not None:
            return [await engine.revoke_key(key_id)]
        live = [k for k in await engine.list_keys(env) if not k.revoked]
        return [await engine.revoke_key(k.id) for k in live]

    keys = run_async(lambda: with_engine(settings, body))
    if as_json:
        print_json(keys[0].to_dict() if key_id is not None else [k.to_dict() for k in keys])
        return
    if env is not None and not keys:
        console.print(f"No live keys in {env}.", highlight=False, markup=False)
    for key in keys:
        console.print(
            f"Secret key {key.id} of {key.environment} revoked.", highlight=False, markup=False
        )
