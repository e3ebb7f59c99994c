"""A one-run trigger on a loop with nothing else alive runs on the store's blocking connection;
with anything else alive on the loop, on the pool as before (store/postgres/inline.py)."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
import pytest

from shipyard.ids import new_id
from shipyard.statuses import IDEMPOTENCY_RELEASE_STATUSES
from shipyard.store.postgres import PostgresStore
from shipyard.store.postgres.inline import loop_is_idle, positional, text_values
from shipyard.store.protocol import (
    RunEventsListParams,
    RunGetParams,
    RunInsertParams,
)

ENV = "test"


@pytest.fixture
def store(postgres_store: PostgresStore) -> PostgresStore:
    return postgres_store


def run(**kw: object) -> RunInsertParams:
    params = RunInsertParams(
        id=new_id("run"),
        environment=ENV,
        task_id="t",
        status="QUEUED",
        payload='{"n":1}',
        queue="task/t",
        queued_at=1_000,
        created_at=1_000,
        idempotency_release_statuses=frozenset(str(s) for s in IDEMPOTENCY_RELEASE_STATUSES),
    )
    for key, value in kw.items():
        setattr(params, key, value)
    return params


async def backends(store: PostgresStore) -> int:
    """Client connections to the store's database (pool, inline, this query's own)."""
    async with await psycopg.AsyncConnection.connect(store.url) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        )
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0]) - 1


async def test_loop_is_idle_with_no_other_task_or_one_waiting_for_an_event() -> None:
    assert loop_is_idle("pool-x-")
    event = asyncio.Event()
    waiting = asyncio.create_task(event.wait())
    await asyncio.sleep(0)
    assert loop_is_idle("pool-x-")
    sleeping = asyncio.create_task(asyncio.sleep(10), name="pool-x-worker-0")
    assert loop_is_idle("pool-x-")  # the pool's own
    other = asyncio.create_task(asyncio.sleep(10))
    assert not loop_is_idle("pool-x-")
    event.set()
    for task in (sleeping, other):
        task.cancel()
    for task in (waiting, sleeping, other):
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_lone_trigger_uses_the_blocking_connection_and_a_busy_loop_the_pool(
    store: PostgresStore,
) -> None:
    busy = asyncio.create_task(asyncio.sleep(60))
    try:
        first = await store.run_insert(run())
        assert await backends(store) == 1  # the pool's connection only
    finally:
        busy.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await busy
    second = await store.run_insert(run(tags=("a",), metadata='{"k":1}'))
    assert await backends(store) == 2  # and the inline one
    for result in (first, second):
        assert not result.cached
        stored = await store.run_get(RunGetParams(ENV, result.run.id))
        assert stored is not None and stored.status == "QUEUED"
        events = await store.run_events_list(RunEventsListParams(ENV, result.run.id))
        assert [e.kind for e in events] == ["created"]
    stored = await store.run_get(RunGetParams(ENV, second.run.id))
    assert stored is not None and (stored.tags, stored.metadata) == ('["a"]', '{"k":1}')


async def test_a_held_key_on_the_inline_path_returns_the_live_run(store: PostgresStore) -> None:
    keyed = {"idempotency_key": "k", "idempotency_key_expires_at": 10**12}
    first = await store.run_insert(run(**keyed))
    again = await store.run_insert(run(**keyed))
    assert (again.cached, again.run.id) == (True, first.run.id)


async def test_a_lost_inline_connection_fails_one_trigger_and_the_next_reconnects(
    store: PostgresStore,
) -> None:
    await store.run_insert(run())
    async with await psycopg.AsyncConnection.connect(store.url, autocommit=True) as conn:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND query LIKE 'WITH ins AS%'"
        )
    with pytest.raises(psycopg.OperationalError):
        await store.run_insert(run())
    result = await store.run_insert(run())
    assert await store.run_get(RunGetParams(ENV, result.run.id)) is not None


def test_a_psycopg_query_becomes_libpq_numbered_parameters() -> None:
    sql, order = positional("SELECT %(a)s, %(b)s, %(a)s WHERE x LIKE 'p%%'")
    assert sql == b"SELECT $1, $2, $1 WHERE x LIKE 'p%'"
    assert order == ("a", "b")


def test_values_become_the_text_the_server_parses() -> None:
    values = {"s": "é", "n": None, "i": -7, "l": ['a"b', "c\\d", "e,f"]}
    assert text_values(values, ["s", "n", "i", "l"]) == [
        "é".encode(),
        None,
        b"-7",
        b'{"a\\"b","c\\\\d","e,f"}',
    ]
    # What plain text cannot carry goes through psycopg (which sends it or refuses it).
    assert text_values({"s": "a\x00b"}, ["s"]) is None
    assert text_values({"l": ["a\x00"]}, ["l"]) is None
    for other in ({"k": 1}, 0.5, True):  # psycopg types these; text would only be parsed
        assert text_values({"v": other}, ["v"]) is None


async def inline_prepared(store: PostgresStore) -> list[str]:
    """The statements prepared on the store's inline connection (its own session's view)."""
    conn = store._inline._conn
    assert conn is not None
    rows = conn.execute("SELECT name FROM pg_prepared_statements ORDER BY name").fetchall()
    return [str(r[0]) for r in rows]


async def test_the_inline_insert_runs_a_prepared_statement_with_tags_as_written(
    store: PostgresStore,
) -> None:
    tags = ('quote"d', "back\\slash", "com,ma", "{brace}")
    plain = await store.run_insert(run())
    tagged = await store.run_insert(run(tags=tags))
    assert await inline_prepared(store) == ["shipyard_inline_0", "shipyard_inline_1"]
    async with await psycopg.AsyncConnection.connect(store.url) as conn:
        cursor = await conn.execute(
            "SELECT run_id, tag FROM shipyard.run_tags WHERE run_id = ANY(%s)",
            ([plain.run.id, tagged.run.id],),
        )
        assert set(await cursor.fetchall()) == {(tagged.run.id, t) for t in tags}
    stored = await store.run_get(RunGetParams(ENV, tagged.run.id))
    assert stored is not None and stored.queued_at == 1_000 and stored.is_test == 0


async def test_a_server_error_on_the_prepared_path_is_psycopgs_and_the_connection_stays(
    store: PostgresStore,
) -> None:
    await store.run_insert(run())
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        await store.run_insert(run(queued_at=2**70))
    # A text psycopg refuses is refused as before, not cut at its NUL.
    with pytest.raises(psycopg.DataError):
        await store.run_insert(run(concurrency_key="a\x00b"))
    result = await store.run_insert(run())
    assert await store.run_get(RunGetParams(ENV, result.run.id)) is not None
    assert await backends(store) == 2  # the pool's and the same inline connection
