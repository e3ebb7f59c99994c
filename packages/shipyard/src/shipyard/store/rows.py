"""Rows in and out of the database, shared by every backend.

In: the bound values of a run insert, an event, a waitpoint. Out: the one row → ``RunRecord``
builder, chosen once per column list (a few per process, so the cache stays small).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

from shipyard.records import NewEvent, RunRecord
from shipyard.store.params import RateTakeParams, RunInsertParams, WaitpointCreateParams

RunBuilder = Callable[[Sequence[Any]], RunRecord]

_RUN_FIELDS = tuple(RunRecord.__dataclass_fields__)
_RUN_DEFAULTS = frozenset(
    name
    for name, f in RunRecord.__dataclass_fields__.items()
    if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
)
# Keyed by the column names themselves: a key derived from a cursor's description object
# (its id) differs for every cursor and kept every description alive (issue 10, defect 16).
_BUILDERS: dict[tuple[str, ...], RunBuilder] = {}


def run_builder(names: tuple[str, ...]) -> RunBuilder:
    """A row → ``RunRecord`` function for a query's column ``names``.

    Positional (``RunRecord(*row)``) when the columns are the record's fields in order, as
    ``SELECT *`` gives: ``RunRecord.from_row``'s two dicts per row cost ~20 µs of every
    claimed run. Extra trailing columns are ignored; fields the columns lack (a newer record
    than the schema) keep their defaults.
    """
    builder = _BUILDERS.get(names)
    if builder is None:
        builder = _make_builder(names)
        _BUILDERS[names] = builder
    return builder


def _make_builder(names: tuple[str, ...]) -> RunBuilder:
    present = [f for f in _RUN_FIELDS if f in names]
    missing = _RUN_FIELDS[len(present) :]
    if (
        len(set(names)) == len(names)
        and tuple(present) == _RUN_FIELDS[: len(present)]
        and all(f in _RUN_DEFAULTS for f in missing)
    ):
        index = [names.index(f) for f in present]
        width = len(present)
        if index == list(range(width)):
            if width == len(names):
                return _positional
            return lambda row: RunRecord(*row[:width])
        return lambda row: RunRecord(*[row[i] for i in index])
    name_list = list(names)
    return lambda row: RunRecord.from_row(name_list, tuple(row))


def _positional(row: Sequence[Any]) -> RunRecord:
    return RunRecord(*row)


def insert_row(p: RunInsertParams) -> dict[str, Any]:
    """The ``run_insert`` values of a run (``sort_key`` = queue time − priority)."""
    return {
        "id": p.id,
        "environment": p.environment,
        "task_id": p.task_id,
        "status": p.status,
        "payload": p.payload,
        "metadata": p.metadata,
        "tags": json.dumps(list(p.tags)) if p.tags else "[]",
        "queue": p.queue,
        "concurrency_key": p.concurrency_key,
        "priority_ms": p.priority_ms,
        "queued_at": p.queued_at,
        "sort_key": p.queued_at - p.priority_ms,
        "available_at": p.available_at if p.available_at is not None else p.queued_at,
        "delay_until": p.delay_until,
        "ttl_ms": p.ttl_ms,
        "max_attempts": p.max_attempts,
        "idempotency_key": p.idempotency_key,
        "idempotency_key_expires_at": p.idempotency_key_expires_at,
        "parent_run_id": p.parent_run_id,
        "root_run_id": p.root_run_id,
        "depth": p.depth,
        "batch_id": p.batch_id,
        "batch_index": p.batch_index,
        "machine": p.machine,
        "max_duration_s": p.max_duration_s,
        "trigger_function": p.trigger_function,
        "is_test": int(p.is_test),
        "created_at": p.created_at,
        "debounce_key": p.debounce_key,
        "ttl_expires_at": p.ttl_expires_at,
        "version": p.version,
    }


INSERT_COLUMNS = tuple(insert_row(RunInsertParams("", "", "", "", None, "", 0, 0)))
"""The columns of ``insert_row``, in order (positional binding and bulk inserts)."""


BULK_CHUNK_BYTES = 64 * 1024 * 1024
"""Payload bytes per statement of a bulk insert: both databases refuse a text over 1 GB, and
a batch of 1,000 payloads of 3 MiB is 3 GB."""


def bulk_chunks(
    template: dict[str, Any],
    ids: Sequence[str],
    payloads: Sequence[str | None],
    *,
    pairs: bool,
    max_bytes: int | None = None,
) -> list[dict[str, Any]]:
    """The values of each ``run_insert_bulk`` statement of a bulk insert: the template's, the
    position of the chunk's first run (``offset``), and its runs' ids and payloads as JSON (one
    C ``json.dumps``): ``rows``, an array of ``[id, payload]`` pairs, with ``pairs`` (SQLite:
    one json_each), else two arrays ``ids`` and ``payloads`` (PostgreSQL: ROWS FROM zips
    them). At most ``max_bytes`` (default ``BULK_CHUNK_BYTES``) of payload per chunk, and at
    least one run."""
    limit = BULK_CHUNK_BYTES if max_bytes is None else max_bytes
    chunks = []
    start = size = 0
    for end, payload in enumerate(payloads):
        length = len(payload) if payload is not None else 0
        if end > start and size + length > limit:
            chunks.append((start, end))
            start, size = end, 0
        size += length
    chunks.append((start, len(payloads)))
    if pairs:
        return [
            {
                **template,
                "offset": a,
                "rows": json.dumps(list(zip(ids[a:b], payloads[a:b], strict=True))),
            }
            for a, b in chunks
        ]
    return [
        {
            **template,
            "offset": a,
            "ids": json.dumps(list(ids[a:b])),
            "payloads": json.dumps(list(payloads[a:b])),
        }
        for a, b in chunks
    ]


def inserted_record(row: dict[str, Any]) -> RunRecord:
    """The record of a freshly inserted run: its insert values plus the column defaults, so
    an insert need not read its row back."""
    return RunRecord(
        id=row["id"],
        environment=row["environment"],
        task_id=row["task_id"],
        status=row["status"],
        payload=row["payload"],
        output=None,
        error=None,
        metadata=row["metadata"],
        tags=row["tags"],
        queue=row["queue"],
        concurrency_key=row["concurrency_key"],
        priority_ms=row["priority_ms"],
        queued_at=row["queued_at"],
        sort_key=row["sort_key"],
        available_at=row["available_at"],
        delay_until=row["delay_until"],
        ttl_ms=row["ttl_ms"],
        attempt_number=0,
        max_attempts=row["max_attempts"],
        lease_owner=None,
        lease_expires_at=None,
        idempotency_key=row["idempotency_key"],
        idempotency_key_expires_at=row["idempotency_key_expires_at"],
        debounce_key=row["debounce_key"],
        parent_run_id=row["parent_run_id"],
        root_run_id=row["root_run_id"],
        depth=row["depth"],
        batch_id=row["batch_id"],
        batch_index=row["batch_index"],
        schedule_id=None,
        completion_waitpoint_id=None,
        machine=row["machine"],
        max_duration_s=row["max_duration_s"],
        version=row["version"],
        trigger_function=row["trigger_function"],
        is_test=row["is_test"],
        created_at=row["created_at"],
        updated_at=row["created_at"],
        started_at=None,
        finished_at=None,
        expired_at=None,
        ttl_expires_at=row["ttl_expires_at"],
    )


def event_row(environment: str, e: NewEvent) -> dict[str, Any]:
    """The ``run_event_insert`` values of an event (written only for a run of
    ``environment``)."""
    return {
        "environment": environment,
        "run_id": e.run_id,
        "ts": e.ts,
        "kind": e.kind,
        "level": e.level,
        "message": e.message,
        "attributes": e.attributes,
    }


def waitpoint_values(params: WaitpointCreateParams) -> dict[str, Any]:
    """The bound values of a waitpoint insert."""
    return {
        "id": params.id,
        "environment": params.environment,
        "kind": params.kind,
        "now": params.now,
        "completes_at": params.completes_at,
        "timeout_at": params.timeout_at,
        "idempotency_key": params.idempotency_key,
        "idempotency_key_expires_at": params.idempotency_key_expires_at,
        "tags": json.dumps(list(params.tags)),
        "target_id": params.target_id,
    }


def json_list(values: Sequence[str]) -> str | None:
    """A list parameter as both backends bind it (a JSON array), or None when empty."""
    return json.dumps(list(values)) if values else None


def take_tokens(
    tokens: float | None, refilled_at: int | None, params: RateTakeParams
) -> tuple[float, int]:
    """Refill a token bucket to ``params.now`` and take ``params.count`` tokens.

    Returns the tokens left and 0, or the unchanged tokens and how many milliseconds until
    enough have refilled. A bucket seen for the first time starts full.
    """
    rate = params.refill_tokens / params.refill_interval_ms  # tokens per millisecond
    if tokens is None or refilled_at is None:
        current = float(params.bucket_size)
    else:
        elapsed = max(0, params.now - refilled_at)
        current = min(float(params.bucket_size), tokens + elapsed * rate)
    if current >= params.count:
        return current - params.count, 0
    missing = params.count - current
    return current, max(1, int(missing / rate + 0.999))
