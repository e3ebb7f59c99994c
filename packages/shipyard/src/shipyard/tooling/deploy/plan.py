"""What a deploy (or a cleanup) will do: the target, the checks, and each command in order.

A :class:`DeployPlan` is built without running anything, so ``--dry-run`` prints exactly the
commands a real deploy runs. :mod:`shipyard.tooling.deploy.runner` then runs it.

Order of a deploy (each platform only when selected):

1. Supabase — production: ``link`` the project, ``db push`` the migrations. Preview:
   ``branches create`` (409 → reuse), ``branches get -o env`` (the branch's credentials),
   ``link`` the branch's ref, ``db push``.
2. Cloudflare — ``deploy --name`` the API worker, then one worker per function.
3. Secrets — ``wrangler secret put NAME --name <api worker>`` with the value on stdin: the
   preview branch's credentials in preview, the ``.env`` values in production.

Example::

    target = Target.for_branch("feature/login")
    plan = plan_deploy(root, target, ("cloudflare", "supabase"), values, tools)
    for step in plan.steps:
        print(step.display())
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.tooling.deploy import cloudflare, naming, supabase
from shipyard.tooling.envcheck import Finding, Level, check_values, load_env_files

PLATFORMS = ("cloudflare", "supabase")
PLATFORM_TITLES = {"cloudflare": "Cloudflare", "supabase": "Supabase"}


class DeployError(Exception):
    """A deploy cannot start: what is wrong and what to do, as one message."""


@dataclass(frozen=True, slots=True)
class Target:
    """The git branch being deployed and the environment it maps to."""

    branch: str

    @property
    def production(self) -> bool:
        return naming.is_production(self.branch)

    @property
    def environment(self) -> str:
        return "production" if self.production else "preview"

    @property
    def supabase_branch(self) -> str:
        return naming.supabase_branch_name(self.branch)

    def worker(self, base: str) -> str:
        return naming.worker_name(base, self.branch)


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)


def current_branch(root: Path) -> str:
    """The checked-out git branch at ``root`` (DeployError when there is none)."""
    try:
        result = _git(root, "symbolic-ref", "--short", "-q", "HEAD")
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip()
        inside = _git(root, "rev-parse", "--git-dir").returncode == 0
    except FileNotFoundError:
        raise DeployError("git is not installed: pass the branch with --branch.") from None
    if not inside:
        raise DeployError(f"{root} is not a git repository: pass the branch with --branch.")
    raise DeployError("HEAD is detached (no branch checked out): pass --branch NAME.")


@dataclass(frozen=True, slots=True)
class Step:
    """One command of a plan.

    ``action`` is what it does (``deploy``, ``secret``, ``branch-create``, ``branch-get``,
    ``link``, ``push``, ``delete``, ``branch-delete``); ``secret`` names the value written to
    the command's standard input; ``function`` names the function whose worker folder is laid
    out before the command runs.
    """

    platform: str
    action: str
    title: str
    argv: tuple[str, ...]
    cwd: Path
    worker: str | None = None
    secret: str | None = None
    function: str | None = None
    optional: bool = False

    def display(self, root: Path | None = None) -> str:
        """The command as a shell line (``cd`` into its folder), the secret shown as stdin."""
        line = shlex.join(self.argv)
        if self.secret:
            line += f"   # stdin: the value of {self.secret}"
        if root is not None:
            try:
                where = self.cwd.relative_to(root)
            except ValueError:
                where = self.cwd
            if str(where) != ".":
                line = f"(cd {shlex.quote(str(where))} && {line})"
        return line


@dataclass(frozen=True, slots=True)
class Worker:
    """A worker this deploy creates: its name, what it serves, and where it is deployed from."""

    name: str
    source: str
    folder: Path


@dataclass
class DeployPlan:
    """Everything a deploy will do, computed before anything runs."""

    root: Path
    target: Target
    platforms: tuple[str, ...]
    steps: list[Step] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    project_ref: str | None = None
    account_id: str | None = None
    secrets_source: str | None = None
    notes: list[str] = field(default_factory=list)
    bundle_only: bool = False

    @property
    def api_worker(self) -> str:
        return self.target.worker(naming.API_WORKER)


@dataclass(frozen=True, slots=True)
class Tools:
    """The command prefixes found on PATH (empty tuple: not installed)."""

    cloudflare: cloudflare.CloudflareTools
    supabase: tuple[str, ...]

    @classmethod
    def find(cls) -> Tools:
        return cls(cloudflare=cloudflare.find_tools(), supabase=supabase.find_tool())


def parse_platform(value: str) -> tuple[str, ...]:
    """``cloudflare``, ``supabase`` or ``both`` → the platforms, in deploy order."""
    value = value.strip().lower()
    if value == "both":
        return ("supabase", "cloudflare")
    if value in PLATFORMS:
        return (value,)
    raise DeployError(f"unknown platform {value!r}: use cloudflare, supabase or both.")


# -- environment ---------------------------------------------------------------------------

DEPLOY_VARIABLES = {
    "cloudflare": ("CLOUDFLARE_API", "CLOUDFLARE_ACCOUNT_ID"),
    "supabase": ("SUPABASE_PROJECT_REF",),
}


def load_values(
    root: Path,
    env_file: Path | None = None,
    environment: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """``.env`` (+ ``.env.<environment>``) with the process environment on top for every
    variable check-envs knows (so CI can pass them without a file)."""
    env, _missing = load_env_files(root, env_file, environment)
    values = dict(env.values)
    source = os.environ if environ is None else environ
    names = {finding.variable.name for finding in check_values({})}
    values.update({name: source[name] for name in names if source.get(name)})
    return values


def verify(values: Mapping[str, str], platforms: Sequence[str]) -> list[Finding]:
    """check-envs' findings for the selected platforms; required-for-deploy variables that are
    not set are errors. The deploy stops when any finding is an error."""
    titles = {PLATFORM_TITLES[p] for p in platforms}
    required = {name for p in platforms for name in DEPLOY_VARIABLES[p]}
    findings = []
    for finding in check_values(values):
        if finding.variable.platform not in titles:
            continue
        if finding.variable.name in required and finding.status == "not_set":
            finding.add(
                Level.ERROR, f"required to deploy to {finding.variable.platform}", "missing"
            )
        findings.append(finding)
    return findings


def tool_environment(
    values: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The deploy tools' environment: the process environment, the ``.env`` values under it,
    and ``CLOUDFLARE_API`` given to wrangler as ``CLOUDFLARE_API_TOKEN``."""
    env = dict(os.environ if environ is None else environ)
    for key, value in values.items():
        env.setdefault(key, value)
    token = values.get("CLOUDFLARE_API") or env.get("CLOUDFLARE_API")
    if token:
        env["CLOUDFLARE_API_TOKEN"] = token
    return env


