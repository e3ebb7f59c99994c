"""The engine's schema and the code version: settings, validation, and the content hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.config import load_settings
from shipyard.discovery import code_version
from shipyard.errors import ConfigError


def _project(root: Path, **files: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text("[project]\nname='x'\n\n[tool.shipyard]\n")
    (root / "trigger").mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / "trigger" / f"{name}.py").write_text(text)
    return root


def test_the_schema_defaults_to_shipyard_and_reads_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHIPYARD_DATABASE_SCHEMA", raising=False)
    assert load_settings(project_root=_project(tmp_path)).database_schema == "shipyard"
    monkeypatch.setenv("SHIPYARD_DATABASE_SCHEMA", "engine_2")
    assert load_settings(project_root=tmp_path).database_schema == "engine_2"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("public", "Data API"),
        ("pg_engine", "cannot be"),
        ("information_schema", "cannot be"),
        ("Shipyard", "plain lowercase"),
        ("ship-yard", "plain lowercase"),
        ('x"; drop table runs; --', "plain lowercase"),
        ("9lives", "plain lowercase"),
        ("a" * 64, "at most 63"),
        ("", "plain lowercase"),
    ],
)
def test_a_schema_that_is_not_a_plain_identifier_is_refused(
    tmp_path: Path, value: str, says: str
) -> None:
    with pytest.raises(ConfigError, match="database_schema") as info:
        load_settings(project_root=_project(tmp_path), database_schema=value or " ")
    assert says in str(info.value)


def test_the_version_comes_from_shipyard_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path, jobs="x = 1\n")
    monkeypatch.setenv("SHIPYARD_VERSION", "a1b2c3d")
    settings = load_settings(project_root=root)
    assert settings.version == "a1b2c3d"
    assert code_version(settings) == "a1b2c3d"
    monkeypatch.setenv("SHIPYARD_VERSION", "bad version!")
    with pytest.raises(ConfigError, match="SHIPYARD_VERSION"):
        load_settings(project_root=root)


def test_the_content_hash_follows_the_task_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHIPYARD_VERSION", raising=False)
    first = _project(tmp_path / "a", jobs="x = 1\n", more="y = 2\n")
    same_elsewhere = _project(tmp_path / "b", jobs="x = 1\n", more="y = 2\n")
    changed = _project(tmp_path / "c", jobs="x = 2\n", more="y = 2\n")
    version = code_version(load_settings(project_root=first))
    assert len(version) == 12 and int(version, 16) >= 0
    # The same code is the same version wherever it is checked out; a change is a new one.
    assert code_version(load_settings(project_root=same_elsewhere)) == version
    assert code_version(load_settings(project_root=changed)) != version
    # Files named by the worker (where its tasks are defined) count too.
    extra = tmp_path / "elsewhere.py"
    extra.write_text("z = 3\n")
    with_extra = code_version(load_settings(project_root=first), [extra])
    assert with_extra != version
    extra.write_text("z = 4\n")
    assert code_version(load_settings(project_root=first), [extra]) != with_extra
    # A task folder that does not exist, or a file that cannot be read, is not an error.
    empty = tmp_path / "d"
    empty.mkdir()
    (empty / "pyproject.toml").write_text("[project]\nname='x'\n")
    assert len(code_version(load_settings(project_root=empty), ["<unknown>"])) == 12
