"""Typed settings, read once from defaults, ``[tool.shipyard]``, ``SHIPYARD_<NAME>`` and code.

Precedence, lowest first: field defaults → ``[tool.shipyard]`` in the project's root
``pyproject.toml`` → environment variables ``SHIPYARD_<FIELD_NAME_UPPERCASE>`` →
``shipyard.configure(...)`` in code. Every process that uses the same project root and
environment reaches the same store, so an app process that triggers runs and the worker that
executes them agree without extra wiring.

Example::

    import shipyard
    shipyard.configure(database_url="sqlite:///tmp/app.db", environment="staging")
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from shipyard.errors import ConfigError

ENV_PREFIX = "SHIPYARD_"
SECRET_KEY_MIN_BYTES = 32
"""Shortest secret key accepted anywhere: HMACs and tokens signed with less are forgeable."""
_KEY_FILE_WAIT_S = 1.0
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_VERSION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}")


class Settings(BaseModel):
    """Everything Shipyard can be configured with. Each field maps to ``SHIPYARD_<NAME>``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project_root: Path = Field(
        default_factory=Path.cwd,
        description="Folder holding pyproject.toml, trigger/ and .shipyard/.",
    )
    database_url: str = Field(
        default="sqlite:///.shipyard/shipyard.db",
        description="sqlite:///relative/or/absolute.db (relative to the project root), "
        "or postgresql://... for many worker machines.",
    )
    database_schema: str = Field(
        default="shipyard",
        description="PostgreSQL schema holding the engine's tables, functions and triggers "
        "(never public: Supabase's Data API exposes public). Ignored by SQLite.",
    )
    environment: str = Field(
        default="development",
        description="development, staging, production or preview/<branch>.",
    )
    dirs: list[str] = Field(
        default_factory=lambda: ["trigger"],
        description="Folders (relative to the project root) whose modules define tasks.",
    )
    secret_key: str | None = Field(
        default=None,
        description="Secret key of this environment (at least 32 bytes); signs public access "
        "tokens and wait token callback URLs. In development a random key is created in "
        ".shipyard/secret_key when unset.",
    )
    retries_enabled_in_dev: bool = Field(
        default=True, description="Retry failed attempts in the development environment."
    )
    retries_default: dict[str, Any] = Field(
        default_factory=lambda: {
            "max_attempts": 3,
            "min_timeout_ms": 1000,
            "max_timeout_ms": 10000,
            "factor": 2,
            "randomize": True,
        },
        description="Retry options for tasks that set no retry of their own.",
    )
    max_duration: int | None = Field(
        default=None, description="Default max_duration (seconds) of an attempt; none = no limit."
    )
    environment_concurrency_limit: int = Field(
        default=100,
        ge=0,
        le=100_000,
        description="Runs executing at once in this environment (per queue at most this).",
    )
    burst_factor: float = Field(
        default=2.0,
        ge=1.0,
        description="The environment may run limit × burst_factor at once across queues.",
    )
    default_ttl: str | int | None = Field(
        default=None,
        description="TTL of runs that set none (duration or seconds; 0 = none). Unset: 10m in "
        "development, none elsewhere.",
    )
    run_retention: str | int = Field(
        default="30d",
        description="How long finished runs (with their attempts, events and streams) and "
        "completed waitpoints are kept (duration or seconds; 0 = forever).",
    )
    trigger_rate_limit: bool | None = Field(
        default=None,
        description="Token-bucket limit on triggers per environment. Unset: off in development, "
        "on elsewhere.",
    )
    trigger_rate_bucket: int = Field(default=1200, ge=1, description="Bucket size (runs).")
    trigger_rate_refill: int = Field(
        default=100, ge=1, description="Runs added to the bucket per refill interval."
    )
    trigger_rate_interval: str = Field(default="10s", description="Refill interval (duration).")
    worker_concurrency: int = Field(
        default=25, ge=1, le=10_000, description="Attempts one worker runs at once."
    )
    heartbeat_interval: float = Field(
        default=5.0,
        gt=0,
        description="Seconds between lease heartbeats; a lease lasts 3 heartbeat intervals.",
    )
    poll_interval: float = Field(
        default=0.5,
        gt=0,
        description="Seconds between backup polls for runs when no wake-up arrives.",
    )
    shutdown_grace: float = Field(
        default=30.0,
        ge=0,
        description="Seconds running attempts get to finish after SIGTERM before release.",
    )
    max_parked: int = Field(
        default=10_000,
        ge=0,
        description="Runs one worker keeps parked at durable waits; beyond, the oldest are "
        "dropped and resume by replay.",
    )
    parked_idle: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds a run stays parked in its worker before it is dropped (it then "
        "resumes by replay).",
    )
    wait_for_db: bool = Field(
        default=False,
        description="Wait for an unreachable PostgreSQL at start instead of failing after 10 s.",
    )
    postgres_async_commit: bool = Field(
        default=False,
        description="PostgreSQL only: commit workers' claims and finishes without waiting for "
        "the WAL flush (synchronous_commit off for those transactions, never for triggers). "
        "Faster drains; a database crash (not a restart) may lose the last ~0.6 s of them, "
        "and those runs are handled as after a worker crash (retried when their lease runs "
        "out: at least once; CRASHED on the last attempt).",
    )
    version: str | None = Field(
        default=None,
        description="The version of the task code a worker registers (a git sha, a release). "
        "Unset: a content hash of the task files.",
    )
    server_host: str = Field(default="127.0.0.1", description="Engine server bind address.")
    server_port: int = Field(default=3030, description="Engine server port.")
    server_allowed_hosts: list[str] | None = Field(
        default=None,
        description="Host names the engine server answers (the Host header; '*' = any). "
        "Unset: localhost, 127.0.0.1 and ::1 when it listens on a loopback address, any "
        "host otherwise.",
    )
    server_cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins (https://app.example.com, or '*') allowed to call the "
        "routes a public access token may call. Empty: no cross-origin access.",
    )
    api_port: int = Field(
        default=8787, ge=0, le=65535, description="Port of the app API in `shipyard dev`; 0 = off."
    )
    functions_port: int = Field(
        default=54321,
        ge=0,
        le=65535,
        description="Port of the functions (/functions/v1/<name>) in `shipyard dev`; 0 = off.",
    )
    api_url: str | None = Field(
        default=None,
        description="A remote engine server's URL (https://engine.example.com). When set, SDK "
        "calls made outside a running task (trigger, runs, wait tokens, queues …) and the CLI go "
        "over HTTP to it, authenticated with secret_key, and no database is opened here.",
    )
    api_timeout: float = Field(
        default=30.0, gt=0, description="Seconds the remote client waits for one HTTP answer."
    )
    log_level: str = Field(default="info", description="debug, info, warning or error.")
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log lines of workers and servers: text (for people) or json (one object "
        "per line, with run_id, task_id and attributes as fields).",
    )

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError(
                f"database_url must start with sqlite:/// or postgresql://, got {value[:12]!r}…"
            )
        return value

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")) or len(value) <= len("https://"):
            raise ValueError(
                "api_url (SHIPYARD_API_URL) must be the engine server's http:// or https:// URL, "
                "e.g. https://engine.example.com (the value is not repeated here: a URL can hold a "
                "password)"
            )
        return value

    @field_validator("database_schema")
    @classmethod
    def _plain_schema(cls, value: str) -> str:
        # Interpolated into SQL (as a quoted identifier): only plain lowercase identifiers.
        if not _SCHEMA_NAME.fullmatch(value):
            raise ValueError(
                "database_schema (SHIPYARD_DATABASE_SCHEMA) must be a plain lowercase SQL "
                "identifier: a-z, 0-9 and _, not starting with a digit, at most 63 characters; "
                f"got {value[:70]!r}"
            )
        if value == "public" or value.startswith("pg_") or value == "information_schema":
            raise ValueError(
                f"database_schema cannot be {value!r}: the engine's tables get a schema of "
                "their own (on Supabase, public is exposed by the Data API)"
            )
        return value

    @field_validator("version")
    @classmethod
    def _version_token(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not _VERSION.fullmatch(value):
            raise ValueError(
                "version (SHIPYARD_VERSION) may hold letters, digits, '_', '.', '-' and '+', "
                "at most 128 characters, not starting with '.', '-' or '+'"
            )
        return value

    @field_validator("default_ttl", "run_retention", mode="before")
    @classmethod
    def _ttl_seconds(cls, value: Any) -> Any:
        # SHIPYARD_DEFAULT_TTL=600 means 600 seconds, as default_ttl = 600 does in pyproject.
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        return value

    def default_ttl_ms(self) -> int | None:
        """The TTL of runs that set none, in ms (None: no TTL)."""
        from shipyard.durations import parse_duration_ms

        value = self.default_ttl
        if value is None:
            return 600_000 if self.environment == "development" else None
        ms = parse_duration_ms(value)
        return ms or None

    def run_retention_ms(self) -> int | None:
        """How long finished runs are kept, in ms (None: forever)."""
        from shipyard.durations import parse_duration_ms

        return parse_duration_ms(self.run_retention) or None

    def rate_limit_enabled(self) -> bool:
        """Whether triggers are rate limited in this environment."""
        if self.trigger_rate_limit is None:
            return self.environment != "development"
        return self.trigger_rate_limit

    @property
    def lease_seconds(self) -> float:
        """How long a claimed run stays owned without a heartbeat."""
        return 3 * self.heartbeat_interval

    @property
    def state_dir(self) -> Path:
        """``.shipyard/`` under the project root: the SQLite file, the dev secret key."""
        return self.project_root / ".shipyard"

    def sqlite_path(self) -> Path:
        """The SQLite database file this configuration points at."""
        raw = self.database_url.removeprefix("sqlite://")
        # sqlite:///rel/path → "/rel/path" relative; sqlite:////abs/path → "//abs/path" absolute.
        if raw.startswith("//"):
            return Path(raw[1:])
        path = Path(raw.removeprefix("/"))
        return path if path.is_absolute() else self.project_root / path

    def resolved_secret_key(self) -> str:
        """The environment's secret key; in development one is created on first use.

        Raises:
            ConfigError: the key is shorter than 32 bytes, or missing outside development, or
                the development key file is empty or cut short. Messages name the variable or
                file and the length, never the value.
        """
        if self.secret_key:
            size = len(self.secret_key.encode("utf-8"))
            if size < SECRET_KEY_MIN_BYTES:
                raise ConfigError(
                    f"SHIPYARD_SECRET_KEY is {size} bytes long; it must be at least "
                    f"{SECRET_KEY_MIN_BYTES} bytes. {_NEW_KEY_HINT}"
                )
            return self.secret_key
        if self.environment != "development":
            raise ConfigError(
                "SHIPYARD_SECRET_KEY must be set outside the development environment "
                f"(environment is {self.environment!r}). {_NEW_KEY_HINT}"
            )
        return _development_key(self.state_dir / "secret_key")

    def to_environ(self) -> dict[str, str | None]:
        """``SHIPYARD_<NAME>`` variables that make a child process load these same settings.

        A field that is None maps to None: remove that variable from the child's environment.
        ``shipyard dev`` gives these to every process it starts.
        """
        env: dict[str, str | None] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                text = None
            elif isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, list | dict):
                text = json.dumps(value)
            else:
                text = str(value)
            env[ENV_PREFIX + name.upper()] = text
        return env


