"""Settings come from defaults, [tool.shipyard], SHIPYARD_* and code, in that order."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard import config
from shipyard.config import find_project_root, load_settings
from shipyard.errors import ConfigError


def _project(tmp_path: Path, section: str = "") -> Path:
    (tmp_path / "pyproject.toml").write_text(f"[project]\nname='x'\n\n[tool.shipyard]\n{section}")
    return tmp_path


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIPYARD_ENVIRONMENT", raising=False)
    monkeypatch.delenv("SHIPYARD_DATABASE_URL", raising=False)
    settings = load_settings(project_root=_project(tmp_path))
    assert settings.environment == "development"
    assert settings.dirs == ["trigger"]
    assert settings.sqlite_path() == tmp_path.resolve() / ".shipyard" / "shipyard.db"
    assert settings.lease_seconds == 3 * settings.heartbeat_interval


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path, 'environment = "staging"\nworker_concurrency = 7\ndirs = ["jobs"]\n')
    monkeypatch.setenv("SHIPYARD_WORKER_CONCURRENCY", "9")
    settings = load_settings(project_root=root)
    assert (settings.environment, settings.worker_concurrency, settings.dirs) == (
        "staging",
        9,
        ["jobs"],
    )
    assert load_settings(project_root=root, worker_concurrency=3).worker_concurrency == 3


def test_list_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_DIRS", "a, b")
    assert load_settings(project_root=_project(tmp_path)).dirs == ["a", "b"]


def test_invalid_values_are_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_WORKER_CONCURRENCY", "many")
    with pytest.raises(ConfigError, match="worker_concurrency"):
        load_settings(project_root=_project(tmp_path))


def test_unknown_database_scheme(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sqlite:///"):
        load_settings(project_root=_project(tmp_path), database_url="mysql://x")


def test_broken_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.shipyard\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(project_root=tmp_path)


def test_find_project_root_walks_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIPYARD_PROJECT_ROOT", raising=False)
    root = _project(tmp_path)
    nested = root / "a" / "b"
    nested.mkdir(parents=True)
    assert find_project_root(nested) == root.resolve()


def test_absolute_sqlite_url(tmp_path: Path) -> None:
    settings = load_settings(project_root=_project(tmp_path), database_url="sqlite:////tmp/x.db")
    assert settings.sqlite_path() == Path("/tmp/x.db")


def test_dev_secret_key_is_created_once(tmp_path: Path) -> None:
    settings = load_settings(project_root=_project(tmp_path))
    key = settings.resolved_secret_key()
    assert key.startswith("sk_dev_") and settings.resolved_secret_key() == key
    assert (tmp_path / ".shipyard" / "secret_key").stat().st_mode & 0o077 == 0


def test_secret_key_required_outside_development(tmp_path: Path) -> None:
    settings = load_settings(project_root=_project(tmp_path), environment="production")
    with pytest.raises(ConfigError, match="SHIPYARD_SECRET_KEY"):
        settings.resolved_secret_key()


@pytest.mark.parametrize("environment", ["production", "staging", "development"])
def test_a_short_secret_key_is_refused_by_length_never_by_value(
    tmp_path: Path, environment: str
) -> None:
    value = "hunter2-but-longer-é"  # 21 bytes
    settings = load_settings(
        project_root=_project(tmp_path), environment=environment, secret_key=value
    )
    with pytest.raises(ConfigError) as info:
        settings.resolved_secret_key()
    message = str(info.value)
    assert "SHIPYARD_SECRET_KEY is 21 bytes long" in message
    assert "at least 32 bytes" in message and value not in message and "hunter" not in message
    good = "k" * 32
    assert load_settings(
        project_root=tmp_path, environment=environment, secret_key=good
    ).resolved_secret_key() == (good)


def test_no_secret_key_outside_development_names_the_variable(tmp_path: Path) -> None:
    settings = load_settings(project_root=_project(tmp_path), environment="production")
    with pytest.raises(ConfigError) as info:
        settings.resolved_secret_key()
    assert "SHIPYARD_SECRET_KEY must be set" in str(info.value)
    assert "'production'" in str(info.value) and "token_urlsafe(32)" in str(info.value)
    assert not (tmp_path / ".shipyard" / "secret_key").exists()


@pytest.mark.parametrize("content", ["", "   \n", "sk_dev_short"])
def test_an_empty_or_short_development_key_file_is_an_error(
    tmp_path: Path, content: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reader gives a writer of the old, in-place kind a moment (1 s) before it refuses.
    monkeypatch.setattr(config, "_KEY_FILE_WAIT_S", 0.05)
    path = tmp_path / ".shipyard" / "secret_key"
    path.parent.mkdir()
    path.write_text(content)
    settings = load_settings(project_root=_project(tmp_path))
    with pytest.raises(ConfigError) as info:
        settings.resolved_secret_key()
    message = str(info.value)
    assert str(path) in message and "Delete the file" in message
    assert f"holds {len(content.strip())} bytes" in message
    assert "sk_dev_short" not in message
    path.unlink()  # as the message says: a new key is created
    assert len(settings.resolved_secret_key()) >= 32


def test_the_development_key_file_leaves_no_temp_files(tmp_path: Path) -> None:
    settings = load_settings(project_root=_project(tmp_path))
    key = settings.resolved_secret_key()
    assert [p.name for p in (tmp_path / ".shipyard").iterdir()] == ["secret_key"]
    assert (tmp_path / ".shipyard" / "secret_key").read_text() == key


def test_to_environ_makes_a_child_load_the_same_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(
        project_root=_project(tmp_path),
        database_url="postgresql://u:p@h:5432/d",
        server_port=4040,
        dirs=["jobs", "more"],
        retries_default={"max_attempts": 2},
        retries_enabled_in_dev=False,
        heartbeat_interval=0.25,
        default_ttl=600,
        log_format="json",
        secret_key="s" * 40,
    )
    environ = settings.to_environ()
    assert environ["SHIPYARD_SERVER_PORT"] == "4040"
    assert environ["SHIPYARD_MAX_DURATION"] is None
    for name in list(environ):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        if value is not None:
            monkeypatch.setenv(name, value)
    assert load_settings() == settings


def test_log_format_is_text_or_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIPYARD_LOG_FORMAT", raising=False)
    assert load_settings(project_root=_project(tmp_path)).log_format == "text"
    monkeypatch.setenv("SHIPYARD_LOG_FORMAT", "json")
    assert load_settings(project_root=tmp_path).log_format == "json"
    monkeypatch.setenv("SHIPYARD_LOG_FORMAT", "yaml")
    with pytest.raises(ConfigError, match="log_format"):
        load_settings(project_root=tmp_path)


def test_default_ttl_in_seconds_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_DEFAULT_TTL", "600")
    assert load_settings(project_root=_project(tmp_path)).default_ttl_ms() == 600_000
