"""``shipyard check-envs`` on crafted ``.env`` files: one file per rule (``envfiles/``).

Every case runs the real command (typer's runner, in-process) and asserts the verdict on the
variable concerned, the exit code, the ``--json`` report, and that no value from the file
appears in any output beyond its 4-character prefix. The human report is compared with a
snapshot (``snapshots/``; regenerate with ``SHIPYARD_UPDATE_SNAPSHOTS=1``).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.tooling.dotenv import parse_dotenv
from shipyard.tooling.envcheck import Level, check_values, mask, placeholder_reason

HERE = Path(__file__).resolve().parent
ENVFILES = HERE / "envfiles"
SNAPSHOTS = HERE / "snapshots"
REPO_ROOT = HERE.parents[3]
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# file, variable, level, status, words in the message, exit code
CASES: list[tuple[str, str, Level, str, str, int]] = [
    ("valid_legacy_keys", "SUPABASE_ANON_KEY", Level.OK, "set", "", 0),
    ("valid_new_keys", "SUPABASE_SECRET_KEY", Level.OK, "set", "", 0),
    ("cloudflare_only", "SUPABASE_URL", Level.WARN, "not_set", "optional", 0),
    ("missing_required", "CLOUDFLARE_API", Level.ERROR, "missing", "required, not set", 1),
    ("empty_required", "CLOUDFLARE_API", Level.ERROR, "empty", "is empty", 1),
    ("placeholder_angle", "CLOUDFLARE_API", Level.ERROR, "placeholder", "<placeholder>", 1),
    ("placeholder_your_here", "CLOUDFLARE_API", Level.ERROR, "placeholder", "your-…-here", 1),
    ("placeholder_xxxx", "CLOUDFLARE_ACCOUNT_ID", Level.ERROR, "placeholder", "'xxxx'", 1),
    ("placeholder_changethis", "CLOUDFLARE_API", Level.ERROR, "placeholder", "changethis", 1),
    ("placeholder_optional", "SUPABASE_URL", Level.WARN, "placeholder", "<placeholder>", 0),
    ("bad_account_id", "CLOUDFLARE_ACCOUNT_ID", Level.ERROR, "invalid", "32 lowercase hex", 1),
    ("bad_url", "SUPABASE_URL", Level.ERROR, "invalid", "must start with https://", 1),
    ("http_hosted_url", "SUPABASE_URL", Level.ERROR, "invalid", "must use https://", 1),
    ("bad_ref", "SUPABASE_PROJECT_REF", Level.ERROR, "invalid", "20 lowercase letters", 1),
    ("ref_mismatch", "SUPABASE_PROJECT_REF", Level.ERROR, "invalid", "differs from", 1),
    ("swapped_keys", "SUPABASE_ANON_KEY", Level.ERROR, "invalid", "look swapped", 1),
    ("swapped_keys", "SUPABASE_SERVICE_ROLE_KEY", Level.ERROR, "invalid", "look swapped", 1),
    ("key_other_project", "SUPABASE_ANON_KEY", Level.ERROR, "invalid", "another project", 1),
    ("demo_key_hosted", "SUPABASE_ANON_KEY", Level.ERROR, "invalid", "supabase-demo", 1),
    ("demo_key_local", "SUPABASE_SERVICE_ROLE_KEY", Level.OK, "set", "", 0),
    ("secret_in_public_slot", "SUPABASE_PUBLISHABLE_KEY", Level.ERROR, "invalid", "SECRET", 1),
    ("publishable_in_secret_slot", "SUPABASE_SECRET_KEY", Level.ERROR, "invalid", "publish", 1),
    ("not_a_key", "SUPABASE_ANON_KEY", Level.ERROR, "invalid", "neither a legacy JWT", 1),
    ("expired_key", "SUPABASE_ANON_KEY", Level.ERROR, "invalid", "expired", 1),
    ("custom_domain", "SUPABASE_URL", Level.WARN, "invalid", "custom domain", 0),
]


def run_cli(*args: str, root: Path = REPO_ROOT, **env: str) -> Any:
    environment = {"SHIPYARD_PROJECT_ROOT": str(root), "NO_COLOR": "1", "COLUMNS": "100"}
    environment.update(env)
    return CliRunner().invoke(app, ["check-envs", *args], env=environment, catch_exceptions=False)


def file_values(path: Path) -> dict[str, str]:
    """The file's real-looking values (placeholders are not secrets)."""
    values = parse_dotenv(path.read_text()).values.items()
    return {k: v for k, v in values if len(v) >= 8 and placeholder_reason(v) is None}


def assert_no_secret(text: str, path: Path) -> None:
    """No value is printed; of a key or token, nothing past its 4-character prefix."""
    for name, value in file_values(path).items():
        assert value not in text, f"{name} of {path.name} was printed"
        if re.search(r"KEY|SECRET|CLOUDFLARE_API", name):
            assert value[4:] not in text, f"more than a prefix of {name} was printed"
            assert value[-10:] not in text, f"the end of {name} was printed"


