"""Tests for shipyard.ids: sortable ULID-style ids."""

from __future__ import annotations

import os
import re
import threading
import time
from unittest import mock

import pytest

from shipyard import ids
from shipyard.errors import ValidationError
from shipyard.ids import id_timestamp_ms, new_id, new_ids

_ID = re.compile(r"^([a-z]+)_[0-9a-hjkmnp-tv-z]{26}$")


@pytest.mark.parametrize("prefix", ["run", "batch", "waitpoint", "sched", "queue", "worker"])
def test_shape(prefix: str) -> None:
    value = new_id(prefix)
    match = _ID.match(value)
    assert match is not None
    assert match.group(1) == prefix
    assert len(value) == len(prefix) + 27


def test_timestamp_round_trip() -> None:
    before = time.time_ns() // 1_000_000
    value = new_id("run")
    after = time.time_ns() // 1_000_000
    assert before <= id_timestamp_ms(value) <= after


def test_known_encoding() -> None:
    fixed_ms = 1_700_000_000_000
    with (
        mock.patch.object(ids, "_last_ms", -1),
        mock.patch("shipyard.ids.time.time_ns", return_value=fixed_ms * 1_000_000),
        mock.patch("shipyard.ids._random_part", return_value=0),
    ):
        first = new_id("run")
        second = new_id("run")
    assert first == "run_01hf7yat00" + "0" * 16
    assert second == "run_01hf7yat00" + "0" * 15 + "1"
    assert id_timestamp_ms(first) == fixed_ms


def test_monotonic_within_same_ms() -> None:
    generated = [new_id("run") for _ in range(5_000)]
    assert generated == sorted(generated)
    assert len(set(generated)) == len(generated)


def test_monotonic_when_clock_goes_backwards() -> None:
    first = new_id("run")
    with mock.patch("shipyard.ids.time.time_ns", return_value=0):
        second = new_id("run")
    assert second > first
    assert id_timestamp_ms(second) == id_timestamp_ms(first)


def test_random_overflow_moves_to_next_ms() -> None:
    fixed_ms = 1_700_000_000_000
    with (
        mock.patch.object(ids, "_last_ms", fixed_ms),
        mock.patch.object(ids, "_last_random", (1 << 80) - 1),
        mock.patch("shipyard.ids.time.time_ns", return_value=fixed_ms * 1_000_000),
    ):
        value = new_id("run")
    assert id_timestamp_ms(value) == fixed_ms + 1


def test_thread_safe_and_unique() -> None:
    results: list[list[str]] = [[] for _ in range(8)]

    def work(bucket: list[str]) -> None:
        for _ in range(1_000):
            bucket.append(new_id("sched"))

    threads = [threading.Thread(target=work, args=(bucket,)) for bucket in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [value for bucket in results for value in bucket]
    assert len(set(everything)) == 8_000
    for bucket in results:
        assert bucket == sorted(bucket)


@pytest.mark.parametrize("prefix", ["", "Run", "run_x", "1run", "run-x"])
def test_bad_prefix(prefix: str) -> None:
    with pytest.raises(ValidationError, match="Invalid id prefix"):
        new_id(prefix)
    with pytest.raises(ValidationError, match="Invalid id prefix"):
        new_ids(prefix, 2)


def test_new_ids_are_what_new_id_would_make() -> None:
    fixed_ms = 1_700_000_000_000
    with (
        mock.patch.object(ids, "_last_ms", -1),
        mock.patch("shipyard.ids.time.time_ns", return_value=fixed_ms * 1_000_000),
        mock.patch("shipyard.ids._random_part", return_value=(1 << 40) + 30),
    ):
        many = new_ids("run", 40)
        after = new_id("run")
    with (
        mock.patch.object(ids, "_last_ms", -1),
        mock.patch("shipyard.ids.time.time_ns", return_value=fixed_ms * 1_000_000),
        mock.patch("shipyard.ids._random_part", return_value=(1 << 40) + 30),
    ):
        one_by_one = [new_id("run") for _ in range(41)]
    assert [*many, after] == one_by_one
    assert all(_ID.match(value) for value in many)


@pytest.mark.parametrize("start", [(1 << 40) + 1000, (1 << 50) - 5, (1 << 79) + (1 << 30) - 700])
def test_new_ids_across_runs_of_1024_are_what_new_id_would_make(start: int) -> None:
    """new_ids encodes the last two digits per id and the rest once per 1,024 random parts:
    spans that carry into the shared digits must still match id-by-id encoding."""
    fixed_ms = 1_700_000_000_000
    patches = (
        mock.patch("shipyard.ids.time.time_ns", return_value=fixed_ms * 1_000_000),
        mock.patch("shipyard.ids._random_part", return_value=start),
    )
    with mock.patch.object(ids, "_last_ms", -1), patches[0], patches[1]:
        many = new_ids("run", 2_100)
    with mock.patch.object(ids, "_last_ms", -1), patches[0], patches[1]:
        one_by_one = [new_id("run") for _ in range(2_100)]
    assert many == one_by_one


def test_new_ids_interleave_with_new_id_in_order() -> None:
    generated = [new_id("run"), *new_ids("run", 1_000), new_id("run"), *new_ids("run", 3)]
    assert generated == sorted(generated)
    assert len(set(generated)) == len(generated)
    assert new_ids("run", 0) == []


def test_new_ids_overflowing_the_random_part_move_to_the_next_ms() -> None:
    fixed_ms = 1_700_000_000_000
    with (
        mock.patch.object(ids, "_last_ms", fixed_ms),
        mock.patch.object(ids, "_last_random", (1 << 80) - 3),
        mock.patch("shipyard.ids.time.time_ns", return_value=fixed_ms * 1_000_000),
    ):
        values = new_ids("run", 5)
    assert values == sorted(values)
    assert {id_timestamp_ms(v) for v in values} == {fixed_ms + 1}


@pytest.mark.parametrize("value", ["run", "run_abc", "run_" + "u" * 26, "_" + "0" * 25])
def test_id_timestamp_rejects_non_ids(value: str) -> None:
    with pytest.raises(ValidationError, match="Not a Shipyard id"):
        id_timestamp_ms(value)


def test_a_forked_child_draws_fresh_random_parts() -> None:
    """Random parts are read from the OS in blocks; a forked child must not reuse the parent's
    block, nor continue its sequence (both would repeat the parent's next ids)."""
    new_id("run")  # the parent holds a block and a last id
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it starts from, then leave at once
        os.close(read)
        os.write(write, f"{len(ids._pool)} {ids._last_ms}".encode())
        os._exit(0)
    os.close(write)
    try:
        reported = os.read(read, 100).decode()
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert reported == "0 -1"
    assert len(ids._pool) > 0  # the parent keeps its own
