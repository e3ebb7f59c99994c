"""Fake ``wrangler``, ``pywrangler``, ``supabase``, ``npx``, ``uv``, ``docker`` and ``podman``
for the deploy tests.

:func:`install_fakes` writes one small Python program under each name into a folder that the
tests put first on ``PATH``. Every call appends a JSON line to ``calls.jsonl`` — the tool, its
argv, working directory, the deploy-relevant environment and its standard input — and answers
the way the real CLI does: ``wrangler deploy`` prints the workers.dev URL; a wrong token gets
wrangler's "Authentication error [code: 10000]" (HTTP 401); ``supabase branches create`` of an
existing branch gets the API's 409; ``supabase branches get -o env`` prints the branch's
credentials as ``KEY="value"`` lines; ``wrangler secret bulk`` reads its JSON from stdin;
``pywrangler sync`` (also as ``uv tool run --from workers-py==… pywrangler``) writes
``python_modules/``; ``docker``/``podman`` answer ``info``, ``build`` and ``push``.
``config.json`` (see :data:`DEFAULT_CONFIG`) sets up each case.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUBDOMAIN = "demo-team"
BRANCH_REF = "brnchrefbrnchrefbrnc"
BRANCH_ENV = {
    "POSTGRES_URL": "postgresql://postgres.brnch:pg-branch-password-123@pooler.supabase.com:6543/postgres",
    "POSTGRES_URL_NON_POOLING": "postgresql://postgres:pg-branch-password-123@db.brnch.supabase.co:5432/postgres",
    "SUPABASE_URL": f"https://{BRANCH_REF}.supabase.co",
    "SUPABASE_ANON_KEY": "branch-anon-key-eyJ-SECRET-0001",
    "SUPABASE_SERVICE_ROLE_KEY": "branch-service-role-SECRET-0002",
    "SUPABASE_JWT_SECRET": "branch-jwt-secret-SECRET-0003-at-least-32-chars",
}
DEFAULT_CONFIG: dict[str, Any] = {
    "valid_token": "cf-token-SECRET-valid-0000",
    "existing_branches": [],
    "missing_workers": [],
    "branch_env": BRANCH_ENV,
    "not_ready_calls": 0,
    "supabase_unauthorized": False,
    "broken_engines": [],
    "fail": {},
}
RECORDED_ENV = (
    "CLOUDFLARE_API",
    "CLOUDFLARE_API_TOKEN",
    "CLOUDFLARE_ACCOUNT_ID",
    "SUPABASE_PROJECT_REF",
)

FAKE = r"""
import json, os, sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG = json.loads((HERE / "config.json").read_text())
STATE = HERE / "state.json"


STDIN = [None]


def record(tool, argv):
    # Read once: npx and uv record, then hand over to the tool they run, which records too.
    if STDIN[0] is None:
        STDIN[0] = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    stdin = STDIN[0]
    entry = {
        "tool": tool,
        "argv": argv,
        "cwd": os.getcwd(),
        "env": {k: os.environ[k] for k in RECORDED_ENV if k in os.environ},
        "stdin": stdin,
    }
    with open(HERE / "calls.jsonl", "a") as log:
        log.write(json.dumps(entry) + "\n")
    return stdin


def injected(tool, argv):
    line = " ".join([tool, *argv])
    for prefix, answer in CONFIG["fail"].items():
        if line.startswith(prefix):
            sys.stderr.write(answer["stderr"] + "\n")
            sys.exit(answer.get("code", 1))


def option(argv, name):
    return argv[argv.index(name) + 1] if name in argv else None


def wrangler(tool, argv):
    record(tool, argv)
    injected("wrangler", argv)
    token = os.environ.get("CLOUDFLARE_API_TOKEN")
    if argv[:1] in (["deploy"], ["secret"], ["delete"]) and token != CONFIG["valid_token"]:
        sys.stderr.write(
            "X [ERROR] A request to the Cloudflare API (/accounts/x/workers/scripts) failed.\n"
            "  Authentication error [code: 10000]\n"
            "  401 Unauthorized\n"
        )
        sys.exit(1)
    name = option(argv, "--name")
    if argv[:1] == ["deploy"]:
        if "--dry-run" in argv:
            out = Path(option(argv, "--outdir"))
            out.mkdir(parents=True, exist_ok=True)
            (out / "bundle.txt").write_text(name)
            print("--dry-run: exiting now.")
            return
        print(f"Uploaded {name} (1.02 sec)")
        print(f"Deployed {name} triggers (0.31 sec)")
        print(f"  https://{name}.{SUBDOMAIN}.workers.dev")
        print("Current Version ID: 0000-1111")
    elif argv[:2] == ["secret", "bulk"]:
        values = json.loads(STDIN[0])
        for key in values:
            print(f"Successfully created secret for key: {key}")
        print(f"Finished processing secrets file: {len(values)} secrets successfully uploaded")
    elif argv[:1] == ["delete"]:
        if name in CONFIG["missing_workers"]:
            sys.stderr.write(
                "X [ERROR] This Worker does not exist on your account. [code: 10007]\n"
            )
            sys.exit(1)
        print(f"Successfully deleted {name}")
    else:
        print("wrangler 4.0.0 (fake)")


