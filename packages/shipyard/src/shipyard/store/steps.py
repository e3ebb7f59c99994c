"""The steps of a store procedure: what a procedure asks its backend's driver to do.

A procedure (``store/procedures/``) is a generator written once for every backend: it yields
steps — ``(kind, query name, params)`` — and receives each step's result, so it does no I/O of
its own. SQLite drives it synchronously on its store thread; PostgreSQL drives it with awaits
on a pooled connection. Example::

    def run_get(p: RunGetParams) -> Procedure[RunRecord | None]:
        found = yield runs("run_get", {"environment": p.environment, "id": p.run_id})
        return found[0] if found else None

A procedure runs in autocommit until it yields :func:`begin`; from there to its end it is one
transaction (committed when it returns, rolled back when it raises).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any, TypeVar

from shipyard.store.params import ReadyNotifyParams

T = TypeVar("T")

Step = tuple[int, str, Any]
Procedure = Generator[Step, Any, T]

BEGIN = 0
"""Open the write transaction (SQLite: ``BEGIN IMMEDIATE``). Result: None."""
LOCK = 1
"""A row lock PostgreSQL needs for lock ordering; SQLite's write transaction already holds the
whole database, so it skips the step. Result: None."""
COUNT = 2
"""Execute; result: the number of rows changed."""
ROWS = 3
"""Execute; result: every row (tuples)."""
ROW = 4
"""Execute; result: the first row, or None."""
RUNS = 5
"""Execute a query returning ``runs`` rows; result: ``list[RunRecord]``."""
MANY = 6
"""Execute once per params dict (``params`` is a list); result: None."""
INSERT_RUNS = 7
"""Insert runs (``params``: a list of ``rows.insert_row`` dicts), skipping conflicts; result:
how many were inserted. Each backend binds them its fastest way."""
NOTIFY = 8
"""Wake the environment's workers once the transaction commits (``params``:
:class:`ReadyNotifyParams`). Result: None."""
SNAPSHOT = 9
"""Open a read-only transaction whose statements all see one snapshot (PostgreSQL:
REPEATABLE READ; SQLite: a deferred read transaction). Result: None."""
INSERT_BULK = 11
"""Insert runs made from one template (``params``: ``(template, ids, payloads)``: an
``rows.insert_row`` dict and, per run, its id and payload; its batch index is its position),
skipping conflicts; result: how many were inserted. No per-run dict or record is built."""
FEED = 10
"""Wake the change feed's readers once the transaction commits (PostgreSQL: NOTIFY
shipyard_feed; SQLite: this process's readers, the others poll). Result: None."""
WANTS = 12
"""Tell the environment's workers that a worker's want of more runs changed, once the
transaction commits (PostgreSQL: NOTIFY shipyard_wants; SQLite: a doorbell ring saying so), so
they recount their share at once (``params``: :class:`ReadyNotifyParams`). Result: None."""


def begin() -> Step:
    """Open the procedure's write transaction."""
    return (BEGIN, "", None)


def lock(name: str, params: Any) -> Step:
    """Take a row lock (PostgreSQL only)."""
    return (LOCK, name, params)


def count(name: str, params: Any) -> Step:
    """Execute; the number of rows changed."""
    return (COUNT, name, params)


def rows(name: str, params: Any) -> Step:
    """Execute; every row."""
    return (ROWS, name, params)


def row(name: str, params: Any) -> Step:
    """Execute; the first row or None."""
    return (ROW, name, params)


def runs(name: str, params: Any) -> Step:
    """Execute; the rows as run records."""
    return (RUNS, name, params)


def many(name: str, params: list[Any]) -> Step:
    """Execute once per params dict."""
    return (MANY, name, params)


def insert_runs(values: list[dict[str, Any]]) -> Step:
    """Insert runs, skipping conflicts; how many were inserted."""
    return (INSERT_RUNS, "run_insert", values)


def insert_bulk(template: dict[str, Any], ids: Sequence[str], payloads: Sequence[Any]) -> Step:
    """Insert runs made from one template, skipping conflicts; how many were inserted."""
    return (INSERT_BULK, "run_insert_bulk", (template, ids, payloads))


def notify(environment: str, now: int) -> Step:
    """Wake the environment's workers after commit."""
    return (NOTIFY, "ready_notify", ReadyNotifyParams(environment, now))


def wants_changed(environment: str, now: int) -> Step:
    """Tell the environment's workers, after commit, that a worker's want of runs changed."""
    return (WANTS, "wants_notify", ReadyNotifyParams(environment, now))


def snapshot() -> Step:
    """Open the procedure's read-only, one-snapshot transaction."""
    return (SNAPSHOT, "", None)


def feed() -> Step:
    """Wake the change feed's readers after commit."""
    return (FEED, "", None)
