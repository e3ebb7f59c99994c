"""Running a :class:`~shipyard.tooling.deploy.plan.DeployPlan`, one step at a time.

Each step's command runs with the deploy tools' environment, its output captured. The first
failing step stops the deploy with the tool's own message (its last lines) and what to do next;
a missing CLI says how to install it. Two failures are expected answers, not errors: a 409 from
``supabase branches create`` (the preview branch exists: it is reused) and deleting a worker or
branch that is already gone.

Secret values — the ``.env`` tokens and keys and everything ``supabase branches get`` returns —
are written only to a command's standard input; any that a tool echoes are masked in the
messages this module returns.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from shipyard.tooling.deploy import cloudflare, naming, supabase
from shipyard.tooling.deploy.plan import DeployPlan, Step
from shipyard.tooling.placeholders import is_placeholder

SECRET_VARIABLES = (
    "CLOUDFLARE_API",
    "CLOUDFLARE_API_TOKEN",
    "SUPABASE_ACCESS_TOKEN",
    "SUPABASE_DB_PASSWORD",
    "SUPABASE_ANON_KEY",
    "SUPABASE_PUBLISHABLE_KEY",
    "SUPABASE_SERVICE_ROLE_KEY",
    "SUPABASE_SECRET_KEY",
    "SUPABASE_JWT_SECRET",
    "SHIPYARD_SECRET_KEY",
)
MASK = "********"
BRANCH_LINK_PLACEHOLDER = "<branch ref>"

Run = Callable[..., "subprocess.CompletedProcess[str]"]
Sleep = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class StepResult:
    """How a step ended: ``ok``, ``reused``, ``gone`` (already deleted), ``skipped``, ``failed``."""

    step: Step
    status: str
    detail: str
    seconds: float = 0.0
    url: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass(frozen=True, slots=True)
class Failure:
    """Why the deploy stopped: the step, the tool's message (masked) and what to do next."""

    step: Step
    message: str
    hint: str


@dataclass
class DeployResult:
    """What a run did: every step's result, the URLs found, and the failure if one stopped it."""

    plan: DeployPlan
    results: list[StepResult] = field(default_factory=list)
    failure: Failure | None = None
    urls: dict[str, str] = field(default_factory=dict)
    branch_ref: str | None = None
    secrets_set: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None


Progress = Callable[[int, int, Step, StepResult | None], None]


def _json_list(text: str) -> list[object]:
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def _tail(text: str, lines: int = 8) -> str:
    kept = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def hint_for(step: Step, output: str) -> str:
    """What to do after ``step`` failed with ``output``."""
    low = output.lower()
    again = "then run the same `shipyard deploy` again (finished steps are safe to repeat)"
    if step.action == "sync":
        known = cloudflare.sync_hint(output)
        if known:
            return f"{known}, {again}."
    if step.platform == "cloudflare":
        if any(s in low for s in ("401", "unauthorized", "authentication error", "[code: 10000]")):
            return (
                "Cloudflare refused the API token: check CLOUDFLARE_API in .env (a token made "
                'from the "Edit Cloudflare Workers" template; `shipyard check-envs` checks its '
                f"format), {again}."
            )
        if "403" in low or "forbidden" in low:
            return (
                "the token may not act on this account: check CLOUDFLARE_ACCOUNT_ID and the "
                f"token's permissions (Workers Scripts: Edit), {again}."
            )
    if step.platform == "supabase":
        if any(s in low for s in ("401", "unauthorized", "access token", "supabase login")):
            return (
                "the Supabase CLI is not logged in: run `supabase login` (or set "
                f"SUPABASE_ACCESS_TOKEN), {again}."
            )
        if "402" in low or ("branching" in low and ("enable" in low or "plan" in low)):
            return (
                "preview branches need Branching enabled on the Supabase project (a paid plan): "
                f"enable it in the dashboard or deploy with --platform cloudflare, {again}."
            )
        if step.action == "link" and ("404" in low or "not found" in low):
            return f"check SUPABASE_PROJECT_REF in .env (20 lowercase letters), {again}."
    return f"fix the problem above, {again}."


