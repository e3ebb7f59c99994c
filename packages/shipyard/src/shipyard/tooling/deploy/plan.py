"""What a deploy (or a cleanup) will do: the target, the checks, and each command in order.

A :class:`DeployPlan` is built without running anything, so ``--dry-run`` prints exactly the
commands a real deploy runs. :mod:`shipyard.tooling.deploy.runner` then runs it.

Order of a deploy (each platform only when selected):

1. Supabase — production: ``link`` the project, ``db push`` the migrations. Preview:
   ``branches create`` (409 → reuse), ``branches get -o env`` (the branch's credentials),
   ``link`` the branch's ref, ``db push``.
2. Cloudflare — for the API worker, then one worker per function: ``pywrangler sync`` (pinned,
   vendors the Python packages the worker imports) in its folder under ``.shipyard/deploy/``,
   then ``wrangler deploy --name``.
3. Secrets — one ``wrangler secret bulk --name <api worker>`` with every secret as JSON on
   stdin: the preview branch's credentials in preview, the ``.env`` values in production.

4. Engine (``--platform engine``) — ``podman``/``docker build`` of the project's Dockerfile,
   tagged with the version, and ``push`` to ``SHIPYARD_IMAGE_REPOSITORY`` when it is set.

Placeholders are never sent: a placeholder or empty value in any variable a deploy would send
(the Cloudflare token and account, the project ref, and in production the API's secrets) stops
it before anything runs, dry run included.

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
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.errors import DeployError, EngineImageError
from shipyard.tooling.deploy import cloudflare, engine, naming, supabase
from shipyard.tooling.envcheck import Finding, Level, check_values, load_env_files
from shipyard.tooling.placeholders import placeholder_reason

PLATFORMS = ("cloudflare", "supabase", "engine")
ENGINE_SECRETS = ("SHIPYARD_API_URL", "SHIPYARD_SECRET_KEY")
"""What the API worker needs to reach the engine server (the remote client)."""
ENGINE_KEY_NAME = "deploy"
"""The name of the secret keys a preview deploy creates (and rotates) for its environment."""
PLATFORM_TITLES = {"cloudflare": "Cloudflare", "supabase": "Supabase", "engine": "Engine image"}


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

    @property
    def engine_environment(self) -> str:
        """The engine environment the deployed API triggers runs in: ``production``, or
        ``preview/<branch slug>`` (one per preview, so its runs, queues and keys are apart)."""
        return "production" if self.production else f"preview/{self.supabase_branch}"


def shipyard_command() -> tuple[str, ...]:
    """This Python's ``shipyard`` CLI (it reaches the engine's database in-process)."""
    return (sys.executable, "-m", "shipyard")


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

    ``action`` is what it does (``sync``, ``deploy``, ``secrets``, ``branch-create``,
    ``branch-get``, ``link``, ``push``, ``delete``, ``branch-delete``, ``image-build``,
    ``image-push``); ``secrets`` names the values written to the command's standard input (as
    one JSON object); ``source`` is what a worker is built from (``apps/api``,
    ``functions/<name>``), laid out in the step's folder first when ``lay_out`` is set.
    """

    platform: str
    action: str
    title: str
    argv: tuple[str, ...]
    cwd: Path
    worker: str | None = None
    secrets: tuple[str, ...] = ()
    source: str | None = None
    lay_out: bool = False
    optional: bool = False

    def display(self, root: Path | None = None) -> str:
        """The command as a shell line (``cd`` into its folder), the secrets shown as stdin."""
        line = shlex.join(self.argv)
        if self.secrets:
            line += f"   # stdin: JSON of {', '.join(self.secrets)}"
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
    blockers: list[str] = field(default_factory=list)
    image: str | None = None
    image_pushed: bool = False
    run_commands: list[str] = field(default_factory=list)
    engine_environment: str | None = None
    engine_url: str | None = None

    @property
    def api_worker(self) -> str:
        return self.target.worker(naming.API_WORKER)


@dataclass(frozen=True, slots=True)
class Tools:
    """The command prefixes found on PATH (empty tuple: not installed)."""

    cloudflare: cloudflare.CloudflareTools
    supabase: tuple[str, ...]
    container: engine.ContainerTool | None = None

    @classmethod
    def find(cls, platforms: Sequence[str] = ()) -> Tools:
        """The tools on PATH; the container engine is probed only for ``engine`` deploys."""
        container = engine.find_container_tool() if "engine" in platforms else None
        return cls(
            cloudflare=cloudflare.find_tools(), supabase=supabase.find_tool(), container=container
        )


def parse_platform(value: str) -> tuple[str, ...]:
    """``cloudflare``, ``supabase``, ``both`` or ``engine`` → the platforms, in deploy order."""
    value = value.strip().lower()
    if value == "both":
        return ("supabase", "cloudflare")
    if value in PLATFORMS:
        return (value,)
    raise DeployError(f"unknown platform {value!r}: use cloudflare, supabase, both or engine.")


# -- environment ---------------------------------------------------------------------------

