"""The public surface is exactly ``shipyard.__all__``: sorted, complete, importable."""

from __future__ import annotations

import shipyard


def test_all_is_sorted_and_unique() -> None:
    assert list(shipyard.__all__) == sorted(set(shipyard.__all__))


def test_every_exported_name_exists() -> None:
    missing = [name for name in shipyard.__all__ if not hasattr(shipyard, name)]
    assert missing == []


def test_nothing_public_is_left_unexported() -> None:
    public = {
        name
        for name, value in vars(shipyard).items()
        if not name.startswith("_") and not isinstance(value, type(shipyard))
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
