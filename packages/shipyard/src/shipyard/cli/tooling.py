"""``shipyard check-envs`` and ``shipyard deps``: the template's project tools.

The checks themselves live in :mod:`shipyard.tooling`; this module only renders them — a
colour report for people (``NO_COLOR`` is honoured), ``--json`` for scripts — and sets the exit
code: 0 when nothing is wrong, 1 when something must be fixed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from shipyard.cli.output import print_json
from shipyard.tooling.envcheck import BY_NAME, Finding, Level, Report, check_project

SYMBOLS = {Level.OK: "✅", Level.WARN: "⚠️ ", Level.ERROR: "❌", Level.SKIP: "➖"}
STYLES = {Level.OK: "green", Level.WARN: "yellow", Level.ERROR: "red", Level.SKIP: "dim"}


def _project_root() -> Path:
    from shipyard.config import find_project_root

    return find_project_root()


def _describe(finding: Finding) -> str:
    parts = []
    if finding.masked and finding.level != Level.SKIP:
        parts.append(finding.masked)
    parts.extend(finding.messages)
    if finding.level == Level.OK and not finding.messages:
        parts.append("ok")
    return "; ".join(parts) if parts else finding.status


def render_report(report: Report, console: Console, root: Path) -> None:
    """The human report: files read, variables by platform, a summary, how to fix."""

    def rel(path: str) -> str:
        try:
            return str(Path(path).resolve().relative_to(root.resolve()))
        except ValueError:
            return path

    if report.missing_file and not report.files:
        console.print(f"[red]❌ No env file at {rel(report.missing_file)}.[/]")
        example = root / ".env.example"
        if example.is_file():
            console.print("   Create it from the template, then fill in the values:")
            console.print("   [bold]cp .env.example .env[/]")
        else:
            console.print("   Create it with the variables listed in the README.")
        return
    console.print(f"[bold]Environment check[/] ({', '.join(rel(f) for f in report.files)})")
    if report.missing_file:
        console.print(f"[red]❌ {rel(report.missing_file)} does not exist.[/]")
    for problem in report.problems:
        console.print(f"[yellow]⚠️  {problem}[/]")
    width = max(len(f.variable.name) for f in report.findings)
    for platform, findings in report.platforms():
        console.print(f"\n[bold]{platform}[/]")
        for finding in findings:
            tag = " (required)" if finding.variable.required else ""
            style = STYLES[finding.level]
            name = finding.variable.name.ljust(width)
            console.print(
                f"  {SYMBOLS[finding.level]} [{style}]{name}[/]  {_describe(finding)}{tag}",
                highlight=False,
            )
    counts = report.summary()
    console.print(
        f"\n[bold]Summary:[/] {counts['ok']} ok, {counts['warn']} warning(s), "
        f"{counts['error']} error(s)" + (f", {counts['skip']} skipped" if counts["skip"] else "")
    )
    if report.ok:
        console.print(
            "[green]Ready to deploy.[/]" if not counts["warn"] else "[green]No errors.[/]"
        )
    else:
        console.print("[red]Fix the errors above before deploying.[/]")
    to_fix = [f for f in report.findings if f.level in (Level.ERROR, Level.WARN)]
    if to_fix:
        console.print("\n[bold]How to get them[/]")
        for finding in to_fix:
            variable = BY_NAME[finding.variable.name]
            console.print(f"  {variable.name}: {variable.how_to_get}", highlight=False)


def check_envs(
    env_file: Annotated[
        Path | None, typer.Option("--env-file", help="Read this file instead of .env.")
    ] = None,
    environment: Annotated[
        str | None,
        typer.Option("--environment", "-e", help="Also read .env.<ENVIRONMENT> on top."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report.")] = False,
) -> None:
    """Check .env: required Cloudflare and optional Supabase variables, placeholders, formats.

    Values are never printed (only a short prefix). Exit code 1 when something must be fixed.
    """
    root = _project_root()
    report = check_project(root, env_file=env_file, environment=environment)
    if as_json:
        print_json(report.to_dict())
    else:
        render_report(report, Console(highlight=False, soft_wrap=True), root)
    if not report.ok:
        raise typer.Exit(1)


def deps(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report.")] = False,
) -> None:
    """Install every workspace member (uv sync), then verify the install works."""
    from shipyard.tooling.deps import install

    root = _project_root()
    console = Console(highlight=False, soft_wrap=True)
    if not as_json:
        console.print(f"Installing the workspace at {root} …")
    report = install(root)
    if as_json:
        print_json(report.to_dict())
    else:
        for step in report.steps:
            mark = "[green]✅[/]" if step.ok else "[red]❌[/]"
            took = f" [dim]({step.seconds:.1f} s)[/]" if step.seconds >= 0.05 else ""
            console.print(f"{mark} [bold]{step.name}[/]: {escape(step.detail)}{took}")
        console.print(
            "[green]Dependencies installed and verified.[/]"
            if report.ok
            else "[red]Dependencies are not ready: see the step above.[/]"
        )
    if not report.ok:
        raise typer.Exit(1)