_NEW_KEY_HINT = 'Create one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'


def _development_key(path: Path) -> str:
    """The development key in ``path``, created atomically when there is none.

    Many processes may start at once (``shipyard dev`` and its worker, CLI commands): each
    writes a complete key to a temp file of its own and hard-links it into place, which fails
    if another got there first, so ``path`` never holds a partial key and all of them read the
    first key linked.
    """
    if not path.exists():
        # Private like the SQLite file beside it: the folder holds the key.
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write("sk_dev_" + secrets.token_urlsafe(32))
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temp, path)
            except FileExistsError:
                pass  # another process created it first: use theirs
            except OSError:
                # A file system without hard links: a rename is atomic too, but the last one
                # wins, so read back whatever is in place rather than our own key.
                if not path.exists():
                    os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)
    return _read_key_file(path)


def _read_key_file(path: Path) -> str:
    # A complete file is always linked into place, but an older Shipyard wrote it in place:
    # give such a writer a moment, then refuse rather than sign with an empty or short key.
    deadline = time.monotonic() + _KEY_FILE_WAIT_S
    while True:
        key = path.read_text(encoding="utf-8", errors="replace").strip()
        size = len(key.encode("utf-8"))
        if size >= SECRET_KEY_MIN_BYTES:
            return key
        if time.monotonic() >= deadline:
            raise ConfigError(
                f"The development secret key file {path} holds {size} bytes; a key needs at "
                f"least {SECRET_KEY_MIN_BYTES}. Delete the file (a new key is created on the "
                "next start; wait token URLs and access tokens signed with the old one stop "
                "working) or set SHIPYARD_SECRET_KEY."
            )
        time.sleep(0.02)


