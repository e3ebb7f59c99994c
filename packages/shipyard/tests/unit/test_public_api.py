"""The public surface is exactly ``shipyard.__all__``: sorted, complete, importable."""

from __future__ import annotations

from fresh_process import fresh_python

import shipyard


def test_all_is_sorted_and_unique() -> None:
    assert list(shipyard.__all__) == sorted(set(shipyard.__all__))


def test_every_exported_name_exists() -> None:
    missing = [name for name in shipyard.__all__ if not hasattr(shipyard, name)]
    assert missing == []


def test_nothing_public_is_left_unexported() -> None:
    # dir(): the names loaded so far and those loaded on first use alike.
    public = {
        name
        for name in dir(shipyard)
        if not name.startswith("_") and not isinstance(getattr(shipyard, name), type(shipyard))
    }
    assert public - set(shipyard.__all__) == set()


def test_every_public_name_has_a_docstring() -> None:
    undocumented = [
        name
        for name in shipyard.__all__
        if name != "__version__"
        and not (getattr(shipyard, name).__doc__ or type(getattr(shipyard, name)).__doc__)
    ]
    assert undocumented == []


def test_importing_a_module_of_shipyard_leaves_the_sdk_unloaded_until_used() -> None:
    """``import shipyard.config`` (or ``import shipyard``) loads what it names, not the engine
    and the SDK: a public name is imported when it is first used."""
    code = (
        "import sys\n"
        "import shipyard.config, shipyard\n"
        "heavy = ('shipyard.engine.engine', 'shipyard.sdk.backend', 'shipyard.models.runs')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "from shipyard import task, RunStatus\n"
        "print(task.__module__, RunStatus.COMPLETED.value, 'task' in dir(shipyard))\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    before, used, after = fresh_python(code).splitlines()
    assert before == "[]", before
    assert used == "shipyard.sdk.task COMPLETED True", used
    assert after != "[]", after  # the SDK came with the first name that needed it
