"""The PostgreSQL store's set-based waitpoint calls: due waitpoints resolved, reads, creates
and blocks (suspends) for a batch of runs, each in one pipeline — one round trip and one commit
where the shared procedures take several per run. Mixed into :class:`PostgresStore`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool

from shipyard.errors import ShipyardError
from shipyard.records import RunRecord, WaitpointRecord
from shipyard.store import procedures
from shipyard.store.params import (
    RecordedCall,
    RunClaimParams,
    WaitpointBlockManyParams,
    WaitpointBlockParams,
    WaitpointBlockResult,
    WaitpointCompleteParams,
    WaitpointCreateManyParams,
    WaitpointReads,
    WaitpointReadsParams,
    WaitpointResolveParams,
)
from shipyard.store.postgres.driver import borrow, one_trip
from shipyard.store.postgres.values import block_values, claim_values, create_row, records
from shipyard.store.rows import insert_row
from shipyard.store.sql import load_queries

if TYPE_CHECKING:
    from shipyard.store.steps import Procedure

_Q = load_queries("postgres")
T = TypeVar("T")


class PostgresWaitpoints:
    """Waitpoint calls of :class:`~shipyard.store.postgres.store.PostgresStore`, which provides
    the pool, opening it, the shared-procedure runner and the environment's slot row."""

    _pool: AsyncConnectionPool[Any]

    if TYPE_CHECKING:

        async def _ensure_open(self) -> None: ...

        async def _run(self, procedure: Procedure[T]) -> T: ...

        async def run_claim(self, params: RunClaimParams) -> list[RunRecord]: ...

        async def _bookkeeping(
            self, conn: psycopg.AsyncConnection[Any], *, triggers: bool = False
        ) -> None: ...

        async def _ensure_slot_row(
            self, conn: psycopg.AsyncConnection[Any], environment: str
        ) -> None: ...

    async def waitpoint_resolve_due(self, params: WaitpointResolveParams) -> list[str]:
        """The shared procedure's statements in one pipeline (one round trip and one commit
        after the peek; none before it when ``peek`` is False): a finished child resolves its
        waiting parent this way, so its round trips are the parent's resume latency."""
        values = {
            "environment": params.environment,
            "now": params.now,
            "timeout_error": params.timeout_error,
        }
        await self._ensure_open()
        async with borrow(self._pool) as conn:
            if params.peek:
                cursor = await conn.execute(_Q["waitpoint_due_exists"], values)
                if await cursor.fetchone() is None:
                    return []
            async with one_trip(conn):
                await conn.execute(_Q["waitpoint_timeout_due"], values)
                await conn.execute(_Q["waitpoint_settle_due"], values)
                woken = await conn.execute(_Q["runs_wake_notify"], values)
            return [str(r[0]) for r in await woken.fetchall() if r[0] is not None]

    async def waitpoint_complete(self, params: WaitpointCompleteParams) -> WaitpointRecord | None:
        """The shared procedure's statements in one pipeline: one round trip, where its steps
        took one each (BEGIN, complete, wake, NOTIFY, read, COMMIT), and the whole of a
        token's resume latency before its run is claimed. The wake runs whether or not this
        call completed the token: a token completed before woke its runs then, and finds
        none WAITING on it now."""
        values = {
            "environment": params.environment,
            "id": params.waitpoint_id,
            "output": params.output,
            "now": params.now,
        }
        await self._ensure_open()
        async with borrow(self._pool) as conn:
            async with one_trip(conn):
                await conn.execute(_Q["waitpoint_complete"], values)
                await conn.execute(_Q["runs_wake_waitpoint_notify"], values)
                found = await conn.execute(_Q["waitpoint_get"], values)
            got = await found.fetchone()
        return WaitpointRecord(*got) if got else None

    async def waitpoint_reads(self, params: WaitpointReadsParams) -> WaitpointReads:
        """Every read in one round trip, two set-based statements (one per kind of read): a
        worker's runs reach their durable calls at about the same time, a few hundred reads
        at once (one statement each cost ~0.2 ms of server time apiece)."""
        if not params.gets and not params.recorded:
            return WaitpointReads(gets=[], recorded=[])
        await self._ensure_open()
        env = params.environment
        async with borrow(self._pool) as conn:
            async with conn.pipeline():
                gets = recorded = None
                if params.gets:
                    ids = sorted({g.waitpoint_id for g in params.gets})
                    gets = await conn.execute(
                        _Q["waitpoint_get_many"], {"environment": env, "ids": json.dumps(ids)}
                    )
                if params.recorded:
                    asks = [
                        {"ord": i, "run_id": r.run_id, "attempt_number": r.attempt_number}
                        | {"seq": r.seq}
                        for i, r in enumerate(params.recorded)
                    ]
                    recorded = await conn.execute(
                        _Q["waitpoint_recorded_many"],
                        {"environment": env, "input": json.dumps(asks)},
                    )
            found = {str(r[0]): WaitpointRecord(*r) for r in await gets.fetchall()} if gets else {}
            calls = {int(r[0]): r[1:] for r in await recorded.fetchall()} if recorded else {}
        answers: list[RecordedCall | None] = []
        for i in range(len(params.recorded)):
            row = calls.get(i)
            answers.append(RecordedCall(row[0], WaitpointRecord(*row[1:])) if row else None)
        return WaitpointReads(
            gets=[found.get(g.waitpoint_id) for g in params.gets], recorded=answers
        )

    async def waitpoint_create_many(
        self, params: WaitpointCreateManyParams
    ) -> list[WaitpointRecord]:
        """Every INSERT in one pipeline: one transaction, one round trip, one commit."""
        creates = list(params.creates)
        if any(c.environment != params.environment or c.idempotency_key for c in creates):
            raise ValueError("waitpoint_create_many: the params' environment, no idempotency keys")
        if not creates:
            return []
        await self._ensure_open()
        async with borrow(self._pool) as conn:
            cursor = await conn.execute(
                _Q["waitpoint_insert_many"],
                {"input": json.dumps([create_row(c) for c in creates])},
            )
            found = {str(r[0]): WaitpointRecord(*r) for r in await cursor.fetchall()}
        missing = [c.id for c in creates if c.id not in found]
        if missing:
            raise ShipyardError(f"Could not create waitpoint {missing[0]}: its id exists.")
        return [found[c.id] for c in creates]

    async def waitpoint_block(self, params: WaitpointBlockParams) -> WaitpointBlockResult:
        """:meth:`waitpoint_block_many` of one."""
        [result] = await self.waitpoint_block_many(
            WaitpointBlockManyParams(environment=params.environment, blocks=[params])
        )
        return result

    async def waitpoint_block_many(
        self, params: WaitpointBlockManyParams
    ) -> list[WaitpointBlockResult]:
        """The shared procedure's steps for every block in one pipeline: one transaction, one
        round trip (its awaits took five per block, plus BEGIN and COMMIT). A new waitpoint
        with an idempotency key may have to resolve a conflict first: such a batch takes the
        shared procedure."""
        results, _ = await self._block_many(params, None)
        return results

    async def waitpoint_block_and_claim(
        self, block: WaitpointBlockManyParams, claim: RunClaimParams
    ) -> tuple[list[WaitpointBlockResult], list[RunRecord]]:
        """:meth:`waitpoint_block_many`, then the claim (``run_claim_limited``) with the slots
        the suspended runs gave back, in the same transaction under the same slot-row lock:
        one commit, one round trip (the database adds the slots the suspend freed to the
        claim's limit: ``run_suspend_pending``)."""
        return await self._block_many(block, claim)

    async def _block_many(
        self, params: WaitpointBlockManyParams, claim: RunClaimParams | None
    ) -> tuple[list[WaitpointBlockResult], list[RunRecord]]:
        blocks = list(params.blocks)
        if not blocks:
            return [], (await self.run_claim(claim) if claim is not None else [])
        if any(b.create is not None and b.create.idempotency_key is not None for b in blocks):
            # Rare (a wait.until with an idempotency key): the shared procedure, then the claim.
            done = await self._run(procedures.waitpoint_block_many(params))
            if claim is None:
                return done, []
            return done, await self.run_claim(procedures.with_freed_slots(claim, done))
        if any(b.environment != params.environment for b in blocks):
            raise ValueError("waitpoint_block_many: every block must be in the params' environment")
        await self._ensure_open()
        env = params.environment
        values = [block_values(b) for b in blocks]
        ids = sorted({v["id"] for v in values})
        creates = [create_row(b.create) for b in blocks if b.create is not None]
        # Children of trigger_and_wait calls: inserted with the calls that wait for them.
        children = [insert_row(b.create.run) for b in blocks if b.create and b.create.run]
        claimed: list[RunRecord] = []
        async with borrow(self._pool) as conn:
            await self._ensure_slot_row(conn, env)
            try:
                async with one_trip(conn):
                    # The claim's generic plan from its first execution, as in a claim of its
                    # own; never the async commit: children inserted here are triggers.
                    await self._bookkeeping(conn, triggers=True)
                    await conn.execute(_Q["environment_slot_lock"], {"environment": env})
                    born = None
                    if children:
                        born = await conn.execute(_Q["run_insert"], {"rows": json.dumps(children)})
                    inserted = None
                    if creates:
                        inserted = await conn.execute(
                            _Q["waitpoint_insert_many"], {"input": json.dumps(creates)}
                        )
                    await conn.execute(
                        _Q["waitpoint_block_check"],
                        {"environment": env, "ids": json.dumps(ids), "count": len(ids)},
                    )
                    await conn.execute(
                        _Q["waitpoint_link_many"],
                        {"environment": env, "input": json.dumps(values)},
                    )
                    now = max(b.now for b in blocks)
                    await conn.execute(
                        _Q["waitpoint_settle_many"],
                        {"environment": env, "ids": json.dumps(ids), "now": now},
                    )
                    got = await conn.execute(
                        _Q["waitpoint_block_get_many"],
                        {"environment": env, "ids": json.dumps(ids)},
                    )
                    suspend = await conn.execute(
                        _Q["run_suspend_pending"],
                        {"environment": env, "input": json.dumps(values)},
                    )
                    taken = None
                    if claim is not None and claim.task_ids:
                        # Its limit gains the slots the suspend gave back in the database
                        # (run_suspend_pending's shipyard.freed): no sync to count them here.
                        taken = await conn.execute(
                            _Q["run_claim_limited"], claim_values(claim), prepare=True
                        )
                    if children:
                        # Children this worker did not take (no claim, no slot, not its task,
                        # a limit) wake the workers at commit; those it took wake nobody.
                        # Asked of the database after the claim, not of the claim's answer:
                        # a round trip fewer with the slot row locked.
                        await conn.execute(
                            _Q["children_left_notify"],
                            {"environment": env, "ids": json.dumps([c["id"] for c in children])},
                        )
                if taken is not None:
                    claimed = records(taken, await taken.fetchall())
            except psycopg.errors.DivisionByZero:
                raise ShipyardError(
                    f"Waitpoint not found (one of {', '.join(ids)}).", waitpoint_ids=ids
                ) from None
            if born is not None and born.rowcount != len(children):
                raise ShipyardError("Could not create a run of the batch: its id exists.")
            if inserted is not None and len(await inserted.fetchall()) != len(creates):
                raise ShipyardError("Could not create a waitpoint of the batch: its id exists.")
            found = {str(r[0]): WaitpointRecord(*r) for r in await got.fetchall()}
            suspended = {str(r[0]) for r in await suspend.fetchall() if r[0] is not None}
        results = []
        for block, v in zip(blocks, values, strict=True):
            waitpoint = found.get(v["id"])
            if waitpoint is None:
                raise ShipyardError(f"Waitpoint {v['id']} not found.")
            if waitpoint.status != "PENDING":
                results.append(WaitpointBlockResult(waitpoint, suspended=False, owned=True))
                continue
            owned = block.run_id in suspended
            results.append(WaitpointBlockResult(waitpoint, suspended=owned, owned=owned))
        return results, claimed