class Runner:
    """Runs plans with one tool environment; see the module docstring."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        secret_values: Mapping[str, str] | None = None,
        run: Run = subprocess.run,
        sleep: Sleep = time.sleep,
        branch_wait: float = 180.0,
        timeout: float = 900.0,
    ) -> None:
        self.env = dict(env)
        self.secret_values: dict[str, str] = dict(secret_values or {})
        self.run_command = run
        self.sleep = sleep
        self.branch_wait = branch_wait
        self.timeout = timeout
        self._masked: set[str] = set()
        self.hide(env.get(name, "") for name in SECRET_VARIABLES)
        self.hide(self.secret_values.get(name, "") for name in SECRET_VARIABLES)
        for url in (
            env.get("SHIPYARD_DATABASE_URL"),
            self.secret_values.get("SHIPYARD_DATABASE_URL"),
        ):
            if url and "://" in url:
                self.hide([urlsplit(url).password or ""])

    def hide(self, values: Iterable[str]) -> None:
        """Mask these values wherever a tool's output is shown."""
        self._masked.update(v for v in values if v and len(v) >= 4)

    def mask(self, text: str) -> str:
        """``text`` with every secret value replaced by :data:`MASK`."""
        for value in sorted(self._masked, key=len, reverse=True):
            text = text.replace(value, MASK)
        return text

    def execute(self, plan: DeployPlan, progress: Progress | None = None) -> DeployResult:
        """Run the plan's steps in order; stop at the first failure."""
        result = DeployResult(plan=plan)
        total = len(plan.steps)
        for index, step in enumerate(plan.steps, start=1):
            if progress:
                progress(index, total, step, None)
            started = time.monotonic()
            outcome = self._step(plan, step, result)
            outcome = StepResult(
                outcome.step,
                outcome.status,
                outcome.detail,
                round(time.monotonic() - started, 2),
                outcome.url,
            )
            result.results.append(outcome)
            if progress:
                progress(index, total, step, outcome)
            if not outcome.ok:
                break
        return result

    # -- one step ---------------------------------------------------------------------------

    def _call(self, argv: tuple[str, ...], step: Step, stdin: str = "") -> tuple[int, str, str]:
        completed = self.run_command(
            list(argv),
            cwd=step.cwd,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=self.timeout,
        )
        return completed.returncode, completed.stdout or "", completed.stderr or ""

    def _fail(self, result: DeployResult, step: Step, message: str, hint: str) -> StepResult:
        result.failure = Failure(step, self.mask(message), hint)
        return StepResult(step, "failed", self.mask(_tail(message, 1)) or "failed")

    def _step(self, plan: DeployPlan, step: Step, result: DeployResult) -> StepResult:
        argv = step.argv
        stdin = ""
        if step.action == "link" and BRANCH_LINK_PLACEHOLDER in argv:
            if result.branch_ref is None:
                return self._fail(
                    result,
                    step,
                    "the preview branch's project ref is unknown",
                    "run the deploy again once the branch is ready.",
                )
            argv = tuple(result.branch_ref if a == BRANCH_LINK_PLACEHOLDER else a for a in argv)
        if step.secrets:
            values = {n: v for n in step.secrets if (v := self.secret_values.get(n, "")).strip()}
            if not values:
                return StepResult(step, "skipped", "no secrets to set: skipped")
            refused = [n for n, v in values.items() if is_placeholder(v)]
            if refused:
                return self._fail(
                    result,
                    step,
                    f"placeholder values in {', '.join(refused)}: never sent as secrets",
                    "put the real values in .env (see `shipyard check-envs`), then deploy again.",
                )
            stdin = cloudflare.secrets_json(values)
        if step.lay_out and step.source and step.worker:
            cloudflare.lay_out(plan.root, step.source, step.worker)
        if step.action == "branch-get":
            return self._branch_get(step, argv, result)
        try:
            code, out, err = self._call(argv, step, stdin)
        except FileNotFoundError:
            return self._missing(result, step)
        except subprocess.TimeoutExpired:
            return self._fail(
                result,
                step,
                f"{argv[0]} did not finish in {self.timeout:.0f} s",
                hint_for(step, ""),
            )
        output = f"{out}\n{err}".strip()
        if code == 127:
            return self._missing(result, step)
        if code != 0:
            return self._on_error(result, step, output)
        if step.action == "deploy":
            if plan.bundle_only:
                return StepResult(step, "ok", "bundled (nothing uploaded)")
            url = cloudflare.find_url(output) or naming.worker_url(step.worker or "", None)
            if step.worker:
                result.urls[step.worker] = url
            return StepResult(step, "ok", url, url=url)
        if step.action == "engine-key":
            return self._engine_key(result, step, out)
        if step.action == "key-revoke":
            revoked = _json_list(out)
            return StepResult(step, "ok", f"{len(revoked)} key(s) revoked")
        if step.action == "secrets":
            names = [n for n in step.secrets if (self.secret_values.get(n) or "").strip()]
            result.secrets_set.extend(names)
            return StepResult(step, "ok", f"{', '.join(names)} set (values sent on stdin)")
        if step.action == "sync":
            return StepResult(step, "ok", "Python packages vendored into python_modules/")
        if step.action == "branch-create":
            return StepResult(step, "ok", "created")
        if step.action == "image-build":
            return StepResult(step, "ok", f"built {plan.image}")
        if step.action == "image-push":
            return StepResult(step, "ok", f"pushed {plan.image}")
        return StepResult(step, "ok", "done")

    def _engine_key(self, result: DeployResult, step: Step, out: str) -> StepResult:
        try:
            created = json.loads(out)
            key, key_id = str(created["key"]), str(created["id"])
        except (ValueError, KeyError, TypeError):
            return self._fail(
                result,
                step,
                "shipyard keys create printed no key",
                "check SHIPYARD_DATABASE_URL in .env (the engine server's database), then "
                "deploy again.",
            )
        self.hide([key])
        # The preview worker gets its own environment's key, never the one in .env.
        self.secret_values["SHIPYARD_SECRET_KEY"] = key
        return StepResult(step, "ok", f"{key_id} of {created.get('environment')} (value hidden)")

    def _missing(self, result: DeployResult, step: Step) -> StepResult:
        tool = step.argv[0]
        hint = {
            "supabase": supabase.SUPABASE_INSTALL_HINT,
            "engine": "install podman or docker (with a running engine)",
        }.get(step.platform, cloudflare.WRANGLER_INSTALL_HINT)
        return self._fail(
            result, step, f"{tool}: command not found", hint[:1].upper() + hint[1:] + "."
        )

    def _on_error(self, result: DeployResult, step: Step, output: str) -> StepResult:
        low = output.lower()
        if step.action == "branch-create" and supabase.is_conflict(output):
            return StepResult(step, "reused", "exists already: reused")
        gone = ("does not exist", "not found", "[code: 10007]", "404")
        if step.action in ("delete", "branch-delete") and any(s in low for s in gone):
            return StepResult(step, "gone", "already deleted")
        return self._fail(
            result,
            step,
            _tail(output) or f"{step.argv[0]} failed without a message",
            hint_for(step, output),
        )

    def _branch_get(self, step: Step, argv: tuple[str, ...], result: DeployResult) -> StepResult:
        deadline = time.monotonic() + self.branch_wait
        interval = min(5.0, max(self.branch_wait, 0.0) / 4)
        while True:
            try:
                code, out, err = self._call(argv, step)
            except FileNotFoundError:
                return self._missing(result, step)
            if code == 127:
                return self._missing(result, step)
            values = supabase.parse_branch_env(out) if code == 0 else {}
            self._hide_branch(values)
            if code == 0 and supabase.branch_ready(values):
                break
            if time.monotonic() + interval > deadline or interval <= 0:
                if code != 0:
                    return self._on_error(result, step, f"{out}\n{err}".strip())
                return self._fail(
                    result,
                    step,
                    "the preview branch has no URL and keys yet (it is still being created)",
                    "wait a minute for the branch to come up (or pass a longer --branch-wait), "
                    "then run the same `shipyard deploy` again.",
                )
            self.sleep(interval)
        result.branch_ref = supabase.ref_from_url(values["SUPABASE_URL"])
        secrets = supabase.worker_secrets(values)
        # The preview worker gets the branch's values only, never the project's from .env.
        for name in supabase.WORKER_SECRETS:
            self.secret_values.pop(name, None)
        self.secret_values.update(secrets)
        names = ", ".join(secrets)
        return StepResult(step, "ok", f"{names} (values hidden)")

    def _hide_branch(self, values: Mapping[str, str]) -> None:
        hidden = [v for k, v in values.items() if k != "SUPABASE_URL"]
        for value in values.values():
            if "://" in value:
                password = urlsplit(value).password
                if password:
                    hidden.append(password)
        self.hide(hidden)