def supabase(tool, argv):
    record(tool, argv)
    injected("supabase", argv)
    if CONFIG["supabase_unauthorized"] and argv[:1] != ["--version"]:
        sys.stderr.write(
            'unexpected status 401: {"message":"Unauthorized"}\n'
            "Access token not provided. Supply an access token by running supabase login "
            "or setting the SUPABASE_ACCESS_TOKEN environment variable.\n"
        )
        sys.exit(1)
    if argv[:1] == ["link"]:
        print("Finished supabase link.")
    elif argv[:2] == ["db", "push"]:
        for migration in sorted(Path("supabase/migrations").glob("*.sql")):
            print(f"Applying migration {migration.name}...")
        print("Finished supabase db push.")
    elif argv[:2] == ["branches", "create"]:
        if argv[2] in CONFIG["existing_branches"]:
            sys.stderr.write(
                'unexpected create branch status 409: {"message":"A branch named '
                + argv[2] + ' already exists"}\n'
            )
            sys.exit(1)
        print("Created preview branch:")
    elif argv[:2] == ["branches", "get"]:
        state = json.loads(STATE.read_text()) if STATE.exists() else {"get": 0}
        state["get"] += 1
        STATE.write_text(json.dumps(state))
        env = CONFIG["branch_env"]
        if state["get"] <= CONFIG["not_ready_calls"]:
            env = {k: v for k, v in env.items() if k.startswith("POSTGRES")}
        for key, value in env.items():
            print(f'{key}="{value}"')
    elif argv[:2] == ["branches", "delete"]:
        print(f"Deleted preview branch: {argv[2]}")
    else:
        print("2.0.0")


def pywrangler(tool, argv):
    if argv[:1] != ["sync"]:
        return wrangler(tool, argv)
    record(tool, argv)
    injected("pywrangler", argv)
    modules = Path("python_modules")
    modules.mkdir(exist_ok=True)
    (modules / "synced.txt").write_text(Path("pyproject.toml").read_text())
    print("Sync process completed successfully.")


def container(tool, argv):
    record(tool, argv)
    injected(tool, argv)
    if argv[:1] == ["info"]:
        if tool in CONFIG["broken_engines"]:
            sys.stderr.write("Cannot connect to the Docker daemon. Is the docker daemon running?\n")
            sys.exit(1)
        print("Server Version: 28.0.0")
    elif argv[:1] == ["build"]:
        print("Successfully built 0123456789ab")
    elif argv[:1] == ["push"]:
        print(f"{argv[1]}: digest: sha256:abc size: 1234")


def main():
    tool = Path(sys.argv[0]).name
    argv = sys.argv[1:]
    if tool == "npx":
        record("npx", argv)
        rest = [a for a in argv if a != "--yes"]
        # wrangler@4.1.2 → wrangler (a scoped @org/name@1 keeps its leading @).
        tool, argv = rest[0][:1] + rest[0][1:].split("@")[0], rest[1:]
    if tool == "uv":
        record("uv", argv)
        if argv[:2] == ["tool", "run"] and "pywrangler" in argv:
            tool, argv = "pywrangler", argv[argv.index("pywrangler") + 1 :]
    if tool == "wrangler":
        wrangler(tool, argv)
    elif tool == "pywrangler":
        pywrangler(tool, argv)
    elif tool == "supabase":
        supabase(tool, argv)
    elif tool in ("docker", "podman"):
        container(tool, argv)


main()
"""


@dataclass
class Fakes:
    """The folder of fake tools and what they recorded."""

    bin: Path

    def calls(self, tool: str | None = None) -> list[dict[str, Any]]:
        log = self.bin / "calls.jsonl"
        if not log.exists():
            return []
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        return [c for c in calls if tool is None or c["tool"] == tool]

    def argvs(self, tool: str | None = None) -> list[list[str]]:
        return [[c["tool"], *c["argv"]] for c in self.calls(tool)]

    def configure(self, **changes: Any) -> None:
        path = self.bin / "config.json"
        config = json.loads(path.read_text())
        config.update(changes)
        path.write_text(json.dumps(config))


def install_fakes(folder: Path, tools: tuple[str, ...]) -> Fakes:
    """Write the fake ``tools`` (and a default config) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    source = (
        f"#!{sys.executable}\nRECORDED_ENV = {RECORDED_ENV!r}\nSUBDOMAIN = {SUBDOMAIN!r}\n{FAKE}"
    )
    for tool in tools:
        path = folder / tool
        path.write_text(source)
        path.chmod(0o755)
    (folder / "config.json").write_text(json.dumps(DEFAULT_CONFIG))
    return Fakes(folder)
