"""Names derived from a git branch: worker names, Supabase branch names, and their URLs.

Cloudflare has no git branches, so every git branch deploys to its own worker named after it
(the seed's naming convention): ``main``/``master`` deploy the production worker ``api``, any
other branch deploys ``api-<branch>``. A worker name is a DNS label, so it is lowercase
``[a-z0-9-]``, at most 63 characters: ``/``, ``_`` and every other character outside that set
become ``-`` (accents are dropped first, so ``café`` → ``cafe``), runs of ``-`` collapse to one,
and leading/trailing ``-`` go. A name that must be cut to fit ends in ``-`` and the first
:data:`HASH_LENGTH` hex digits of the SHA-256 of the *whole* branch name, so two long branches
that share a 63-character prefix still get two workers.

Example::

    worker_name("api", "feature/User_Auth")   # 'api-feature-user-auth'
    worker_name("api", "main")                # 'api'
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

PRODUCTION_BRANCHES = ("main", "master")
MAX_NAME_LENGTH = 63
HASH_LENGTH = 8
API_WORKER = "api"

_NOT_ALLOWED = re.compile(r"[^a-z0-9]+")


def is_production(branch: str) -> bool:
    """True for the branches that deploy to production (``main`` and ``master``)."""
    return branch in PRODUCTION_BRANCHES


def slugify(text: str) -> str:
    """``text`` as lowercase ``[a-z0-9-]`` with single dashes and none at either end."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _NOT_ALLOWED.sub("-", ascii_text.lower()).strip("-")


def short_hash(text: str) -> str:
    """The first :data:`HASH_LENGTH` hex digits of SHA-256 of ``text`` (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_LENGTH]


def fit(name: str, original: str, limit: int = MAX_NAME_LENGTH) -> str:
    """``name`` if it fits in ``limit``; else cut, with ``-<hash of original>`` at the end."""
    if len(name) <= limit:
        return name
    keep = limit - HASH_LENGTH - 1
    return f"{name[:keep].rstrip('-')}-{short_hash(original)}"


def branch_slug(branch: str) -> str:
    """The branch as a name part (``feature/User_Auth`` → ``feature-user-auth``).

    A branch with nothing usable in it (``___``, ``日本``) becomes ``branch-<hash>``.
    """
    slug = slugify(branch)
    return slug or f"branch-{short_hash(branch)}"


def worker_name(base: str, branch: str) -> str:
    """``base`` on a production branch, else ``<base>-<branch slug>``, fitted to 63 characters."""
    base = slugify(base)
    if is_production(branch):
        return fit(base, base)
    return fit(f"{base}-{branch_slug(branch)}", branch)


def supabase_branch_name(branch: str) -> str:
    """The Supabase preview branch for a git branch: the branch slug (``feature-user-auth``)."""
    return fit(branch_slug(branch), branch)


def worker_url(name: str, subdomain: str | None) -> str:
    """``https://<name>.<subdomain>.workers.dev`` (``<subdomain>`` when it is not known)."""
    return f"https://{name}.{subdomain or '<subdomain>'}.workers.dev"


def dashboard_url(account_id: str, name: str | None = None) -> str:
    """The Workers & Pages dashboard, or one worker's page in it."""
    if name is None:
        return f"https://dash.cloudflare.com/{account_id}/workers-and-pages"
    return f"https://dash.cloudflare.com/{account_id}/workers/services/view/{name}"


def logs_url(account_id: str, name: str) -> str:
    """A worker's logs (observability) page in the Cloudflare dashboard."""
    return f"{dashboard_url(account_id, name)}/production/observability/logs"


def supabase_project_url(ref: str) -> str:
    """The API URL of a Supabase project or preview branch."""
    return f"https://{ref}.supabase.co"


def supabase_dashboard_url(ref: str) -> str:
    """A Supabase project's (or preview branch's) dashboard."""
    return f"https://supabase.com/dashboard/project/{ref}"
