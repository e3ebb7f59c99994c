"""Run a store procedure without a database, to see which statements it runs.

The shared procedures are generators of steps (``shipyard.store.steps``); a backend runs each
step's statement by name. :func:`drive` answers each step from canned answers instead, so a
test can check which statements a procedure runs, and with what, for given answers.
"""

from __future__ import annotations

from typing import Any

from shipyard.store.steps import COUNT, ROW, ROWS, Procedure

__all__ = ["drive"]

_EMPTY: dict[int, Any] = {COUNT: 0, ROW: None, ROWS: []}


def drive(procedure: Procedure[Any], answers: dict[str, Any]) -> list[tuple[str, Any]]:
    """The (name, parameters) of every step ``procedure`` takes, in order, each answered from
    ``answers`` (by statement name) or with its kind's empty result (0 rows changed, no row,
    no rows). Steps without a statement (``BEGIN``) have the name ``""``."""
    seen: list[tuple[str, Any]] = []
    result: Any = None
    try:
        while True:
            kind, name, params = procedure.send(result)
            seen.append((name, params))
            result = answers.get(name, _EMPTY.get(kind))
    except StopIteration:
        return seen