def find_project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` whose pyproject.toml has ``[tool.shipyard]``."""
    if explicit := os.environ.get(ENV_PREFIX + "PROJECT_ROOT"):
        return Path(explicit).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "[tool.shipyard]" in pyproject.read_text(errors="replace"):
            return folder
    return here


def _pyproject_section(root: Path) -> dict[str, Any]:
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return {}
    try:
        data = tomllib.loads(pyproject.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{pyproject} is not valid TOML: {exc}") from exc
    section = data.get("tool", {}).get("shipyard", {})
    return dict(section) if isinstance(section, dict) else {}


def _env_values() -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        raw = os.environ.get(ENV_PREFIX + name.upper())
        if raw is None or raw == "":
            continue
        annotation = str(field.annotation)
        if "list" in annotation or "dict" in annotation:
            try:
                values[name] = json.loads(raw)
            except json.JSONDecodeError:
                values[name] = [part.strip() for part in raw.split(",") if part.strip()]
        else:
            values[name] = raw
    return values


def load_settings(**overrides: Any) -> Settings:
    """Build settings from pyproject, environment and ``overrides`` (highest precedence)."""
    root = Path(overrides.get("project_root") or find_project_root())
    merged: dict[str, Any] = {"project_root": root}
    merged.update(_pyproject_section(root))
    merged.update(_env_values())
    merged.update({k: v for k, v in overrides.items() if v is not None})
    merged["project_root"] = Path(merged["project_root"]).resolve()
    try:
        return Settings(**merged)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"Invalid Shipyard settings: {problems}") from exc