DEPLOY_VARIABLES: dict[str, tuple[str, ...]] = {
    "cloudflare": ("CLOUDFLARE_API", "CLOUDFLARE_ACCOUNT_ID"),
    "supabase": ("SUPABASE_PROJECT_REF",),
    "engine": (),
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
    names.update(("SHIPYARD_API_URL", "SHIPYARD_DATABASE_URL", "SHIPYARD_SECRET_KEY"))
    values.update({name: source[name] for name in names if source.get(name)})
    return values


def sent_variables(
    values: Mapping[str, str], platforms: Sequence[str], target: Target | None = None
) -> list[str]:
    """The variables a deploy hands to a tool or a worker: each platform's own, and — on a
    production Cloudflare deploy — every API secret present in ``values``."""
    names = [name for p in platforms for name in DEPLOY_VARIABLES[p]]
    if "cloudflare" in platforms and target is not None and target.production:
        names += [name for name in supabase.WORKER_SECRETS if name in values]
        names += [name for name in ENGINE_SECRETS if name in values]
    return names


def verify(
    values: Mapping[str, str], platforms: Sequence[str], target: Target | None = None
) -> list[Finding]:
    """check-envs' findings for the selected platforms; required-for-deploy variables that are
    not set are errors, and so is a placeholder or empty value in any variable the deploy
    would send. The deploy stops when any finding is an error."""
    titles = {PLATFORM_TITLES[p] for p in platforms}
    required = {name for p in platforms for name in DEPLOY_VARIABLES[p]}
    sent = set(sent_variables(values, platforms, target))
    findings = []
    for finding in check_values(values):
        name = finding.variable.name
        if finding.variable.platform not in titles and name not in sent:
            continue
        if name in required and finding.status == "not_set":
            finding.add(
                Level.ERROR, f"required to deploy to {finding.variable.platform}", "missing"
            )
        reason = placeholder_reason(values[name]) if name in values else None
        if name in sent and reason is not None:
            finding.add(
                Level.ERROR,
                f"{'is empty' if reason == 'empty' else 'is a placeholder'}: `shipyard deploy` "
                "never sends one — fill it in or delete the line",
                "empty" if reason == "empty" else "placeholder",
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


def _real(values: Mapping[str, str], name: str) -> str | None:
    """``values[name]`` unless it is unset, blank or a placeholder (never shown in a plan)."""
    value = (values.get(name) or "").strip()
    return value if value and placeholder_reason(value) is None else None


def _require(prefix: tuple[str, ...], tool: str, hint: str, notes: list[str]) -> tuple[str, ...]:
    if prefix:
        return prefix
    note = f"{tool} is not installed: {hint}."
    if note not in notes:
        notes.append(note)
    return (tool,)


def plan_deploy(
    root: Path,
    target: Target,
    platforms: Sequence[str],
    values: Mapping[str, str],
    tools: Tools,
    *,
    bundle_only: bool = False,
    environ: Mapping[str, str] | None = None,
) -> DeployPlan:
    """The steps of ``shipyard deploy`` (see the module docstring for their order)."""
    plan = DeployPlan(
        root=root,
        target=target,
        platforms=tuple(platforms),
        project_ref=_real(values, "SUPABASE_PROJECT_REF"),
        account_id=_real(values, "CLOUDFLARE_ACCOUNT_ID"),
        bundle_only=bundle_only,
    )
    if "supabase" in platforms and not bundle_only:
        _plan_supabase(plan, tools)
    if "cloudflare" in platforms:
        _plan_cloudflare(plan, values, tools)
    if "engine" in platforms:
        _plan_engine(plan, tools, {**values, **(os.environ if environ is None else environ)})
    return plan


def _plan_engine(plan: DeployPlan, tools: Tools, environ: Mapping[str, str]) -> None:
    """Build the engine image with podman or docker; push it, or say how to run it."""
    if not (plan.root / engine.DOCKERFILE).is_file():
        plan.blockers.append(f"{plan.root / engine.DOCKERFILE} does not exist.")
        return
    try:
        version = engine.image_version(plan.root, environ)
        image, push = engine.image_reference(environ, version)
    except EngineImageError as exc:
        plan.blockers.append(str(exc))
        return
    found = tools.container or engine.ContainerTool((), "no container engine was looked for")
    if not found.argv:
        plan.blockers.append(
            f"cannot build the engine image here: {found.problem}. Install podman, or start "
            "the docker engine (a docker CLI alone cannot build)."
        )
    tool = found.argv or ("docker",)
    plan.image, plan.image_pushed = image, push
    plan.steps.append(
        Step(
            "engine",
            "image-build",
            f"Build image {image}",
            (*tool, *engine.build_args(image)),
            plan.root,
        )
    )
    if push:
        plan.steps.append(
            Step(
                "engine",
                "image-push",
                f"Push image {image}",
                (*tool, *engine.push_args(image)),
                plan.root,
            )
        )
    else:
        plan.run_commands = engine.run_commands(tool[0], image)


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


def _plan_worker(
    plan: DeployPlan, tools: Tools, name: str, source: str, folder: Path, preview: bool
) -> None:
    """``pywrangler sync`` (when available) then ``wrangler deploy`` for one worker."""
    deploy = _require(
        tools.cloudflare.deploy, "wrangler", cloudflare.WRANGLER_INSTALL_HINT, plan.notes
    )
    plan.workers.append(Worker(name, source, folder))
    sync = tools.cloudflare.sync
    if sync:
        plan.steps.append(
            Step(
                "cloudflare",
                "sync",
                f"Bundle the Python packages of {name} ({source})",
                (*sync, *cloudflare.sync_args()),
                folder,
                worker=name,
                source=source,
                lay_out=True,
            )
        )
    bundle = plan.root / cloudflare.BUILD_DIR / "bundles" / name if plan.bundle_only else None
    plan.steps.append(
        Step(
            "cloudflare",
            "deploy",
            f"Deploy worker {name} ({source})",
            (*deploy, *cloudflare.deploy_args(name, preview=preview, bundle_dir=bundle)),
            folder,
            worker=name,
            source=source,
            lay_out=not sync,
        )
    )


def _plan_cloudflare(plan: DeployPlan, values: Mapping[str, str], tools: Tools) -> None:
    root, target = plan.root, plan.target
    preview = not target.production
    if not tools.cloudflare.sync:
        plan.notes.append(
            "pywrangler is not available (it needs uv): the workers are deployed without "
            "their Python packages."
        )
    api_dir = root / cloudflare.API_DIR
    has_api = (api_dir / "wrangler.jsonc").is_file() or (api_dir / "wrangler.toml").is_file()
    if has_api:
        folder = cloudflare.api_build_dir(root)
        _plan_worker(plan, tools, plan.api_worker, str(cloudflare.API_DIR), folder, preview)
    else:
        plan.notes.append("apps/api has no wrangler.jsonc: the API worker is not deployed.")
    for function in cloudflare.function_names(root):
        folder = cloudflare.function_build_dir(root, function)
        source = f"{cloudflare.FUNCTIONS_DIR}/{function}"
        _plan_worker(plan, tools, target.worker(function), source, folder, preview)

    if plan.bundle_only or not has_api:
        return
    api = plan.api_worker
    optional = False
    if preview and "supabase" in plan.platforms:
        plan.secrets_source = f"Supabase preview branch {target.supabase_branch}"
        names: Sequence[str] = supabase.WORKER_SECRETS
        optional = True
    elif target.production:
        names = list(supabase.worker_secrets(values))
        plan.secrets_source = ".env" if names else None
    else:
        names = []
        plan.notes.append(
            f"{api} gets no Supabase credentials: deploy with --platform both to create the "
            "branch's database and wire its URL and keys into the worker."
        )
    names = [*names, *_plan_engine_key(plan, values)]
    if names:
        wrangler = tools.cloudflare.wrangler or tools.cloudflare.deploy or ("wrangler",)
        plan.steps.append(
            Step(
                "cloudflare",
                "secrets",
                f"Set the secrets of {api} (one version)",
                (*wrangler, *cloudflare.secret_bulk_args(api)),
                root,
                worker=api,
                secrets=tuple(names),
                optional=optional,
            )
        )


def _plan_engine_key(plan: DeployPlan, values: Mapping[str, str]) -> list[str]:
    """The engine secrets the API worker gets. Production: ``SHIPYARD_API_URL`` and
    ``SHIPYARD_SECRET_KEY`` from ``.env``. A preview: the engine URL and a key of the preview's
    own environment, created by a step before the secrets (never the production key)."""
    target = plan.target
    plan.engine_url = _real(values, "SHIPYARD_API_URL")
    if target.production:
        if plan.engine_url:
            plan.engine_environment = target.engine_environment
        return [name for name in ENGINE_SECRETS if _real(values, name)]
    if not (_real(values, "SHIPYARD_API_URL") and _real(values, "SHIPYARD_DATABASE_URL")):
        plan.notes.append(
            f"{plan.api_worker} gets no engine key: set SHIPYARD_API_URL (the engine server's "
            "URL) and SHIPYARD_DATABASE_URL (its database) in .env to wire one."
        )
        return []
    environment = target.engine_environment
    plan.engine_environment = environment
    plan.steps.append(
        Step(
            "engine",
            "engine-key",
            f"Create the secret key of engine environment {environment}",
            (
                *shipyard_command(),
                "keys",
                "create",
                "--env",
                environment,
                "--name",
                ENGINE_KEY_NAME,
                "--rotate",
                "--json",
            ),
            plan.root,
        )
    )
    return list(ENGINE_SECRETS)


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
        project_ref=_real(values, "SUPABASE_PROJECT_REF"),
        account_id=_real(values, "CLOUDFLARE_ACCOUNT_ID"),
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
    if "cloudflare" in platforms and _real(values, "SHIPYARD_DATABASE_URL"):
        environment = target.engine_environment
        plan.engine_environment = environment
        plan.steps.append(
            Step(
                "engine",
                "key-revoke",
                f"Revoke the secret keys of engine environment {environment}",
                (*shipyard_command(), "keys", "revoke", "--env", environment, "--json"),
                root,
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
