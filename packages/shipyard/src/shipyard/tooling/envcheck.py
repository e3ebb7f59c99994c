"""``shipyard check-envs``: is the project's ``.env`` ready to deploy?

Reads ``.env`` at the project root (or ``--env-file``), then ``.env.<environment>`` on top, and
checks every variable the template uses: presence (Cloudflare's are required, Supabase's
optional), placeholder values left from ``.env.example``, and the format of each value — a
Cloudflare account id is 32 hex characters, a project ref 20 lowercase letters, the URL is
``https://<ref>.supabase.co`` (or a local URL), and legacy JWT keys are decoded (not verified:
we hold no secret) to catch swapped anon/service-role keys, keys of another project and the
local demo keys used against a hosted project. The new ``sb_publishable_…``/``sb_secret_…``
keys are recognised in every slot, and a secret key in a public slot is an error.

Values are never reported, only :func:`mask`-ed: a short prefix and the length.

Example::

    report = check_project(Path("."), environment="staging")
    report.ok, report.summary()
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shipyard.tooling.dotenv import DotEnv, read_dotenv
from shipyard.tooling.placeholders import placeholder_reason


class Level(StrEnum):
    """How a finding is shown: ✅ ok, ⚠️ warn, ❌ error, ➖ skipped (an alternative is set)."""

    OK = "ok"
    WARN = "warn"
    ERROR = "error"
    SKIP = "skip"


_RANK = {Level.SKIP: 0, Level.OK: 1, Level.WARN: 2, Level.ERROR: 3}


@dataclass(frozen=True, slots=True)
class Variable:
    """A variable the template reads: where it belongs, whether deploys need it, how to get it."""

    name: str
    platform: str
    required: bool
    purpose: str
    how_to_get: str
    alternative: str | None = None


CF_TOKENS = "https://dash.cloudflare.com/profile/api-tokens"
CF_DASH = "https://dash.cloudflare.com"
SB_API = "https://supabase.com/dashboard/project/_/settings/api"
SB_KEYS = "https://supabase.com/dashboard/project/_/settings/api-keys"

VARIABLES: tuple[Variable, ...] = (
    Variable(
        "CLOUDFLARE_API",
        "Cloudflare",
        True,
        "API token that deploys the API worker",
        f'{CF_TOKENS} → Create token → "Edit Cloudflare Workers" template '
        "(Workers Scripts: Edit, Account Settings: Read).",
    ),
    Variable(
        "CLOUDFLARE_ACCOUNT_ID",
        "Cloudflare",
        True,
        "the account the worker is deployed to",
        f"{CF_DASH} → Workers & Pages → Account ID in the right sidebar.",
    ),
    Variable(
        "SUPABASE_URL",
        "Supabase",
        False,
        "the project the API talks to",
        f"{SB_API} → Project URL (https://<ref>.supabase.co).",
    ),
    Variable(
        "SUPABASE_PROJECT_REF",
        "Supabase",
        False,
        "links the Supabase CLI for migrations and functions",
        "The 20 letters before .supabase.co in the Project URL (Project Settings → General).",
    ),
    Variable(
        "SUPABASE_ANON_KEY",
        "Supabase",
        False,
        "public key; requests respect row-level security",
        f"{SB_API} → Legacy API keys → anon public.",
        alternative="SUPABASE_PUBLISHABLE_KEY",
    ),
    Variable(
        "SUPABASE_PUBLISHABLE_KEY",
        "Supabase",
        False,
        "public key (new format); requests respect row-level security",
        f"{SB_KEYS} → Publishable key (sb_publishable_…).",
        alternative="SUPABASE_ANON_KEY",
    ),
    Variable(
        "SUPABASE_SERVICE_ROLE_KEY",
        "Supabase",
        False,
        "server-only key that bypasses row-level security",
        f"{SB_API} → Legacy API keys → service_role secret. Never expose it to a browser.",
        alternative="SUPABASE_SECRET_KEY",
    ),
    Variable(
        "SUPABASE_SECRET_KEY",
        "Supabase",
        False,
        "server-only key (new format) that bypasses row-level security",
        f"{SB_KEYS} → Secret keys (sb_secret_…). Never expose it to a browser.",
        alternative="SUPABASE_SERVICE_ROLE_KEY",
    ),
    Variable(
        "SUPABASE_JWT_SECRET",
        "Supabase",
        False,
        "lets the API verify users' access tokens (HS256)",
        f"{SB_API} → JWT Settings → JWT Secret (legacy JWT secret).",
    ),
)
BY_NAME = {v.name: v for v in VARIABLES}
PUBLIC_KEY_SLOTS = ("SUPABASE_ANON_KEY", "SUPABASE_PUBLISHABLE_KEY")
SECRET_KEY_SLOTS = ("SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_SECRET_KEY")

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "0.0.0.0", "::1", "host.docker.internal", "kong"}
_HOSTED = re.compile(r"^([^.]+)\.supabase\.(co|in)$")
_REF = re.compile(r"^[a-z]{20}$")
_ACCOUNT_ID = re.compile(r"^[0-9a-f]{32}$")


def mask(value: str) -> str:
    """A value as reports show it: at most a 4-character prefix and the length."""
    shown = value[:4] if len(value) >= 12 else ""
    return f"{shown}… ({len(value)} chars)"


@dataclass(frozen=True, slots=True)
class SupabaseUrl:
    """What a SUPABASE_URL points at: a hosted project (with its ref) or a local stack."""

    local: bool
    ref: str | None


def parse_supabase_url(value: str) -> tuple[SupabaseUrl | None, str | None, Level]:
    """(parsed, problem, level of the problem) for a SUPABASE_URL value."""
    try:
        parts = urlsplit(value.strip())
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        return None, "is not a valid URL", Level.ERROR
    if parts.scheme not in ("http", "https") or not host:
        return None, "must start with https:// (or http:// for a local stack)", Level.ERROR
    if host in _LOCAL_HOSTS or host.endswith(".local"):
        return SupabaseUrl(local=True, ref=None), None, Level.OK
    if parts.path not in ("", "/"):
        return None, "must be the project root URL, without a path", Level.ERROR
    hosted = _HOSTED.match(host)
    if hosted:
        if parts.scheme != "https":
            return None, "must use https:// for a hosted project", Level.ERROR
        ref = hosted.group(1)
        if not _REF.match(ref):
            return None, "has a project ref that is not 20 lowercase letters", Level.ERROR
        return SupabaseUrl(local=False, ref=ref), None, Level.OK
    if parts.scheme == "https":
        return (
            SupabaseUrl(local=False, ref=None),
            "is not https://<ref>.supabase.co (a custom domain? refs cannot be cross-checked)",
            Level.WARN,
        )
    return None, "is neither https://<ref>.supabase.co nor a local URL", Level.ERROR


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A Supabase key: ``publishable``, ``secret``, ``jwt`` (legacy, with claims) or ``unknown``."""

    kind: str
    claims: dict[str, Any] = field(default_factory=dict)


