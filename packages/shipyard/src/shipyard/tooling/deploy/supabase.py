"""Supabase: migrations, preview branches, and the branch credentials a preview worker needs.

Production pushes ``supabase/migrations`` to the project in ``SUPABASE_PROJECT_REF``
(``supabase link --project-ref REF`` then ``supabase db push``). A preview deploy creates the
preview branch named after the git branch (``supabase branches create NAME``; a 409 "already
exists" answer means it is reused), reads its credentials (``supabase branches get NAME -o
env``: ``SUPABASE_URL``, the keys, the JWT secret), links the branch's own project ref and
pushes the migrations there. Those credentials become the preview worker's secrets.

The credentials are secrets: they are parsed from the tool's output and never printed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from shipyard.tooling.dotenv import parse_dotenv

MIGRATIONS_DIR = Path("supabase/migrations")
# The Supabase CLI run through npx when none is installed (pinned, never the "latest" tag).
SUPABASE_CLI_VERSION = "3.1.0"
SUPABASE_INSTALL_HINT = (
    "install the Supabase CLI: `npm install -g supabase` (or `brew install supabase/tap/"
    "supabase`), then `supabase login`; `npx supabase` also works once Node.js is installed"
)
# What the API reads (apps/api/src/app/config.py), in the order they are wired as secrets.
WORKER_SECRETS = (
    "SUPABASE_URL",
    "SUPABASE_PUBLISHABLE_KEY",
    "SUPABASE_ANON_KEY",
    "SUPABASE_SECRET_KEY",
    "SUPABASE_SERVICE_ROLE_KEY",
    "SUPABASE_JWT_SECRET",
)
# A branch's credentials are usable once it has its URL and a public key.
READY_KEYS = ("SUPABASE_URL",)
PUBLIC_KEYS = ("SUPABASE_PUBLISHABLE_KEY", "SUPABASE_ANON_KEY")

Which = Callable[[str], str | None]


def find_tool(which: Which = shutil.which) -> tuple[str, ...]:
    """``supabase``, else the pinned ``npx --yes supabase@…``; empty when neither is found."""
    if which("supabase"):
        return ("supabase",)
    if which("npx"):
        return ("npx", "--yes", f"supabase@{SUPABASE_CLI_VERSION}")
    return ()


def link_args(ref: str) -> tuple[str, ...]:
    return ("link", "--project-ref", ref)


def db_push_args() -> tuple[str, ...]:
    return ("db", "push", "--linked")


def branch_create_args(name: str, project_ref: str) -> tuple[str, ...]:
    return ("branches", "create", name, "--project-ref", project_ref)


def branch_get_args(name: str, project_ref: str) -> tuple[str, ...]:
    return ("branches", "get", name, "--project-ref", project_ref, "-o", "env")


def branch_delete_args(name: str, project_ref: str) -> tuple[str, ...]:
    return ("branches", "delete", name, "--project-ref", project_ref, "--yes")


def parse_branch_env(output: str) -> dict[str, str]:
    """The ``KEY="value"`` lines of ``supabase branches get -o env``."""
    return parse_dotenv(output, source="supabase branches get").values


def branch_ready(values: Mapping[str, str]) -> bool:
    """True when the branch has a URL and a public key (it may still be provisioning)."""
    return all(values.get(k) for k in READY_KEYS) and any(values.get(k) for k in PUBLIC_KEYS)


def ref_from_url(url: str) -> str | None:
    """``abc`` from ``https://abc.supabase.co``; None for any other URL."""
    host = urlsplit(url).hostname or ""
    if host.endswith((".supabase.co", ".supabase.in")):
        return host.split(".", 1)[0]
    return None


def worker_secrets(values: Mapping[str, str]) -> dict[str, str]:
    """The values the API worker reads, from a branch's credentials or the project's ``.env``."""
    return {name: values[name] for name in WORKER_SECRETS if (values.get(name) or "").strip()}


def is_conflict(output: str) -> bool:
    """True when ``branches create`` failed because the branch already exists (HTTP 409)."""
    lowered = output.lower()
    return "409" in lowered or "already exists" in lowered