# -- plans ---------------------------------------------------------------------------------


def _require(prefix: tuple[str, ...], tool: str, hint: str, notes: list[str]) -> tuple[str, ...]:
    if prefix:
        return prefix
    notes.append(f"{tool} is not installed: {hint}.")
    return (tool,)


def plan_deploy(
    root: Path,
    target: Target,
    platforms: Sequence[str],
    values: Mapping[str, str],
    tools: Tools,
    *,
    bundle_only: bool = False,
) -> DeployPlan:
    """The steps of ``shipyard deploy`` (see the module docstring for their order)."""
    plan = DeployPlan(
        root=root,
        target=target,
        platforms=tuple(platforms),
        project_ref=values.get("SUPABASE_PROJECT_REF") or None,
        account_id=values.get("CLOUDFLARE_ACCOUNT_ID") or None,
        bundle_only=bundle_only,
    )
    if "supabase" in platforms and not bundle_only:
        _plan_supabase(plan, tools)
    if "cloudflare" in platforms:
        _plan_cloudflare(plan, values, tools)
    return plan


def _plan_supabase(plan: DeployPlan, tools: Tools) -> None:
    sb = _require(tools.supabase, "supabase", supabase.SUPABASE_INSTALL_HINT, plan.notes)
    ref = plan.project_ref or "<SUPABASE_PROJECT_REF>"
    root = plan.root
    if plan.target.production:
        plan.steps += [
            Step(
                "supabase",
                "link",
                f"Link Supabase project {ref}",
                (*sb, *supabase.link_args(ref)),
                root,
            ),
            Step(
                "supabase",
                "push",
                "Push supabase/migrations",
                (*sb, *supabase.db_push_args()),
                root,
            ),
        ]
        return
    name = plan.target.supabase_branch
    plan.steps += [
        Step(
            "supabase",
            "branch-create",
            f"Create Supabase preview branch {name} (reused if it exists)",
            (*sb, *supabase.branch_create_args(name, ref)),
            root,
        ),
        Step(
            "supabase",
            "branch-get",
            f"Read the credentials of preview branch {name}",
            (*sb, *supabase.branch_get_args(name, ref)),
            root,
        ),
        Step(
            "supabase",
            "link",
            f"Link preview branch {name}",
            (*sb, *supabase.link_args("<branch ref>")),
            root,
        ),
        Step(
            "supabase",
            "push",
            "Push supabase/migrations to the branch",
            (*sb, *supabase.db_push_args()),
            root,
        ),
    ]


