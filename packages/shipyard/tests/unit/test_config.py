"""Settings come from defaults, [tool.shipyard], SHIPYARD_* and code, in that order."""

from __future__ import annotations

from pathlib import Path

import pytest

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
