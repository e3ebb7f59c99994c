"""``shipyard.extras`` agrees with ``pyproject.toml``'s extras, and reports a missing one as
one line naming it (while a real import bug stays the ImportError it is)."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest

from shipyard.errors import ConfigError, MissingExtraError
from shipyard.extras import EXTRAS, missing_extra, missing_modules, require

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _extras() -> dict[str, list[str]]:
    data = tomllib.loads(PYPROJECT.read_text())
    extras: dict[str, list[str]] = data["project"]["optional-dependencies"]
    return extras


def _distributions(extra: str) -> set[str]:
    """The distributions ``shipyard[extra]`` lists, self-references expanded."""
    names: set[str] = set()
    for requirement in _extras()[extra]:
        match = re.match(r"([A-Za-z0-9_.-]+)(?:\[([^\]]*)\])?", requirement)
        assert match is not None, requirement
        name, inner = match.group(1), match.group(2)
        if name == "shipyard":
            for sub in (inner or "").split(","):
                names |= _distributions(sub.strip())
        else:
            names.add(name.lower())
            names |= {f"{name.lower()}-{e.strip()}" for e in (inner or "").split(",") if e}
    return names


def test_each_extra_lists_the_distributions_of_the_modules_it_names() -> None:
    providers = importlib.metadata.packages_distributions()
    for extra, modules in EXTRAS.items():
        listed = _distributions(extra)
        for module in modules:
            distributions = {d.lower() for d in providers.get(module, [])}
            assert distributions & listed, f"{module} of '{extra}' is not in shipyard[{extra}]"


def test_all_is_engine_plus_postgres() -> None:
    assert _distributions("all") == _distributions("engine") | _distributions("postgres")
    assert set(_extras()) == {*EXTRAS, "all"}


def test_the_base_install_lists_no_module_of_an_extra() -> None:
    base = {
        re.split(r"[<>=\[ ;]", r, maxsplit=1)[0].lower()
        for r in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    }
    heavy = {m.replace("_", "-") for modules in EXTRAS.values() for m in modules}
    assert not base & heavy, base & heavy


def test_require_names_the_extra_and_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EXTRAS, "postgres", ("psycopg", "no_such_module_xyz"))
    assert missing_modules("postgres") == ["no_such_module_xyz"]
    with pytest.raises(MissingExtraError) as caught:
        require("postgres", "The PostgreSQL store")
    error = caught.value
    assert isinstance(error, ConfigError) and isinstance(error, ImportError)
    assert error.extra == "postgres" and error.modules == ("no_such_module_xyz",)
    assert error.message == (
        "The PostgreSQL store needs the 'postgres' extra (no_such_module_xyz is not installed): "
        "pip install 'shipyard[postgres]' (with uv: uv add 'shipyard[postgres]')"
    )
    require("postgres", "The PostgreSQL store", ("psycopg",))  # installed: nothing raised


def test_missing_extra_only_converts_a_missing_module_of_that_extra() -> None:
    ours = ModuleNotFoundError("No module named 'uvicorn'", name="uvicorn")
    converted = missing_extra(ours, "engine", "shipyard dev")
    assert isinstance(converted, MissingExtraError)
    assert "shipyard dev needs the 'engine' extra (uvicorn is not installed)" in str(converted)

    bug = ModuleNotFoundError("No module named 'shipyard.nope'", name="shipyard.nope")
    assert missing_extra(bug, "engine", "shipyard dev") is bug
    # Installed but broken (another version's names): not a missing extra.
    broken = ImportError("cannot import name 'x' from 'uvicorn'", name="uvicorn")
    assert missing_extra(broken, "engine", "shipyard dev") is broken
