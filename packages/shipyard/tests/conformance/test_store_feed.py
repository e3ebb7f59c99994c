"""Store conformance: the change feed read by position, output streams and input streams.

The feed is what realtime subscriptions follow: every event a reader has not read yet, once,
whatever order transactions commit in (on PostgreSQL too, where ids are not in commit order).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3

import psycopg
import pytest
from test_store_runs import ENV, FINAL, claim, finish_many, register, run_params

from shipyard.errors import (
    PayloadTooLargeError,
    RunFinishedError,
    RunNotFoundError,
    ValidationError,
)
from shipyard.ids import new_id
from shipyard.records import NewEvent
from shipyard.store.feed import (
    FeedEventRecord,
    FeedReadParams,
    FeedSnapshotParams,
    InputSendParams,
    InputTakeParams,
    InputWaitParams,
    StreamAppendParams,
    StreamHeadsParams,
    StreamReadParams,
)
from shipyard.store.postgres import PostgresStore
from shipyard.store.protocol import (
    RunEventsAppendParams,
    RunFinishParams,
    RunMetadataParams,
    RunTagsAddParams,
    Store,
    WaitpointGetParams,
)

MiB = 1024 * 1024


async def read_all(
    store: Store, after: str, **filters: object
) -> tuple[list[FeedEventRecord], str]:
    """Every event after ``after`` (page by page) and the position after them."""
    found: list[FeedEventRecord] = []
    while True:
        page = await store.feed_read(FeedReadParams(ENV, after, **filters))  # type: ignore[arg-type]
        found.extend(page.events)
        after = page.position
        if not page.more:
            return found, after


def described(events: list[FeedEventRecord]) -> list[tuple[str, str, str | None]]:
    return [(e.kind, e.message, e.status) for e in events]


async def test_the_feed_carries_creation_status_metadata_and_tags_with_the_status_then(
    store: Store,
) -> None:
    await register(store)
    start = await store.feed_head(ENV)
    run = (await store.run_insert(run_params(tags=("a",)))).run
    await store.run_claim(claim(store, now=2_000))
    event = NewEvent(run.id, 2_100, "metadata", "1 operation", attributes="[]")
    await store.run_metadata_update(
        RunMetadataParams(ENV, run.id, lambda t: '{"p":1}', 2_100, event)
    )
    await store.run_events_append(RunEventsAppendParams(ENV, [NewEvent(run.id, 2_200, "log", "x")]))
    await store.run_tags_add(RunTagsAddParams(ENV, run.id, ["b"], 10, 2_300))
    done = RunFinishParams(run.id, 1, "w1", "COMPLETED", "COMPLETED", 3_000, output="1")
    await finish_many(store, done)
    events, end = await read_all(store, start)
    assert described(events) == [
        ("created", "QUEUED", "QUEUED"),
        ("status", "EXECUTING", "EXECUTING"),
        ("metadata", "1 operation", "EXECUTING"),  # logs are not in the feed
        ("tag", "b", "EXECUTING"),
        ("status", "COMPLETED", "COMPLETED"),
    ]
    assert [e.ts for e in events] == [1_000, 2_000, 2_100, 2_300, 3_000]
    page = await store.feed_read(FeedReadParams(ENV, start))
    assert page.runs[run.id].status == "COMPLETED" and page.runs[run.id].metadata == '{"p":1}'
    # Nothing new: the position holds still, and every event is covered by it.
    assert (await read_all(store, end))[0] == []
    assert all(store.feed_covers(end, e) for e in events)
    assert not any(store.feed_covers(start, e) for e in events)


async def test_reading_one_event_at_a_time_resumes_exactly_from_each_position(
    store: Store,
) -> None:
    start = await store.feed_head(ENV)
    made = [(await store.run_insert(run_params())).run for _ in range(4)]
    everything, _ = await read_all(store, start)
    one_by_one: list[FeedEventRecord] = []
    after = start
    while True:
        page = await store.feed_read(FeedReadParams(ENV, after, limit=1))
        one_by_one.extend(page.events)
        after = page.position
        if not page.events and not page.more:
            break
    assert [e.id for e in one_by_one] == [e.id for e in everything]
    assert [e.run_id for e in everything] == [r.id for r in made]
    for i, event in enumerate(everything):
        assert store.feed_covers(event.position, event)
        assert [e.id for e in everything if not store.feed_covers(event.position, e)] == [
            e.id for e in everything[i + 1 :]
        ]


async def test_filters_by_run_tag_and_creation_time(store: Store) -> None:
    start = await store.feed_head(ENV)
    a = (await store.run_insert(run_params(tags=("red",), now=1_000))).run
    b = (await store.run_insert(run_params(tags=("blue",), now=5_000))).run
    c = (await store.run_insert(run_params(tags=("red", "green"), now=9_000))).run
    assert [e.run_id for e in (await read_all(store, start, run_ids=[b.id]))[0]] == [b.id]
    assert [e.run_id for e in (await read_all(store, start, run_ids=[]))[0]] == []
    red = (await read_all(store, start, tags=["red", "nope"]))[0]
    assert [e.run_id for e in red] == [a.id, c.id]
    recent = (await read_all(store, start, tags=["red"], created_from=2_000))[0]
    assert [e.run_id for e in recent] == [c.id]
    # Another environment's runs never show.
    other = await store.feed_read(FeedReadParams("elsewhere", start))
    assert other.events == []


async def test_a_snapshot_is_current_at_its_position(store: Store) -> None:
    await register(store)
    a = (await store.run_insert(run_params(tags=("t",)))).run
    b = (await store.run_insert(run_params(tags=("t",)))).run
    snap = await store.feed_snapshot(FeedSnapshotParams(ENV, tags=["t"]))
    assert [r.id for r in snap.runs] == sorted([a.id, b.id])
    await store.run_claim(claim(store, now=2_000, limit=1))
    later, _ = await read_all(store, snap.position)
    assert described(later) == [("status", "EXECUTING", "EXECUTING")]
    newest = await store.feed_snapshot(FeedSnapshotParams(ENV, tags=["t"], limit=1))
    assert [r.id for r in newest.runs] == [max(a.id, b.id)]
    rest = await store.feed_snapshot(
        FeedSnapshotParams(ENV, tags=["t"], after_run_id=min(a.id, b.id))
    )
    assert [r.id for r in rest.runs] == [max(a.id, b.id)]
    by_id = await store.feed_snapshot(FeedSnapshotParams(ENV, run_ids=[b.id]))
    assert [r.id for r in by_id.runs] == [b.id]


async def test_a_position_from_nowhere_is_a_validation_error(store: Store) -> None:
    for bad in ["", "x", "1:2", "5:1:", "1|2", "1:2:|1:2:|x"]:
        with pytest.raises(ValidationError):
            await store.feed_read(FeedReadParams(ENV, bad))
    other = "1:2:" if not isinstance(store, PostgresStore) else "12"
    with pytest.raises(ValidationError, match="another database"):
        await store.feed_read(FeedReadParams(ENV, other))


async def test_postgres_an_event_committed_after_a_later_one_is_not_skipped(store: Store) -> None:
    """A transaction that took a lower id but commits last is read on the next read, once."""
    if not isinstance(store, PostgresStore):
        pytest.skip("SQLite commits one writer at a time: ids are in commit order")
    run = (await store.run_insert(run_params())).run
    start = await store.feed_head(ENV)
    insert = (
        "INSERT INTO run_events (run_id, ts, kind, message) VALUES (%s, 1, 'metadata', %s) "
        "RETURNING id"
    )
    slow = await psycopg.AsyncConnection.connect(store.url)
    await slow.execute(f'SET search_path TO "{store.schema}"')
    await slow.commit()
    try:
        cursor = await slow.execute(insert, (run.id, "slow"))  # id n, not committed
        slow_id = (await cursor.fetchone())[0]  # type: ignore[index]
        async with await psycopg.AsyncConnection.connect(store.url, autocommit=True) as fast:
            await fast.execute(f'SET search_path TO "{store.schema}"')
            cursor = await fast.execute(insert, (run.id, "fast"))  # id n+1, committed
            assert (await cursor.fetchone())[0] > slow_id  # type: ignore[index]
        first, position = await read_all(store, start)
        assert [e.message for e in first] == ["fast"]
        await slow.commit()
    finally:
        await slow.close()
    second, _ = await read_all(store, position)
    assert [(e.message, e.id) for e in second] == [("slow", slow_id)]
    # Resuming from the first read's event position gets the slow one too, and only it.
    assert [e.message for e in (await read_all(store, first[0].position))[0]] == ["slow"]


async def test_sqlite_positions_are_event_ids(store: Store) -> None:
    if isinstance(store, PostgresStore):
        pytest.skip("PostgreSQL positions are snapshots")
    run = (await store.run_insert(run_params())).run
    events, position = await read_all(store, "0")
    assert [e.run_id for e in events] == [run.id] and position == str(events[-1].id)


# -- output streams -----------------------------------------------------------------------------


def append(
    run_id: str, chunks: list[str], stream: str = "s", limit: int = MiB
) -> StreamAppendParams:
    return StreamAppendParams(ENV, run_id, stream, chunks, 1_000, limit)


async def test_stream_chunks_get_dense_indexes_and_read_from_any_index(store: Store) -> None:
    run = (await store.run_insert(run_params())).run
    assert await store.stream_append(append(run.id, ['"a"', '"b"'])) == 2
    assert await store.stream_append(append(run.id, ['"c"'])) == 3
    assert await store.stream_append(append(run.id, ['"x"'], stream="other")) == 1
    chunks = await store.stream_read(StreamReadParams(ENV, run.id, "s", 0))
    assert [(c.index, c.data) for c in chunks] == [(0, '"a"'), (1, '"b"'), (2, '"c"')]
    assert [c.data for c in await store.stream_read(StreamReadParams(ENV, run.id, "s", 1, 1))] == [
        '"b"'
    ]
    heads = await store.stream_heads(StreamHeadsParams(ENV, [run.id, "run_missing"]))
    assert heads[run.id].next_index == {"s": 3, "other": 1} and heads[run.id].status == "QUEUED"
    assert "run_missing" not in heads
    assert await store.stream_read(StreamReadParams("elsewhere", run.id, "s", 0)) == []


async def test_concurrent_appenders_never_share_an_index(store: Store) -> None:
    run = (await store.run_insert(run_params())).run

    async def writer(name: str) -> None:
        for i in range(25):
            await store.stream_append(append(run.id, [json.dumps(f"{name}{i}")] * 2))

    await asyncio.gather(writer("a"), writer("b"), writer("c"))
    chunks = await store.stream_read(StreamReadParams(ENV, run.id, "s", 0, 1000))
    assert [c.index for c in chunks] == list(range(150))
    values = [json.loads(c.data) for c in chunks]
    for name in "abc":
        mine = [v for v in values if v.startswith(name)]
        assert mine == [f"{name}{i}" for i in range(25) for _ in range(2)]


async def test_a_stream_refuses_to_grow_past_its_limit_and_keeps_what_it_had(store: Store) -> None:
    run = (await store.run_insert(run_params())).run
    await store.stream_append(append(run.id, ['"12345678"'], limit=15))
    with pytest.raises(PayloadTooLargeError, match="limit is 15 bytes"):
        await store.stream_append(append(run.id, ['"1234"', '"5"'], limit=15))
    assert [c.index for c in await store.stream_read(StreamReadParams(ENV, run.id, "s", 0))] == [0]
    assert await store.stream_append(append(run.id, ['"1"'], limit=15)) == 2
    with pytest.raises(RunNotFoundError):
        await store.stream_append(append("run_nope", ['"x"']))


async def test_deleting_a_run_deletes_its_streams_and_inputs(store: Store) -> None:
    run = (await store.run_insert(run_params())).run
    await store.stream_append(append(run.id, ['"a"']))
    await store.input_send(InputSendParams(ENV, run.id, "in", '"x"', 1_000, FINAL))
    sql = [
        "DELETE FROM runs WHERE id = ?",
        "SELECT (SELECT COUNT(*) FROM stream_chunks) + (SELECT COUNT(*) FROM streams)"
        " + (SELECT COUNT(*) FROM input_stream_data)",
    ]
    if isinstance(store, PostgresStore):
        async with await psycopg.AsyncConnection.connect(store.url, autocommit=True) as conn:
            await conn.execute(f'SET search_path TO "{store.schema}"')
            await conn.execute(sql[0].replace("?", "%s"), (run.id,))
            left = await (await conn.execute(sql[1])).fetchone()
    else:
        conn = sqlite3.connect(store.path)  # type: ignore[attr-defined]
        with conn:
            conn.execute(sql[0], (run.id,))
        left = conn.execute(sql[1]).fetchone()
        conn.close()
    assert left == (0,)


# -- input streams ------------------------------------------------------------------------------


def send(run_id: str, data: object, stream: str = "in") -> InputSendParams:
    return InputSendParams(ENV, run_id, stream, json.dumps(data), 2_000, FINAL)


def waiting(
    run_id: str, key: str, stream: str = "in", timeout_at: int | None = None
) -> InputWaitParams:
    return InputWaitParams(ENV, run_id, stream, new_id("waitpoint"), key, 1_500, timeout_at)


async def test_data_sent_before_a_listener_is_kept_in_order_and_taken_once(store: Store) -> None:
    run = (await store.run_insert(run_params())).run
    start = await store.feed_head(ENV)
    for n in (1, 2):
        result = await store.input_send(send(run.id, n))
        assert not result.delivered_to_wait
    take = InputTakeParams(ENV, run.id, "in", 3_000)
    assert [await store.input_take(take) for _ in range(3)] == ["1", "2", None]
    assert await store.input_take(InputTakeParams(ENV, run.id, "other", 3_000)) is None
    events, _ = await read_all(store, start)
    assert described(events) == [("input", "in", "QUEUED")] * 2


async def test_a_wait_takes_kept_data_at_once_or_is_completed_by_the_next_send(
    store: Store,
) -> None:
    run = (await store.run_insert(run_params())).run
    await store.input_send(send(run.id, "early"))
    first = await store.input_wait(waiting(run.id, "k1"))
    assert (first.status, first.output) == ("COMPLETED", '"early"')
    second = await store.input_wait(waiting(run.id, "k2", timeout_at=99_000))
    assert (second.status, second.timeout_at) == ("PENDING", 99_000)
    again = await store.input_wait(waiting(run.id, "k2"))  # the same durable call, replayed
    assert again.id == second.id
    assert (await store.input_send(send(run.id, {"ok": True}))).delivered_to_wait
    done = await store.waitpoint_get(WaitpointGetParams(ENV, second.id))
    assert done is not None and (done.status, done.output) == ("COMPLETED", '{"ok": true}')
    # Sent after the wait was completed: kept for the next listener.
    assert not (await store.input_send(send(run.id, 3))).delivered_to_wait
    assert await store.input_take(InputTakeParams(ENV, run.id, "in", 3_000)) == "3"


async def test_sending_to_a_finished_or_unknown_run_fails_clearly(store: Store) -> None:
    await register(store)
    run = (await store.run_insert(run_params())).run
    await store.run_claim(claim(store))
    await finish_many(store, RunFinishParams(run.id, 1, "w1", "COMPLETED", "COMPLETED", 3_000))
    with pytest.raises(RunFinishedError, match="has finished \\(COMPLETED\\)") as raised:
        await store.input_send(send(run.id, 1))
    assert raised.value.run_id == run.id
    with pytest.raises(RunNotFoundError):
        await store.input_send(send("run_nope", 1))
