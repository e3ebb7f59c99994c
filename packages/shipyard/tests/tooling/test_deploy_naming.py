"""Worker and Supabase branch names from git branches: the seed's table and the edge cases."""

from __future__ import annotations

import re

import pytest

from shipyard.tooling.deploy import naming
from shipyard.tooling.deploy.plan import Target

LONG_A = "feature/" + "a" * 72  # 80 characters
LONG_B = "feature/" + "a" * 71 + "b"  # 80 characters, same first 79


@pytest.mark.parametrize(
    ("branch", "worker"),
    [
        ("main", "api"),
        ("master", "api"),
        ("test", "api-test"),
        ("feature/login", "api-feature-login"),
        ("feature/User_Auth", "api-feature-user-auth"),
        ("fix/bug-123", "api-fix-bug-123"),
        ("feature--double", "api-feature-double"),
        ("feat//x__y", "api-feat-x-y"),
        ("trailing-", "api-trailing"),
        ("-leading/", "api-leading"),
        ("Release/V2.0", "api-release-v2-0"),
        ("café/naïve", "api-cafe-naive"),
        ("user@home:wip", "api-user-home-wip"),
        ("日本語", f"api-branch-{naming.short_hash('日本語')}"),
        ("feature/🚀-rocket", "api-feature-rocket"),
    ],
)
def test_worker_names(branch: str, worker: str) -> None:
    assert naming.worker_name("api", branch) == worker


def test_long_branches_are_cut_to_63_with_a_hash_of_the_whole_name() -> None:
    a, b = naming.worker_name("api", LONG_A), naming.worker_name("api", LONG_B)
    assert len(LONG_A) == len(LONG_B) == 80
    assert len(a) == len(b) == 63
    assert a != b  # the same 63-character prefix, two workers
    assert a.endswith("-" + naming.short_hash(LONG_A))
    assert b.endswith("-" + naming.short_hash(LONG_B))
    assert a.startswith("api-feature-aaaa")


def test_a_name_that_fits_is_not_hashed() -> None:
    branch = "b" * 59  # api- + 59 = 63
    assert naming.worker_name("api", branch) == "api-" + branch


def test_a_cut_never_leaves_a_double_dash() -> None:
    branch = "x" * 50 + "-" * 5 + "y" * 30
    name = naming.worker_name("api", branch)
    assert len(name) <= 63
    assert "--" not in name


@pytest.mark.parametrize(
    "branch", ["main", "feature/User_Auth", LONG_A, "日本語", "--x--", "a/b_c.d", "UPPER"]
)
def test_every_name_is_a_dns_label(branch: str) -> None:
    for name in (naming.worker_name("api", branch), naming.supabase_branch_name(branch)):
        assert re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", name), name


def test_function_workers_and_supabase_branches() -> None:
    assert naming.worker_name("hello-world", "main") == "hello-world"
    assert naming.worker_name("hello-world", "fix/bug-123") == "hello-world-fix-bug-123"
    assert naming.supabase_branch_name("feature/User_Auth") == "feature-user-auth"
    target = Target("feature/login")
    assert (target.production, target.environment) == (False, "preview")
    assert Target("master").environment == "production"


def test_urls_follow_the_seed_patterns() -> None:
    account = "0123456789abcdef0123456789abcdef"
    assert naming.worker_url("api-test", "team") == "https://api-test.team.workers.dev"
    assert (
        naming.dashboard_url(account) == f"https://dash.cloudflare.com/{account}/workers-and-pages"
    )
    assert (
        naming.logs_url(account, "api")
        == f"https://dash.cloudflare.com/{account}/workers/services/view/api/production/observability/logs"
    )
    assert naming.supabase_project_url("abc") == "https://abc.supabase.co"