def _plan_cloudflare(plan: DeployPlan, values: Mapping[str, str], tools: Tools) -> None:
    root, target = plan.root, plan.target
    deploy = _require(
        tools.cloudflare.deploy, "wrangler", cloudflare.WRANGLER_INSTALL_HINT, plan.notes
    )
    wrangler = tools.cloudflare.wrangler or deploy
    preview = not target.production
    outdir = root / cloudflare.BUILD_DIR / "bundles"

    api_dir = root / cloudflare.API_DIR
    if (api_dir / "wrangler.jsonc").is_file() or (api_dir / "wrangler.toml").is_file():
        api = plan.api_worker
        plan.workers.append(Worker(api, "apps/api", api_dir))
        bundle = outdir / api if plan.bundle_only else None
        args = cloudflare.deploy_args(api, preview=preview, bundle_dir=bundle)
        plan.steps.append(
            Step(
                "cloudflare",
                "deploy",
                f"Deploy worker {api} (apps/api)",
                (*deploy, *args),
                api_dir,
                worker=api,
            )
        )
    else:
        plan.notes.append("apps/api has no wrangler.jsonc: the API worker is not deployed.")

    for function in cloudflare.function_names(root):
        name = target.worker(function)
        folder = cloudflare.function_build_dir(root, function)
        plan.workers.append(Worker(name, f"functions/{function}", folder))
        bundle = outdir / name if plan.bundle_only else None
        args = cloudflare.deploy_args(name, preview=preview, bundle_dir=bundle)
        plan.steps.append(
            Step(
                "cloudflare",
                "deploy",
                f"Deploy worker {name} (functions/{function})",
                (*deploy, *args),
                folder,
                worker=name,
                function=function,
            )
        )

    if plan.bundle_only or not any(w.source == "apps/api" for w in plan.workers):
        return
    api = plan.api_worker
    if preview and "supabase" in plan.platforms:
        plan.secrets_source = f"Supabase preview branch {target.supabase_branch}"
        names: Sequence[str] = supabase.WORKER_SECRETS
        optional = True
    elif target.production:
        names = list(supabase.worker_secrets(values))
        plan.secrets_source = ".env" if names else None
        optional = False
    else:
        names = []
        plan.notes.append(
            f"{api} gets no Supabase credentials: deploy with --platform both to create the "
            "branch's database and wire its URL and keys into the worker."
        )
    for secret in names:
        plan.steps.append(
            Step(
                "cloudflare",
                "secret",
                f"Set secret {secret} on {api}",
                (*wrangler, *cloudflare.secret_put_args(secret, api)),
                api_dir,
                worker=api,
                secret=secret,
                optional=optional,
            )
        )


def plan_cleanup(
    root: Path, target: Target, platforms: Sequence[str], values: Mapping[str, str], tools: Tools
) -> DeployPlan:
    """The steps of ``shipyard deploy cleanup``: delete the branch's workers and Supabase branch."""
    if target.production:
        raise DeployError(
            f"{target.branch!r} is the production branch: cleanup deletes preview environments "
            "only. Pass --branch with the preview branch to remove."
        )
    plan = DeployPlan(
        root=root,
        target=target,
        platforms=tuple(platforms),
        project_ref=values.get("SUPABASE_PROJECT_REF") or None,
        account_id=values.get("CLOUDFLARE_ACCOUNT_ID") or None,
    )
    if "cloudflare" in platforms:
        wrangler = _require(
            tools.cloudflare.wrangler, "wrangler", cloudflare.WRANGLER_INSTALL_HINT, plan.notes
        )
        names = [plan.api_worker] + [target.worker(f) for f in cloudflare.function_names(root)]
        for name in names:
            plan.steps.append(
                Step(
                    "cloudflare",
                    "delete",
                    f"Delete worker {name}",
                    (*wrangler, *cloudflare.delete_args(name)),
                    root,
                    worker=name,
                )
            )
    if "supabase" in platforms:
        sb = _require(tools.supabase, "supabase", supabase.SUPABASE_INSTALL_HINT, plan.notes)
        ref = plan.project_ref or "<SUPABASE_PROJECT_REF>"
        name = target.supabase_branch
        plan.steps.append(
            Step(
                "supabase",
                "branch-delete",
                f"Delete Supabase preview branch {name}",
                (*sb, *supabase.branch_delete_args(name, ref)),
                root,
            )
        )
    return plan