def classify_key(value: str) -> KeyInfo:
    """Recognise the key's format; legacy JWTs are decoded without verifying the signature."""
    value = value.strip()
    if value.startswith("sb_publishable_"):
        return KeyInfo("publishable")
    if value.startswith("sb_secret_"):
        return KeyInfo("secret")
    parts = value.split(".")
    if len(parts) == 3 and value.startswith("ey"):
        try:
            padded = parts[1] + "=" * (-len(parts[1]) % 4)
            claims = json.loads(base64.urlsafe_b64decode(padded))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return KeyInfo("unknown")
        if isinstance(claims, dict):
            return KeyInfo("jwt", claims)
    return KeyInfo("unknown")


@dataclass
class Finding:
    """The verdict on one variable: its level, status word, masked value and messages."""

    variable: Variable
    level: Level
    status: str
    masked: str | None = None
    messages: list[str] = field(default_factory=list)

    def add(self, level: Level, message: str, status: str = "invalid") -> None:
        """Record a problem; the finding takes the worst level seen."""
        self.messages.append(message)
        if _RANK[level] > _RANK[self.level]:
            self.level = level
            self.status = status

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.variable.name,
            "platform": self.variable.platform,
            "required": self.variable.required,
            "level": str(self.level),
            "status": self.status,
            "value": self.masked,
            "messages": list(self.messages),
        }


@dataclass
class Report:
    """Everything ``check-envs`` found, in display order."""

    files: list[str]
    findings: list[Finding]
    problems: list[str] = field(default_factory=list)
    missing_file: str | None = None

    @property
    def ok(self) -> bool:
        """True when nothing is an error (warnings do not block a deploy)."""
        return self.missing_file is None and all(f.level != Level.ERROR for f in self.findings)

    def summary(self) -> dict[str, int]:
        counts = {str(level): 0 for level in Level}
        for finding in self.findings:
            counts[str(finding.level)] += 1
        return counts

    def platforms(self) -> list[tuple[str, list[Finding]]]:
        """Findings grouped by platform, in the order the variables are declared."""
        groups: dict[str, list[Finding]] = {}
        for finding in self.findings:
            groups.setdefault(finding.variable.platform, []).append(finding)
        return list(groups.items())

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "files": self.files,
            "missing_file": self.missing_file,
            "problems": self.problems,
            "summary": self.summary(),
            "variables": [f.to_dict() for f in self.findings],
        }