@pytest.mark.parametrize(
    ("name", "variable", "level", "status", "words", "code"),
    CASES,
    ids=[f"{c[0]}-{c[1]}" for c in CASES],
)
def test_rule(name: str, variable: str, level: Level, status: str, words: str, code: int) -> None:
    path = ENVFILES / f"{name}.env"
    human = run_cli("--env-file", str(path))
    machine = run_cli("--env-file", str(path), "--json")
    assert human.exit_code == code, human.output
    assert machine.exit_code == code
    report = json.loads(machine.stdout)
    found = {v["name"]: v for v in report["variables"]}[variable]
    assert (found["level"], found["status"]) == (str(level), status), found
    assert words in " ".join(found["messages"]), found
    assert report["ok"] is (code == 0)
    assert variable in human.output
    assert_no_secret(human.output, path)
    assert_no_secret(machine.output, path)


def test_every_envfile_is_covered_by_a_case() -> None:
    covered = {case[0] for case in CASES} | {"malformed_line"}
    assert {p.stem for p in ENVFILES.glob("*.env")} == covered


def test_malformed_lines_are_reported_by_number_without_content() -> None:
    path = ENVFILES / "malformed_line.env"
    result = run_cli("--env-file", str(path), "--json")
    report = json.loads(result.stdout)
    assert report["problems"] == [
        "malformed_line.env line 3 is not KEY=value; it was skipped.",
        "malformed_line.env line 4 (SUPABASE_URL) has an unclosed quote; it was skipped.",
    ]
    assert "no equals sign" not in result.output and 'unclosed"' not in result.output


def test_valid_file_passes_with_every_variable_ok() -> None:
    result = run_cli("--env-file", str(ENVFILES / "valid_legacy_keys.env"), "--json")
    report = json.loads(result.stdout)
    levels = {v["name"]: v["level"] for v in report["variables"]}
    assert levels == {
        "CLOUDFLARE_API": "ok",
        "CLOUDFLARE_ACCOUNT_ID": "ok",
        "SUPABASE_URL": "ok",
        "SUPABASE_PROJECT_REF": "ok",
        "SUPABASE_ANON_KEY": "ok",
        "SUPABASE_PUBLISHABLE_KEY": "skip",
        "SUPABASE_SERVICE_ROLE_KEY": "ok",
        "SUPABASE_SECRET_KEY": "skip",
        "SUPABASE_JWT_SECRET": "ok",
    }
    assert report["summary"] == {"ok": 7, "warn": 0, "error": 0, "skip": 2}


def snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("SHIPYARD_UPDATE_SNAPSHOTS") == "1" or not path.exists():
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize("name", ["swapped_keys", "valid_new_keys"])
def test_report_snapshot(name: str) -> None:
    result = run_cli("--env-file", str(ENVFILES / f"{name}.env"))
    assert "\x1b[" not in result.output
    snapshot(f"check_envs_{name}.txt", result.output)


def test_report_is_coloured_on_a_terminal_and_matches_the_plain_text() -> None:
    path = str(ENVFILES / "swapped_keys.env")
    plain = run_cli("--env-file", path).output
    coloured = run_cli("--env-file", path, NO_COLOR="", FORCE_COLOR="1", TTY_COMPATIBLE="1")
    assert "\x1b[31m" in coloured.output or "\x1b[91m" in coloured.output  # red errors
    assert "\x1b[32m" in coloured.output  # green ok
    assert ANSI.sub("", coloured.output) == plain


def test_missing_env_file_points_to_the_example(tmp_path: Path) -> None:
    (tmp_path / ".env.example").write_text("CLOUDFLARE_API=<your_token>\n")
    result = run_cli(root=tmp_path)
    assert result.exit_code == 1
    assert "No env file at .env" in result.output
    assert "cp .env.example .env" in result.output
    as_json = json.loads(run_cli("--json", root=tmp_path).stdout)
    assert as_json["ok"] is False and as_json["missing_file"] == str(tmp_path / ".env")


def test_environment_overlay(tmp_path: Path) -> None:
    base = (ENVFILES / "cloudflare_only.env").read_text()
    (tmp_path / ".env").write_text(base.replace("CLOUDFLARE_ACCOUNT_ID=", "#"))
    (tmp_path / ".env.staging").write_text(
        "CLOUDFLARE_ACCOUNT_ID=abcdefabcdefabcdefabcdefabcdefab\n"
    )
    assert run_cli(root=tmp_path).exit_code == 1  # .env alone lacks the account id
    result = run_cli("-e", "staging", "--json", root=tmp_path)
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["files"] == [
        str(tmp_path / ".env"),
        str(tmp_path / ".env.staging"),
    ]
    missing = run_cli("-e", "production", root=tmp_path)
    assert missing.exit_code == 1
    assert ".env.production does not exist" in missing.output


def test_the_shipped_example_is_all_placeholders() -> None:
    result = run_cli("--env-file", str(REPO_ROOT / ".env.example"), "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 1
    assert {v["status"] for v in report["variables"]} == {"placeholder"}


def test_placeholder_detection_and_masking() -> None:
    assert placeholder_reason("") == "empty"
    assert placeholder_reason("<your_key>") is not None
    assert placeholder_reason("your_token_here") is not None
    assert placeholder_reason("sb_secret_xxxx") is not None
    assert placeholder_reason("CHANGE-ME") is not None
    assert placeholder_reason("eyJxxxxQ.abc.def") is None  # x-runs inside base64 are not
    assert mask("abcdefghijklmnop") == "abcd… (16 chars)"
    assert mask("short") == "… (5 chars)"


def test_check_values_without_cloudflare_fails_only_on_required() -> None:
    findings = {f.variable.name: f for f in check_values({})}
    assert findings["CLOUDFLARE_API"].level == Level.ERROR
    assert findings["SUPABASE_URL"].level == Level.WARN
