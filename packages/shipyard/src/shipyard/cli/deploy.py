"""``shipyard deploy`` and ``shipyard deploy cleanup``: render plans and their progress.

The work is in :mod:`shipyard.tooling.deploy`; this module picks the branch and platforms,
verifies the environment, shows each step as it runs and ends with a summary table, the
deployment URLs and the dashboard and log links. Exit codes: 0 done, 1 a step or a check
failed, 2 bad input.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shipyard.cli.tooling import STYLES, SYMBOLS, _describe
from shipyard.errors import DeployError
from shipyard.tooling.deploy import naming
from shipyard.tooling.deploy.plan import (
    PLATFORM_TITLES,
    DeployPlan,
    Step,
    Target,
    Tools,
    current_branch,
    load_values,
    parse_platform,
    plan_cleanup,
    plan_deploy,
    tool_environment,
    verify,
)
from shipyard.tooling.deploy.runner import DeployResult, Progress, Runner, StepResult
from shipyard.tooling.envcheck import Level

deploy_app = typer.Typer(
    help="Deploy the API and functions (Cloudflare) and the database (Supabase) for this branch.",
    invoke_without_command=True,
    no_args_is_help=False,
)

PlatformOption = Annotated[
    str | None,
    typer.Option(
        "--platform",
        "-p",
        help="cloudflare, supabase, both, or engine (the container image); asked when a "
        "terminal is attached.",
    ),
]
BranchOption = Annotated[
    str | None, typer.Option("--branch", "-b", help="Git branch to deploy (default: checked out).")
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Print the exact commands and names; run nothing.")
]
EnvFileOption = Annotated[
    Path | None, typer.Option("--env-file", help="Read this file instead of .env.")
]


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _root() -> Path:
    from shipyard.config import find_project_root

    return find_project_root()


def _stop(console: Console, message: str, code: int = 1) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _interactive() -> bool:
    """True when a person can answer a prompt (standard input is a terminal)."""
    return sys.stdin.isatty()


def _choose_platforms(platform: str | None, console: Console) -> tuple[str, ...]:
    if platform is None:
        if not _interactive():
            raise _stop(
                console,
                "no terminal to ask on: pass --platform cloudflare, supabase, both or engine.",
                2,
            )
        while True:
            answer = str(
                typer.prompt("Deploy to which platform? (cloudflare, supabase, both, engine)")
            )
            try:
                return parse_platform(answer)
            except DeployError as exc:
                console.print(f"[yellow]{exc}[/]")
    try:
        return parse_platform(platform)
    except DeployError as exc:
        raise _stop(console, str(exc), 2) from None


def _target(root: Path, branch: str | None, console: Console) -> Target:
    try:
        return Target(branch or current_branch(root))
    except DeployError as exc:
        raise _stop(console, str(exc), 2) from None


def _verify(
    console: Console, values: dict[str, str], platforms: Sequence[str], target: Target
) -> bool:
    findings = verify(values, platforms, target)
    console.print("[bold]Environment[/] (the checks of `shipyard check-envs`)")
    for finding in findings:
        if finding.level == Level.WARN and finding.status == "not_set":
            continue
        style = STYLES[finding.level]
        console.print(
            f"  {SYMBOLS[finding.level]} [{style}]{finding.variable.name}[/]  {_describe(finding)}"
        )
    ok = all(f.level != Level.ERROR for f in findings)
    if not ok:
        console.print("[red]Fix the variables above in .env (see `shipyard check-envs`).[/]")
    return ok


def _print_plan(console: Console, plan: DeployPlan) -> None:
    for index, step in enumerate(plan.steps, start=1):
        console.print(f"  {index}. {step.title}")
        console.print(f"     $ {step.display(plan.root)}", markup=False)


def _progress(console: Console) -> Progress:
    def show(index: int, total: int, step: Step, outcome: StepResult | None) -> None:
        if outcome is None:
            console.print(f"[bold][{index}/{total}][/] {step.title} …")
            return
        mark = {"failed": "[red]❌[/]", "skipped": "[dim]➖[/]"}.get(outcome.status, "[green]✅[/]")
        took = f" [dim]({outcome.seconds:.1f} s)[/]" if outcome.seconds >= 0.05 else ""
        console.print(f"      {mark} {outcome.detail}{took}")

    return show


def _print_failure(console: Console, result: DeployResult) -> None:
    failure = result.failure
    if failure is None:
        return
    console.print(f"\n[bold red]Stopped:[/] {failure.step.title} failed.")
    console.print(f"  $ {failure.step.display(result.plan.root)}", markup=False)
    for line in failure.message.splitlines():
        console.print(f"  │ {line}", markup=False)
    console.print(f"[bold]What to do:[/] {failure.hint}")


def _summary(console: Console, result: DeployResult) -> None:
    plan = result.plan
    account = plan.account_id or "<CLOUDFLARE_ACCOUNT_ID>"
    table = Table("platform", "what", "name", "status", "URL", title="Deploy summary")
    by_step = {id(r.step): r for r in result.results}
    for step in plan.steps:
        outcome = by_step.get(id(step))
        status = outcome.status if outcome else "not run"
        if step.action == "deploy":
            url = result.urls.get(step.worker or "", "")
            table.add_row("Cloudflare", "worker", step.worker or "", status, url)
        elif step.action in ("image-build", "image-push"):
            what = "image" if step.action == "image-build" else "push"
            table.add_row("Engine", what, plan.image or "", status, "")
        elif step.action in ("engine-key", "key-revoke"):
            what = "key" if step.action == "engine-key" else "revoke keys"
            table.add_row("Engine", what, plan.engine_environment or "", status, "")
        elif step.action in ("branch-create", "push"):
            name = plan.target.supabase_branch if step.action == "branch-create" else "migrations"
            ref = result.branch_ref or plan.project_ref or ""
            url = naming.supabase_project_url(ref) if ref and step.action == "branch-create" else ""
            table.add_row("Supabase", step.action, name, status, url)
    if result.secrets_set:
        table.add_row("Cloudflare", "secrets", plan.api_worker, "ok", ", ".join(result.secrets_set))
    console.print(table)
    console.print("\n[bold]Links[/]")
    if "cloudflare" in plan.platforms:
        console.print(f"  Workers & Pages: {naming.dashboard_url(account)}")
        for worker in plan.workers:
            console.print(f"  {worker.name}: {naming.dashboard_url(account, worker.name)}")
            console.print(f"  {worker.name} logs: {naming.logs_url(account, worker.name)}")
            console.print(f"  {worker.name} live logs: wrangler tail {worker.name}")
    if "supabase" in plan.platforms:
        ref = result.branch_ref or plan.project_ref or "<SUPABASE_PROJECT_REF>"
        label = "Supabase branch" if not plan.target.production else "Supabase project"
        console.print(f"  {label}: {naming.supabase_dashboard_url(ref)}")
    if plan.engine_url and plan.engine_environment:
        console.print(
            f"  Engine server: {plan.engine_url} (environment {plan.engine_environment}; "
            f"dashboard {plan.engine_url.rstrip('/')}/dashboard)",
            markup=False,
        )
    if plan.image and result.ok:
        if plan.image_pushed:
            console.print(f"  Engine image: {plan.image} (pushed)")
        else:
            console.print(
                f"  Engine image: {plan.image} (built locally; set SHIPYARD_IMAGE_REPOSITORY "
                "to push it). Run it with SHIPYARD_DATABASE_URL and SHIPYARD_SECRET_KEY set:"
            )
            for command in plan.run_commands:
                console.print(f"    {command}", markup=False)
    if plan.secrets_source:
        console.print(f"\n{plan.api_worker}'s Supabase secrets come from {plan.secrets_source}.")
    if not plan.target.production:
        console.print(
            "\nPreview environments stay until deleted: "
            f"[bold]uv run shipyard deploy cleanup --branch {plan.target.branch}[/]"
        )


@deploy_app.callback(invoke_without_command=True)
def deploy(
    ctx: typer.Context,
    platform: PlatformOption = None,
    branch: BranchOption = None,
    dry_run: DryRunOption = False,
    bundle_only: Annotated[
        bool,
        typer.Option(
            "--bundle-only",
            help="Only build each worker's bundle (wrangler deploy --dry-run): uploads nothing.",
        ),
    ] = False,
    branch_wait: Annotated[
        float,
        typer.Option(help="Seconds to wait for a new Supabase preview branch to come up."),
    ] = 180.0,
    env_file: EnvFileOption = None,
) -> None:
    """Deploy this git branch: main/master → production (worker `api`), any other branch →
    a preview (worker `api-<branch>` and a Supabase preview branch wired into its secrets)."""
    if ctx.invoked_subcommand is not None:
        return
    console = _console()
    root = _root()
    target = _target(root, branch, console)
    # --bundle-only builds the Cloudflare workers and touches nothing else.
    platforms = ("cloudflare",) if bundle_only else _choose_platforms(platform, console)
    names = " + ".join(PLATFORM_TITLES[p] for p in platforms)
    console.print(
        f"[bold]Deploying[/] branch [bold]{target.branch}[/] → [bold]{target.environment}[/] "
        f"({names})" + (" — dry run, nothing is run" if dry_run else "")
    )
    values = load_values(root, env_file)
    checks_ok = _verify(console, values, platforms, target)
    if not checks_ok:
        # Refused before any command is planned or shown: dry runs included.
        console.print("[red]Nothing was run.[/]")
        raise typer.Exit(1)
    tools = Tools.find(platforms)
    plan = plan_deploy(root, target, platforms, values, tools, bundle_only=bundle_only)
    for note in plan.notes:
        console.print(f"[yellow]⚠️  {note}[/]")
    for blocker in plan.blockers:
        console.print(f"[red]❌ {blocker}[/]")
    if dry_run:
        console.print("\n[bold]Commands[/] (in order)")
        _print_plan(console, plan)
        console.print("\n[bold]Names[/]")
        for worker in plan.workers:
            url = naming.worker_url(worker.name, None)
            console.print(f"  worker {worker.name} ← {worker.source}  {url}")
        if "supabase" in platforms and not target.production:
            console.print(f"  Supabase preview branch {target.supabase_branch}")
        if plan.image and not plan.image_pushed:
            console.print(f"  image {plan.image} (local; SHIPYARD_IMAGE_REPOSITORY pushes it)")
        elif plan.image:
            console.print(f"  image {plan.image}")
        console.print("\n[dim]Tools get CLOUDFLARE_API as CLOUDFLARE_API_TOKEN.[/]")
        if plan.blockers:
            raise typer.Exit(1)
        return
    if plan.blockers:
        raise _stop(console, plan.blockers[0])
    missing = [n for n in plan.notes if "is not installed" in n]
    if missing:
        raise _stop(console, missing[0])
    runner = Runner(tool_environment(values), secret_values=values, branch_wait=branch_wait)
    console.print()
    result = runner.execute(plan, _progress(console))
    console.print()
    _summary(console, result)
    if not result.ok:
        _print_failure(console, result)
        raise typer.Exit(1)
    console.print("\n[green]Deployed.[/]" if not bundle_only else "\n[green]Bundles built.[/]")


@deploy_app.command("cleanup")
def cleanup(
    branch: BranchOption = None,
    platform: Annotated[
        str, typer.Option("--platform", "-p", help="cloudflare, supabase or both.")
    ] = "both",
    dry_run: DryRunOption = False,
    env_file: EnvFileOption = None,
) -> None:
    """Delete a preview: its workers (wrangler delete --force) and its Supabase branch."""
    console = _console()
    root = _root()
    target = _target(root, branch, console)
    try:
        platforms = parse_platform(platform)
        values = load_values(root, env_file)
        plan = plan_cleanup(root, target, platforms, values, Tools.find())
    except DeployError as exc:
        raise _stop(console, str(exc), 2) from None
    console.print(
        f"[bold]Cleaning up[/] the preview of [bold]{target.branch}[/]"
        + (" — dry run, nothing is run" if dry_run else "")
    )
    for note in plan.notes:
        console.print(f"[yellow]⚠️  {note}[/]")
    if dry_run:
        _print_plan(console, plan)
        return
    if "supabase" in platforms and not plan.project_ref:
        raise _stop(console, "SUPABASE_PROJECT_REF is not set in .env: it names the project.")
    missing = [n for n in plan.notes if "is not installed" in n]
    if missing:
        raise _stop(console, missing[0])
    runner = Runner(tool_environment(values), secret_values=values)
    result = runner.execute(plan, _progress(console))
    if not result.ok:
        _print_failure(console, result)
        raise typer.Exit(1)
    console.print("[green]Preview removed.[/]")