def _check_format(finding: Finding, value: str, url: SupabaseUrl | None) -> None:
    name = finding.variable.name
    if name == "CLOUDFLARE_ACCOUNT_ID" and not _ACCOUNT_ID.match(value):
        finding.add(
            Level.ERROR,
            f"must be 32 lowercase hexadecimal characters (got {len(value)} characters)",
        )
    elif name == "CLOUDFLARE_API" and re.search(r"\s", value):
        finding.add(Level.ERROR, "contains whitespace; paste the token alone")
    elif name == "SUPABASE_URL":
        _, problem, level = parse_supabase_url(value)
        if problem:
            finding.add(level, problem)
    elif name == "SUPABASE_PROJECT_REF":
        if not _REF.match(value):
            finding.add(Level.ERROR, f"must be 20 lowercase letters (got {len(value)} characters)")
        elif url is not None and url.ref is not None and url.ref != value:
            finding.add(Level.ERROR, "differs from the project ref in SUPABASE_URL")
    elif name in PUBLIC_KEY_SLOTS or name in SECRET_KEY_SLOTS:
        _check_key(finding, value, url)
    elif name == "SUPABASE_JWT_SECRET" and len(value) < 32:
        finding.add(Level.WARN, "is shorter than Supabase's JWT secrets (32+ characters)")


def _check_key(finding: Finding, value: str, url: SupabaseUrl | None) -> None:
    public_slot = finding.variable.name in PUBLIC_KEY_SLOTS
    key = classify_key(value)
    if key.kind == "unknown":
        expected = "sb_publishable_…" if public_slot else "sb_secret_…"
        finding.add(Level.ERROR, f"is neither a legacy JWT key nor a {expected} key")
        return
    if public_slot and key.kind == "secret":
        finding.add(
            Level.ERROR,
            "is a SECRET key (sb_secret_…) in a public slot: it bypasses row-level security "
            "and must never reach a client; use the publishable key here",
        )
    elif not public_slot and key.kind == "publishable":
        finding.add(Level.ERROR, "is a publishable key; the server needs a secret key here")
    if key.kind != "jwt":
        return
    role = key.claims.get("role")
    wanted = "anon" if public_slot else "service_role"
    if role != wanted:
        swapped = {"anon", "service_role"} == {role, wanted}
        finding.add(
            Level.ERROR,
            f"has role {role!r}, expected {wanted!r}"
            + (": the anon and service-role keys look swapped" if swapped else ""),
        )
    issuer = key.claims.get("iss")
    if issuer == "supabase-demo" and url is not None and not url.local:
        finding.add(
            Level.ERROR,
            "is the local development demo key (iss=supabase-demo); it does not work against "
            "a hosted project",
        )
    ref = key.claims.get("ref")
    if ref and url is not None and url.ref is not None and ref != url.ref:
        finding.add(Level.ERROR, "was issued for another project (its ref differs from the URL's)")
    exp = key.claims.get("exp")
    if isinstance(exp, int | float) and exp < time.time():
        finding.add(Level.ERROR, "has expired")


def check_values(values: Mapping[str, str]) -> list[Finding]:
    """One finding per known variable, in declaration order."""
    url: SupabaseUrl | None = None
    if raw_url := values.get("SUPABASE_URL"):
        url, _, _ = parse_supabase_url(raw_url)
    findings: list[Finding] = []
    for variable in VARIABLES:
        value = values.get(variable.name)
        if value is None:
            alternative = variable.alternative
            if alternative and (values.get(alternative) or "").strip():
                findings.append(
                    Finding(variable, Level.SKIP, "not_set", messages=[f"{alternative} is used"])
                )
            elif variable.required:
                findings.append(
                    Finding(variable, Level.ERROR, "missing", messages=["required, not set"])
                )
            else:
                findings.append(
                    Finding(
                        variable,
                        Level.WARN,
                        "not_set",
                        messages=[f"not set (optional: {variable.purpose})"],
                    )
                )
            continue
        finding = Finding(variable, Level.OK, "set", masked=mask(value) if value else None)
        reason = placeholder_reason(value)
        if reason is not None:
            status = "empty" if reason == "empty" else "placeholder"
            level = Level.ERROR if variable.required else Level.WARN
            finding.add(level, f"is {reason}; replace it with the real value", status)
        else:
            _check_format(finding, value.strip(), url)
        findings.append(finding)
    return findings


def load_env_files(
    root: Path, env_file: Path | None = None, environment: str | None = None
) -> tuple[DotEnv, str | None]:
    """The merged ``.env`` (+ ``.env.<environment>``) and the path of a missing file, if any."""
    base = env_file if env_file is not None else root / ".env"
    if not base.is_file():
        return DotEnv(), str(base)
    env = read_dotenv(base)
    if environment:
        overlay = base.with_name(f"{base.name}.{environment}")
        if not overlay.is_file():
            return env, str(overlay)
        env.update(read_dotenv(overlay))
    return env, None


def check_project(
    root: Path, env_file: Path | None = None, environment: str | None = None
) -> Report:
    """Check the project's env files; see the module docstring for the rules."""
    env, missing = load_env_files(root, env_file, environment)
    return Report(
        files=[str(path) for path in env.files],
        findings=check_values(env.values) if not missing or env.files else [],
        problems=list(env.problems),
        missing_file=missing,
    )
