"""The commit message rules, one good and one bad message per rule, and the git hooks for real.

The hooks are tested the way a developer meets them: ``pre-commit run --all-files`` on a copy of
this repository, and ``git commit`` in a throwaway repository whose hooks ``shipyard deps``
installed — a bad message and an unformatted file are refused, a good commit goes through.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.tooling.commitmsg import check_message
from shipyard.tooling.deps import install_hooks

REPO_ROOT = Path(__file__).resolve().parents[4]

# rule → (a message that keeps it, a message that breaks only it)
RULES = {
    "header-format": ("feat: add user authentication", "fixed stuff"),
    "type-case": ("fix(api): resolve database connection timeout", "Fix: resolve a timeout"),
    "type-enum": ("docs: update readme with deployment steps", "feature: add login"),
    "scope-empty": ("refactor(store): split the claim query", "refactor(): split the claim query"),
    "subject-empty": ("chore: bump ruff", "chore:"),
    "subject-case": ("perf: batch inserts by unnest", "perf: Batch inserts by unnest"),
    "subject-full-stop": ("test: cover the 409 path", "test: cover the 409 path."),
    "header-max-length": ("ci: " + "x" * 96, "ci: " + "x" * 97),
    "body-leading-blank": (
        "build: add pre-commit\n\nthe hooks run offline.",
        "build: add pre-commit\nthe hooks run offline.",
    ),
    "body-max-line-length": (
        "style: wrap lines\n\n" + "y" * 100,
        "style: wrap lines\n\n" + "y" * 101,
    ),
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule_has_a_good_and_a_bad_message(rule: str) -> None:
    good, bad = RULES[rule]
    assert check_message(good) == []
    problems = check_message(bad)
    assert [p.rule for p in problems] == [rule]
    assert problems[0].message  # each rule says what to change, in its own words


def test_every_rule_has_its_own_message() -> None:
    messages = {check_message(bad)[0].message.split(":")[0] for _, bad in RULES.values()}
    assert len(messages) == len(RULES)


@pytest.mark.parametrize(
    "message",
    [
        "Merge branch 'feature/login' into main",
        "Merge pull request #12 from team/feature",
        'Revert "feat: add user authentication"\n\nThis reverts commit 0123abcd.',
        "fixup! feat: add user authentication",
        "squash! fix(api): resolve a timeout",
        "amend! docs: fix a typo",
        "feat(api)!: drop the v1 routes\n\nBREAKING CHANGE: clients must use /v2.",
        "revert: undo the cache change",
    ],
)
def test_git_generated_and_special_messages_are_allowed(message: str) -> None:
    assert check_message(message) == []


@pytest.mark.parametrize("message", ["WIP", "Update file", "", "# only a comment\n"])
def test_the_seeds_bad_examples_are_rejected(message: str) -> None:
    assert [p.rule for p in check_message(message)] == ["header-format"]


def test_git_comments_and_the_verbose_diff_are_ignored() -> None:
    message = (
        "feat: add login\n\n# Please enter the commit message\n"
        "# ------------------------ >8 ------------------------\n" + "z" * 300 + "\n"
    )
    assert check_message(message) == []


def test_cli_rejects_with_each_rule_and_accepts_a_good_message(tmp_path: Path) -> None:
    message = tmp_path / "COMMIT_EDITMSG"
    message.write_text("Feat(): Add login.\n")
    result = CliRunner().invoke(app, ["commit-msg", str(message)], env={"NO_COLOR": "1"})
    assert result.exit_code == 1
    for rule in ("type-case", "scope-empty", "subject-case", "subject-full-stop"):
        assert rule in result.output
    assert "<type>(<scope>): <subject>" in result.output
    message.write_text("feat(api): add login\n")
    result = CliRunner().invoke(app, ["commit-msg", str(message)])
    assert result.exit_code == 0
    assert result.output == ""


# -- the hooks, for real ------------------------------------------------------------------


def _pre_commit() -> str:
    found = shutil.which("pre-commit") or str(Path(sys.prefix) / "bin" / "pre-commit")
    if not Path(found).exists() or shutil.which("uv") is None or shutil.which("git") is None:
        pytest.skip("pre-commit, uv or git is not installed (run `uv sync`)")
    return found


def _hook_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "GIT_DIR")}
    env.update(
        # The hooks' `uv run --no-sync` uses this checkout's environment, never a new one.
        UV_PROJECT_ENVIRONMENT=sys.prefix,
        PRE_COMMIT_HOME=str(tmp_path / "pre-commit-cache"),
        GIT_AUTHOR_NAME="Test",
        GIT_AUTHOR_EMAIL="test@example.com",
        GIT_COMMITTER_NAME="Test",
        GIT_COMMITTER_EMAIL="test@example.com",
        NO_COLOR="1",
    )
    return env


def _git(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.timeout(300)
def test_pre_commit_run_all_files_passes_on_the_repository(tmp_path: Path) -> None:
    pre_commit = _pre_commit()
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if listed.returncode != 0:
        pytest.skip("the checkout is not a git repository")
    copy = tmp_path / "repo"
    for name in filter(None, listed.stdout.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    env = _hook_env(tmp_path)
    assert _git(copy, env, "init", "-q").returncode == 0
    assert _git(copy, env, "add", "-A").returncode == 0
    result = subprocess.run(
        [pre_commit, "run", "--all-files", "--show-diff-on-failure"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for hook in ("ruff format", "ruff check", "check JSON", "check YAML", "check TOML"):
        assert hook in result.stdout


@pytest.mark.timeout(300)
def test_shipyard_deps_installs_hooks_that_guard_real_commits(tmp_path: Path) -> None:
    _pre_commit()
    root = tmp_path / "repo"
    root.mkdir()
    env = _hook_env(tmp_path)
    shutil.copy(REPO_ROOT / ".pre-commit-config.yaml", root)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        "\n[tool.ruff]\nline-length = 100\n"
    )

    def call(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
        uv = shutil.which("uv") or "uv"
        done = subprocess.run([uv, *args], cwd=root, env=env, capture_output=True, text=True)
        return done, 0.0

    skipped = install_hooks(root, call)
    assert skipped is not None and skipped.ok and skipped.detail.startswith("skipped")
    assert _git(root, env, "init", "-q").returncode == 0
    step = install_hooks(root, call)
    assert step is not None and step.ok, step
    assert (root / ".git/hooks/pre-commit").is_file()
    assert (root / ".git/hooks/commit-msg").is_file()

    (root / "good.py").write_text('VALUE = {"a": 1}\n')
    _git(root, env, "add", "-A")
    refused = _git(root, env, "commit", "-q", "-m", "Fixed stuff.")
    assert refused.returncode != 0
    assert "header-format" in refused.stdout + refused.stderr
    accepted = _git(root, env, "commit", "-q", "-m", "feat: add the first module")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr

    (root / "ugly.py").write_text("VALUE={ 'a':1 }\n")
    _git(root, env, "add", "ugly.py")
    unformatted = _git(root, env, "commit", "-q", "-m", "style: add an unformatted file")
    assert unformatted.returncode != 0
    assert "ruff format" in unformatted.stdout + unformatted.stderr
    assert (root / "ugly.py").read_text() == 'VALUE = {"a": 1}\n'  # the hook formatted it
