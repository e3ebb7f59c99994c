"""``shipyard deploy`` against fake CLIs on PATH: the exact commands, names and secret wiring.

The fakes (:mod:`deploy_fakes`) record argv, working directory, environment and standard input
and answer like the real tools, failures included. Every test also checks that no secret value
— from ``.env`` or from the Supabase branch — ever reaches shipyard's output or a command line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from deploy_fakes import BRANCH_ENV, BRANCH_REF, SUBDOMAIN, Fakes, install_fakes
from typer.testing import CliRunner

from shipyard.cli import deploy as deploy_cli
from shipyard.cli.main import app
from shipyard.tooling.deploy.cloudflare import WORKERS_PY_VERSION, WRANGLER_VERSION
from shipyard.tooling.deploy.supabase import SUPABASE_CLI_VERSION
from shipyard.tooling.envcheck import VARIABLES

REPO_ROOT = Path(__file__).resolve().parents[4]
REF = "abcdefghijklmnopqrst"
ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "cf-token-SECRET-valid-0000"
ENV = {
    "CLOUDFLARE_API": TOKEN,
    "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
    "SUPABASE_URL": f"https://{REF}.supabase.co",
    "SUPABASE_PROJECT_REF": REF,
    "SUPABASE_PUBLISHABLE_KEY": "sb_publishable_SECRET-pub-0004",
    "SUPABASE_SECRET_KEY": "sb_secret_SECRET-sec-0005",
    "SUPABASE_JWT_SECRET": "prod-jwt-secret-SECRET-0006-at-least-32-chars",
}
SECRET_VALUES = [
    TOKEN,
    ENV["SUPABASE_PUBLISHABLE_KEY"],
    ENV["SUPABASE_SECRET_KEY"],
    ENV["SUPABASE_JWT_SECRET"],
    *(v for k, v in BRANCH_ENV.items() if k != "SUPABASE_URL"),
    "pg-branch-password-123",
]
ALL_TOOLS = ("wrangler", "pywrangler", "supabase", "npx")


@pytest.fixture(autouse=True)
def no_inherited_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in VARIABLES:
        monkeypatch.delenv(variable.name, raising=False)
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)


def write_env(root: Path, values: dict[str, str]) -> None:
    (root / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the template's deployable parts: apps/api, functions, supabase/migrations."""
    root = tmp_path / "project"
    (root / "apps" / "api").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "apps/api/wrangler.jsonc", root / "apps/api/wrangler.jsonc")
    shutil.copy(REPO_ROOT / "apps/api/pyproject.toml", root / "apps/api/pyproject.toml")
    shutil.copytree(REPO_ROOT / "apps/api/src", root / "apps/api/src")
    shutil.copytree(
        REPO_ROOT / "functions", root / "functions", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(REPO_ROOT / "supabase/migrations", root / "supabase/migrations")
    (root / "pyproject.toml").write_text('[project]\nname = "demo"\n\n[tool.shipyard]\n')
    write_env(root, ENV)
    return root


def path_with(tmp_path: Path, tools: tuple[str, ...]) -> tuple[Fakes, str]:
    """Fakes for ``tools`` first on PATH, then only git: no real deploy CLI is reachable."""
    fakes = install_fakes(tmp_path / "fakebin", tools)
    system = tmp_path / "systembin"
    system.mkdir(exist_ok=True)
    git = shutil.which("git")
    if git and not (system / "git").exists():
        (system / "git").symlink_to(git)
    return fakes, f"{fakes.bin}{os.pathsep}{system}"


def run(project: Path, path: str, *args: str, **env: str) -> Result:
    environment = {
        "SHIPYARD_PROJECT_ROOT": str(project),
        "PATH": path,
        "NO_COLOR": "1",
        "COLUMNS": "250",
        **env,
    }
    return CliRunner().invoke(app, ["deploy", *args], env=environment, catch_exceptions=False)


def assert_no_secrets(result: Result, fakes: Fakes) -> None:
    for value in SECRET_VALUES:
        assert value not in result.output, f"a secret value leaked into the output: {value}"
        for call in fakes.calls():
            assert value not in " ".join(call["argv"]), f"a secret on a command line: {call}"


def call(fakes: Fakes, index: int) -> dict[str, Any]:
    return fakes.calls()[index]


# -- production ----------------------------------------------------------------------------


def test_production_deploys_api_then_functions_then_dotenv_secrets(
    project: Path, tmp_path: Path
) -> None:
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    result = run(project, path, "--platform", "cloudflare", "--branch", "main")
    assert result.exit_code == 0, result.output
    assert fakes.argvs() == [
        ["pywrangler", "sync"],
        ["wrangler", "deploy", "--name", "api"],
        ["pywrangler", "sync"],
        ["wrangler", "deploy", "--name", "hello-world"],
        ["wrangler", "secret", "bulk", "--name", "api"],
    ]
    calls = fakes.calls()
    api_dir = project / ".shipyard/deploy/api"
    function_dir = project / ".shipyard/deploy/functions/hello-world"
    assert [c["cwd"] for c in calls[:4]] == [str(api_dir)] * 2 + [str(function_dir)] * 2
    # CLOUDFLARE_API reaches every tool as CLOUDFLARE_API_TOKEN, with the account id.
    for recorded in calls:
        assert recorded["env"]["CLOUDFLARE_API_TOKEN"] == TOKEN
        assert recorded["env"]["CLOUDFLARE_ACCOUNT_ID"] == ACCOUNT
    # Every secret in ONE call (one new Worker version), as JSON on stdin and nowhere else.
    assert json.loads(calls[4]["stdin"]) == {
        "SUPABASE_URL": ENV["SUPABASE_URL"],
        "SUPABASE_PUBLISHABLE_KEY": ENV["SUPABASE_PUBLISHABLE_KEY"],
        "SUPABASE_SECRET_KEY": ENV["SUPABASE_SECRET_KEY"],
        "SUPABASE_JWT_SECRET": ENV["SUPABASE_JWT_SECRET"],
    }
    assert all(c["stdin"] == "" for c in calls[:4])
    # The API was laid out with its code, its Workers config and the packages it imports.
    assert (api_dir / "src/entry.py").is_file()
    assert (api_dir / "src/app/main.py").is_file()
    assert (api_dir / "wrangler.jsonc").is_file()
    api_packages = (api_dir / "python_modules/synced.txt").read_text()
    for requirement in ('"fastapi>=0.115"', '"pyjwt[crypto]>=2.9"', '"httpx>=0.27"'):
        assert requirement in api_packages, api_packages
    # The function became a worker: its files, an entry module, a generated config, and a
    # pyproject.toml declaring what it imports.
    assert (function_dir / "main.py").is_file()
    assert "from main import app" in (function_dir / "worker_entry.py").read_text()
    assert '"name": "hello-world"' in (function_dir / "wrangler.jsonc").read_text()
    assert not (function_dir / "tests").exists()
    declared = (function_dir / "pyproject.toml").read_text()
    assert '"starlette"' in declared
    assert "fastapi" not in declared  # only what its own code imports
    out = result.output
    assert "branch main → production (Cloudflare)" in out
    assert f"https://api.{SUBDOMAIN}.workers.dev" in out
    assert f"https://hello-world.{SUBDOMAIN}.workers.dev" in out
    assert f"https://dash.cloudflare.com/{ACCOUNT}/workers-and-pages" in out
    assert f"https://dash.cloudflare.com/{ACCOUNT}/workers/services/view/api" in out
    assert (
        f"https://dash.cloudflare.com/{ACCOUNT}/workers/services/view/api/production/"
        "observability/logs" in out
    )
    assert "Deploy summary" in out
    assert "Deployed." in out
    assert "cleanup" not in out  # production has nothing to clean up
    assert_no_secrets(result, fakes)


def test_production_supabase_links_the_project_and_pushes_migrations(
    project: Path, tmp_path: Path
) -> None:
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    result = run(project, path, "--platform", "supabase", "--branch", "master")
    assert result.exit_code == 0, result.output
    assert fakes.argvs() == [
        ["supabase", "link", "--project-ref", REF],
        ["supabase", "db", "push", "--linked"],
    ]
    assert all(c["cwd"] == str(project) for c in fakes.calls())
    assert f"https://supabase.com/dashboard/project/{REF}" in result.output
    assert_no_secrets(result, fakes)


# -- preview -------------------------------------------------------------------------------

PREVIEW_BOTH = [
    ["supabase", "branches", "create", "feature-user-auth", "--project-ref", REF],
    ["supabase", "branches", "get", "feature-user-auth", "--project-ref", REF, "-o", "env"],
    ["supabase", "link", "--project-ref", BRANCH_REF],
    ["supabase", "db", "push", "--linked"],
    ["pywrangler", "sync"],
    ["wrangler", "deploy", "--name", "api-feature-user-auth", "--var", "APP_ENV:preview"],
    ["pywrangler", "sync"],
    [
        "wrangler",
        "deploy",
        "--name",
        "hello-world-feature-user-auth",
        "--var",
        "APP_ENV:preview",
    ],
    ["wrangler", "secret", "bulk", "--name", "api-feature-user-auth"],
]


def test_preview_both_wires_the_branch_credentials_into_the_preview_worker(
    project: Path, tmp_path: Path
) -> None:
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    result = run(project, path, "--platform", "both", "--branch", "feature/User_Auth")
    assert result.exit_code == 0, result.output
    assert fakes.argvs() == PREVIEW_BOTH
    (bulk,) = [c for c in fakes.calls("wrangler") if c["argv"][:2] == ["secret", "bulk"]]
    secrets = json.loads(bulk["stdin"])
    # The branch's own URL and keys, not the production ones from .env.
    assert secrets == {
        "SUPABASE_URL": BRANCH_ENV["SUPABASE_URL"],
        "SUPABASE_ANON_KEY": BRANCH_ENV["SUPABASE_ANON_KEY"],
        "SUPABASE_SERVICE_ROLE_KEY": BRANCH_ENV["SUPABASE_SERVICE_ROLE_KEY"],
        "SUPABASE_JWT_SECRET": BRANCH_ENV["SUPABASE_JWT_SECRET"],
    }
    out = result.output
    assert "branch feature/User_Auth → preview (Supabase + Cloudflare)" in out
    assert f"https://api-feature-user-auth.{SUBDOMAIN}.workers.dev" in out
    assert f"https://supabase.com/dashboard/project/{BRANCH_REF}" in out
    assert "(values hidden)" in out
    assert "Supabase preview branch feature-user-auth" in out
    assert "uv run shipyard deploy cleanup --branch feature/User_Auth" in out
    assert "Applying migration" not in out  # tool chatter stays out of the summary
    assert_no_secrets(result, fakes)


def test_preview_cloudflare_only_wires_no_production_credentials(
    project: Path, tmp_path: Path
) -> None:
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    result = run(project, path, "-p", "cloudflare", "-b", "fix/bug-123")
    assert result.exit_code == 0, result.output
    assert fakes.argvs() == [
        ["pywrangler", "sync"],
        ["wrangler", "deploy", "--name", "api-fix-bug-123", "--var", "APP_ENV:preview"],
        ["pywrangler", "sync"],
        ["wrangler", "deploy", "--name", "hello-world-fix-bug-123", "--var", "APP_ENV:preview"],
    ]
    assert "gets no Supabase credentials" in result.output
    assert_no_secrets(result, fakes)


def test_existing_preview_branch_409_is_reused(project: Path, tmp_path: Path) -> None:
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    fakes.configure(existing_branches=["feature-user-auth"])
    result = run(project, path, "--platform", "both", "--branch", "feature/User_Auth")
    assert result.exit_code == 0, result.output
    assert fakes.argvs() == PREVIEW_BOTH
    assert "exists already: reused" in result.output
    assert_no_secrets(result, fakes)


def test_a_branch_still_being_created_is_polled_until_it_has_keys(
    project: Path, tmp_path: Path
) -> None:
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    fakes.configure(not_ready_calls=2)
    result = run(project, path, "-p", "both", "-b", "feature/User_Auth", "--branch-wait", "2")
    assert result.exit_code == 0, result.output
    gets = [a for a in fakes.argvs("supabase") if a[1:3] == ["branches", "get"]]
    assert len(gets) == 3
    assert_no_secrets(result, fakes)


def test_a_branch_that_never_comes_up_stops_before_cloudflare(
    project: Path, tmp_path: Path
) -> None:
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    fakes.configure(not_ready_calls=1000)
    result = run(project, path, "-p", "both", "-b", "feature/x", "--branch-wait", "0.4")
    assert result.exit_code == 1
    assert "still being created" in result.output
    assert "--branch-wait" in result.output
    assert fakes.calls("pywrangler") == fakes.calls("wrangler") == []
    assert_no_secrets(result, fakes)


# -- dry run -------------------------------------------------------------------------------


def test_dry_run_prints_the_exact_commands_and_runs_nothing(project: Path, tmp_path: Path) -> None:
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    result = run(project, path, "--platform", "both", "--branch", "feature/login", "--dry-run")
    assert result.exit_code == 0, result.output
    assert fakes.calls() == []
    out = result.output
    for line in (
        f"supabase branches create feature-login --project-ref {REF}",
        f"supabase branches get feature-login --project-ref {REF} -o env",
        "supabase link --project-ref '<branch ref>'",
        "supabase db push --linked",
        "(cd .shipyard/deploy/api && pywrangler sync)",
        "(cd .shipyard/deploy/api && wrangler deploy --name api-feature-login --var "
        "APP_ENV:preview)",
        "(cd .shipyard/deploy/functions/hello-world && wrangler deploy --name "
        "hello-world-feature-login --var APP_ENV:preview)",
        "wrangler secret bulk --name api-feature-login   # stdin: JSON of SUPABASE_URL, "
        "SUPABASE_PUBLISHABLE_KEY, SUPABASE_ANON_KEY, SUPABASE_SECRET_KEY, "
        "SUPABASE_SERVICE_ROLE_KEY, SUPABASE_JWT_SECRET",
        "worker api-feature-login ← apps/api",
        "worker hello-world-feature-login ← functions/hello-world",
        "Supabase preview branch feature-login",
        "CLOUDFLARE_API as CLOUDFLARE_API_TOKEN",
    ):
        assert line in out, line
    assert not (project / ".shipyard").exists()  # nothing written either
    assert_no_secrets(result, fakes)


def test_dry_run_on_production_names_the_production_workers(project: Path, tmp_path: Path) -> None:
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    result = run(project, path, "-p", "cloudflare", "-b", "main", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "(cd .shipyard/deploy/api && wrangler deploy --name api)" in result.output
    assert "wrangler secret bulk --name api   # stdin: JSON of SUPABASE_URL," in result.output
    assert fakes.calls() == []


def test_branch_is_read_from_git(project: Path, tmp_path: Path) -> None:
    _fakes, path = path_with(tmp_path, ALL_TOOLS)
    git = ["git", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run(["git", "checkout", "-q", "-b", "feature/From_Git"], cwd=project, check=True)
    result = run(project, path, "-p", "cloudflare", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "branch feature/From_Git → preview" in result.output
    assert "--name api-feature-from-git" in result.output


def test_no_git_repository_asks_for_branch(project: Path, tmp_path: Path) -> None:
    _fakes, path = path_with(tmp_path, ALL_TOOLS)
    result = run(
        project, path, "-p", "cloudflare", "--dry-run", GIT_CEILING_DIRECTORIES=str(tmp_path)
    )
    assert result.exit_code == 2
    assert "pass the branch with --branch" in result.output


def test_platform_is_asked_on_a_terminal_and_required_without_one(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    result = run(project, path, "--branch", "main", "--dry-run")
    assert result.exit_code == 2
    assert "pass --platform cloudflare, supabase, both or engine" in result.output
    monkeypatch.setattr(deploy_cli, "_interactive", lambda: True)
    result = CliRunner().invoke(
        app,
        ["deploy", "--branch", "main", "--dry-run"],
        input="azure\nsupabase\n",
        catch_exceptions=False,
        env={"SHIPYARD_PROJECT_ROOT": str(project), "PATH": path, "NO_COLOR": "1"},
    )
    assert result.exit_code == 0, result.output
    assert "Deploy to which platform?" in result.output
    assert "unknown platform 'azure'" in result.output
    assert "(Supabase)" in result.output
    assert fakes.calls() == []


# -- cleanup -------------------------------------------------------------------------------


def test_cleanup_deletes_the_preview_workers_and_branch(project: Path, tmp_path: Path) -> None:
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    result = run(project, path, "cleanup", "--branch", "feature/User_Auth")
    assert result.exit_code == 0, result.output
    assert fakes.argvs() == [
        ["wrangler", "delete", "--name", "api-feature-user-auth", "--force"],
        ["wrangler", "delete", "--name", "hello-world-feature-user-auth", "--force"],
        ["supabase", "branches", "delete", "feature-user-auth", "--project-ref", REF, "--yes"],
    ]
    assert all(c["env"]["CLOUDFLARE_API_TOKEN"] == TOKEN for c in fakes.calls("wrangler"))
    assert "Preview removed." in result.output
    assert_no_secrets(result, fakes)


def test_cleanup_of_a_worker_already_gone_goes_on(project: Path, tmp_path: Path) -> None:
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    fakes.configure(missing_workers=["api-feature-x"])
    result = run(project, path, "cleanup", "-b", "feature/x", "-p", "cloudflare")
    assert result.exit_code == 0, result.output
    assert "already deleted" in result.output
    assert len(fakes.calls("wrangler")) == 2


def test_cleanup_dry_run_and_production_refusal(project: Path, tmp_path: Path) -> None:
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    result = run(project, path, "cleanup", "-b", "feature/x", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "wrangler delete --name api-feature-x --force" in result.output
    assert f"supabase branches delete feature-x --project-ref {REF} --yes" in result.output
    result = run(project, path, "cleanup", "--branch", "main")
    assert result.exit_code == 2
    assert "production branch" in result.output
    assert fakes.calls() == []


# -- failures ------------------------------------------------------------------------------


def test_cloudflare_401_stops_with_the_tools_message_and_what_to_do(
    project: Path, tmp_path: Path
) -> None:
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    write_env(project, {**ENV, "CLOUDFLARE_API": "cf-token-SECRET-revoked-9999"})
    result = run(project, path, "--platform", "cloudflare", "--branch", "main")
    assert result.exit_code == 1
    assert fakes.argvs() == [["pywrangler", "sync"], ["wrangler", "deploy", "--name", "api"]]
    out = result.output
    assert "Stopped: Deploy worker api (apps/api) failed." in out
    assert "Authentication error [code: 10000]" in out
    assert "Cloudflare refused the API token: check CLOUDFLARE_API" in out
    assert "cf-token-SECRET-revoked-9999" not in out
    assert_no_secrets(result, fakes)


def test_supabase_401_says_to_log_in(project: Path, tmp_path: Path) -> None:
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    fakes.configure(supabase_unauthorized=True)
    result = run(project, path, "--platform", "both", "--branch", "feature/x")
    assert result.exit_code == 1
    assert len(fakes.calls()) == 1
    assert "Unauthorized" in result.output
    assert "run `supabase login`" in result.output
    assert fakes.calls("pywrangler") == []
    assert_no_secrets(result, fakes)


def test_a_failing_step_shows_its_message_and_stops(project: Path, tmp_path: Path) -> None:
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    fakes.configure(fail={"wrangler deploy --name api": {"stderr": "X [ERROR] Could not resolve"}})
    result = run(project, path, "--platform", "cloudflare", "--branch", "main")
    assert result.exit_code == 1
    assert fakes.argvs() == [["pywrangler", "sync"], ["wrangler", "deploy", "--name", "api"]]
    assert "X [ERROR] Could not resolve" in result.output
    assert "finished steps are safe to repeat" in result.output
    assert "not run" in result.output  # the summary shows what did not happen


def test_missing_cli_says_how_to_install_it(project: Path, tmp_path: Path) -> None:
    fakes, path = path_with(tmp_path, ())
    result = run(project, path, "--platform", "both", "--branch", "main")
    assert result.exit_code == 1
    assert "supabase is not installed" in result.output
    assert "npm install -g supabase" in result.output
    assert fakes.calls() == []
    fakes, path = path_with(tmp_path, ("supabase",))
    result = run(project, path, "--platform", "both", "--branch", "main")
    assert result.exit_code == 1
    assert "wrangler is not installed" in result.output
    assert "uv tool install workers-py" in result.output
    assert fakes.calls() == []  # nothing ran: the check comes before the first step


def test_npx_is_used_when_no_wrangler_is_installed(project: Path, tmp_path: Path) -> None:
    fakes, path = path_with(tmp_path, ("npx",))
    result = run(project, path, "--platform", "both", "--branch", "feature/login")
    assert result.exit_code == 0, result.output
    npx = fakes.argvs("npx")
    supabase_cli = f"supabase@{SUPABASE_CLI_VERSION}"
    wrangler = f"wrangler@{WRANGLER_VERSION}"
    assert npx[0] == [
        "npx",
        "--yes",
        supabase_cli,
        "branches",
        "create",
        "feature-login",
        "--project-ref",
        REF,
    ]
    assert [
        "npx",
        "--yes",
        wrangler,
        "deploy",
        "--name",
        "api-feature-login",
        "--var",
        "APP_ENV:preview",
    ] in npx
    assert ["npx", "--yes", wrangler, "secret", "bulk", "--name", "api-feature-login"] in npx
    # Every npx call names a pinned version.
    assert all(re.fullmatch(r"[a-z@/-]+@\d+\.\d+\.\d+", argv[2]) for argv in npx), npx
    assert "pywrangler is not available" in result.output
    assert_no_secrets(result, fakes)


def test_pywrangler_runs_pinned_through_uv(project: Path, tmp_path: Path) -> None:
    fakes, path = path_with(tmp_path, ("uv", "pywrangler", "wrangler"))
    result = run(project, path, "-p", "cloudflare", "-b", "main")
    assert result.exit_code == 0, result.output
    pinned = ["uv", "tool", "run", "--from", f"workers-py=={WORKERS_PY_VERSION}", "pywrangler"]
    assert fakes.argvs("uv") == [[*pinned, "sync"], [*pinned, "sync"]]
    assert "pywrangler is not available" not in result.output
    assert_no_secrets(result, fakes)


@pytest.mark.parametrize("branch", ["main", "feature/x"])
def test_deploy_refuses_the_example_env(project: Path, tmp_path: Path, branch: str) -> None:
    """``cp .env.example .env && shipyard deploy``: nothing runs, the variables are named."""
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    shutil.copy(REPO_ROOT / ".env.example", project / ".env")
    for extra in ((), ("--dry-run",)):
        result = run(project, path, "-p", "both", "-b", branch, *extra)
        assert result.exit_code == 1, result.output
        out = result.output
        assert "❌ CLOUDFLARE_API" in out and "❌ SUPABASE_PROJECT_REF" in out
        assert "<your_" not in out  # names, never values
        assert fakes.calls() == []


def test_production_refuses_a_placeholder_secret(project: Path, tmp_path: Path) -> None:
    """A real token, but one API secret left as in .env.example: refused before anything runs
    (it would have been sent to the Worker, which then trusted tokens signed with it)."""
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    placeholder = "<your_supabase_jwt_secret>"
    write_env(project, {**ENV, "SUPABASE_JWT_SECRET": placeholder, "SUPABASE_ANON_KEY": ""})
    for extra in ((), ("--dry-run",)):
        result = run(project, path, "-p", "cloudflare", "-b", "main", *extra)
        assert result.exit_code == 1, result.output
        line = next(x for x in result.output.splitlines() if "SUPABASE_JWT_SECRET" in x)
        assert "❌" in line and "is a placeholder" in line and "never sends one" in line
        empty = next(x for x in result.output.splitlines() if "SUPABASE_ANON_KEY" in x)
        assert "❌" in empty and "is empty" in empty
        assert placeholder not in result.output
        assert fakes.calls() == []
    # A preview takes its secrets from the Supabase branch: the .env placeholder is not sent.
    result = run(project, path, "-p", "both", "-b", "feature/x", "--dry-run")
    assert result.exit_code == 0, result.output


def test_environment_is_verified_before_anything_runs(project: Path, tmp_path: Path) -> None:
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    write_env(project, {k: v for k, v in ENV.items() if k != "CLOUDFLARE_ACCOUNT_ID"})
    result = run(project, path, "--platform", "cloudflare", "--branch", "main")
    assert result.exit_code == 1
    assert "❌ CLOUDFLARE_ACCOUNT_ID" in result.output
    assert fakes.calls() == []
    write_env(project, {k: v for k, v in ENV.items() if k != "SUPABASE_PROJECT_REF"})
    result = run(project, path, "--platform", "supabase", "--branch", "main")
    assert result.exit_code == 1
    assert "required to deploy to Supabase" in result.output
    assert fakes.calls() == []


def test_variables_from_the_process_environment_are_enough(project: Path, tmp_path: Path) -> None:
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    (project / ".env").unlink()
    result = run(project, path, "-p", "cloudflare", "-b", "main", **ENV)
    assert result.exit_code == 0, result.output
    assert fakes.calls()[0]["env"]["CLOUDFLARE_API_TOKEN"] == TOKEN
    assert_no_secrets(result, fakes)


def test_recorded_calls_are_json_lines(project: Path, tmp_path: Path) -> None:
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    run(project, path, "-p", "supabase", "-b", "main")
    for line in (fakes.bin / "calls.jsonl").read_text().splitlines():
        assert set(json.loads(line)) == {"tool", "argv", "cwd", "env", "stdin"}


# -- the engine: preview keys --------------------------------------------------------------

ENGINE_URL = "https://engine.example.com"
PRODUCTION_ENGINE_KEY = "sk_prod_SECRET-production-engine-key-0007"


def engine_env(project: Path, tmp_path: Path) -> Path:
    """``.env`` with the engine server's URL, its database (a real SQLite file) and key."""
    database = tmp_path / "engine.db"
    write_env(
        project,
        {
            **ENV,
            "SHIPYARD_API_URL": ENGINE_URL,
            "SHIPYARD_DATABASE_URL": f"sqlite:///{database}",
            "SHIPYARD_SECRET_KEY": PRODUCTION_ENGINE_KEY,
        },
    )
    return database


async def _find_key(project: Path, database: Path, key: str) -> tuple[str | None, list[Any]]:
    from shipyard.config import load_settings
    from shipyard.engine.engine import Engine

    engine = Engine(load_settings(project_root=project, database_url=f"sqlite:///{database}"))
    await engine.start()
    try:
        found = await engine.find_key(key)
        keys = await engine.list_keys("preview/feature-user-auth")
        return (found.environment if found else None), keys
    finally:
        await engine.close()


def test_preview_gets_a_key_of_its_own_engine_environment(project: Path, tmp_path: Path) -> None:
    import asyncio

    database = engine_env(project, tmp_path)
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    result = run(project, path, "-p", "cloudflare", "-b", "feature/User_Auth")
    assert result.exit_code == 0, result.output
    (bulk,) = [c for c in fakes.calls("wrangler") if c["argv"][:2] == ["secret", "bulk"]]
    secrets = json.loads(bulk["stdin"])
    assert set(secrets) == {"SHIPYARD_API_URL", "SHIPYARD_SECRET_KEY"}
    assert secrets["SHIPYARD_API_URL"] == ENGINE_URL
    key = secrets["SHIPYARD_SECRET_KEY"]
    # Never the production key from .env: a key of the preview's own environment.
    assert key != PRODUCTION_ENGINE_KEY and key.startswith("sk_preview_")
    environment, keys = asyncio.run(_find_key(project, database, key))
    assert environment == "preview/feature-user-auth"
    assert key not in result.output and PRODUCTION_ENGINE_KEY not in result.output
    assert "preview/feature-user-auth" in result.output
    assert f"Engine server: {ENGINE_URL}" in result.output
    assert_no_secrets(result, fakes)

    # A second deploy rotates: a new key, the first one revoked.
    again = run(project, path, "-p", "cloudflare", "-b", "feature/User_Auth")
    assert again.exit_code == 0, again.output
    bulks = [c for c in fakes.calls("wrangler") if c["argv"][:2] == ["secret", "bulk"]]
    second = json.loads(bulks[-1]["stdin"])["SHIPYARD_SECRET_KEY"]
    assert second != key
    assert asyncio.run(_find_key(project, database, key))[0] is None
    environment, keys = asyncio.run(_find_key(project, database, second))
    assert environment == "preview/feature-user-auth"
    assert [k.revoked for k in keys] == [True, False]

    # Cleanup revokes the preview's keys.
    cleanup = run(project, path, "cleanup", "-b", "feature/User_Auth", "-p", "cloudflare")
    assert cleanup.exit_code == 0, cleanup.output
    assert "1 key(s) revoked" in cleanup.output
    assert asyncio.run(_find_key(project, database, second))[0] is None


def test_preview_without_an_engine_url_gets_no_engine_secrets(
    project: Path, tmp_path: Path
) -> None:
    write_env(project, {**ENV, "SHIPYARD_SECRET_KEY": PRODUCTION_ENGINE_KEY})
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    result = run(project, path, "-p", "cloudflare", "-b", "fix/bug-123")
    assert result.exit_code == 0, result.output
    assert "gets no engine key: set SHIPYARD_API_URL" in result.output
    assert not [c for c in fakes.calls("wrangler") if c["argv"][:2] == ["secret", "bulk"]]
    assert PRODUCTION_ENGINE_KEY not in result.output


def test_production_sends_the_engine_url_and_key_from_dotenv(project: Path, tmp_path: Path) -> None:
    engine_env(project, tmp_path)
    fakes, path = path_with(tmp_path, ALL_TOOLS)
    result = run(project, path, "-p", "cloudflare", "-b", "main")
    assert result.exit_code == 0, result.output
    (bulk,) = [c for c in fakes.calls("wrangler") if c["argv"][:2] == ["secret", "bulk"]]
    secrets = json.loads(bulk["stdin"])
    assert secrets["SHIPYARD_API_URL"] == ENGINE_URL
    assert secrets["SHIPYARD_SECRET_KEY"] == PRODUCTION_ENGINE_KEY
    assert PRODUCTION_ENGINE_KEY not in result.output
    assert not any("keys" in c["argv"] for c in fakes.calls())


def test_dry_run_shows_the_key_step_and_creates_nothing(project: Path, tmp_path: Path) -> None:
    database = engine_env(project, tmp_path)
    _fakes, path = path_with(tmp_path, ALL_TOOLS)
    result = run(project, path, "-p", "cloudflare", "-b", "feature/x", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "keys create --env preview/feature-x --name deploy --rotate --json" in result.output
    assert not database.exists()
