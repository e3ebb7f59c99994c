"""Wait tokens (MANUAL waitpoints): create, complete, retrieve, list, and the signed callback.

A token is completed by ``wait.complete_token`` anywhere, by the HTTP API, or by POSTing JSON to
its callback URL, whose last path segment is the HMAC-SHA256 of the token id under the
environment's secret key. Completing twice keeps the first data.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Awaitable, Sequence
from typing import Any

from shipyard.durations import parse_duration_ms, resolve_time
from shipyard.engine.batching import Coalescer
from shipyard.engine.idempotency import IdempotencyKey, normalize
from shipyard.engine.options import check_text, validate_tags
from shipyard.engine.runs import RunOps
from shipyard.errors import (
    PayloadTooLargeError,
    TooManyTagsError,
    ValidationError,
    WaitpointNotFoundError,
)
from shipyard.ids import new_id
from shipyard.jsonutil import byte_size, dumps, loads
from shipyard.models.tokens import WaitToken, WaitTokenInfo, WaitTokenPage
from shipyard.records import WaitpointRecord
from shipyard.store.params import (
    RecordedCall,
    WaitpointCompleteParams,
    WaitpointCreateManyParams,
    WaitpointCreateParams,
    WaitpointGetParams,
    WaitpointListParams,
    WaitpointReadsParams,
    WaitpointRecordedParams,
)

__all__ = ["OUTPUT_MAX_BYTES", "TOKEN_MAX_TAGS", "TOKEN_PAT_TTL_S", "WaitpointOps", "token_error"]

OUTPUT_MAX_BYTES = 10 * 1024 * 1024
TOKEN_STATUSES = ("WAITING", "COMPLETED", "TIMED_OUT")
TOKEN_MAX_TAGS = 10
TOKEN_PAT_TTL_S = 24 * 3600


def token_error(waitpoint: WaitpointRecord) -> Any:
    """The timeout error a TIMED_OUT token carries (a :class:`WaitpointTimeoutError`)."""
    from shipyard.errors import WaitpointTimeoutError

    data = loads(waitpoint.output) or {}
    message = data.get("message") if isinstance(data, dict) else None
    return WaitpointTimeoutError(
        str(message or f"Wait token {waitpoint.id} timed out."), waitpoint_id=waitpoint.id
    )


class WaitpointOps(RunOps):
    """Wait tokens and their signed callback URLs."""

    def token_signature(self, waitpoint_id: str) -> str:
        """HMAC-SHA256 of a token id under the environment's secret key (hex)."""
        secret = self.secret_key().encode()
        return hmac.new(secret, waitpoint_id.encode(), hashlib.sha256).hexdigest()

    def token_signature_valid(self, waitpoint_id: str, signature: str) -> bool:
        """Constant-time check of a callback URL's signature (any text; bytes compared)."""
        expected = self.token_signature(waitpoint_id).encode()
        return hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass"))

    def token_url(self, waitpoint_id: str) -> str:
        """The signed callback URL that completes a token with the POSTed JSON."""
        origin = f"http://{self.settings.server_host}:{self.settings.server_port}"
        return (
            f"{origin}/api/v1/waitpoints/tokens/{waitpoint_id}/callback/"
            f"{self.token_signature(waitpoint_id)}"
        )

    def _token(self, record: WaitpointRecord, cached: bool) -> WaitToken:
        return WaitToken(
            id=record.id,
            url=self.token_url(record.id),
            is_cached=cached,
            token_factory=self.lazy_public_token(
                [f"write:waitpoints:{record.id}"], TOKEN_PAT_TTL_S
            ),
        )

    def token_info(self, record: WaitpointRecord) -> WaitTokenInfo:
        """A stored token as ``wait.retrieve_token`` reports it."""
        timed_out = record.status == "TIMED_OUT"
        return WaitTokenInfo(
            id=record.id,
            url=self.token_url(record.id),
            status="WAITING" if record.status == "PENDING" else record.status,
            completed_at=record.completed_at,
            timeout_at=record.timeout_at,
            idempotency_key=record.idempotency_key,
            idempotency_key_expires_at=record.idempotency_key_expires_at,
            tags=tuple(loads(record.tags) or ()),
            created_at=record.created_at,
            output=None if timed_out else loads(record.output),
            error=token_error(record) if timed_out else None,
        )

    async def create_token(
        self,
        *,
        timeout: Any = None,
        idempotency_key: str | None = None,
        idempotency_key_ttl: str | int | None = None,
        tags: Sequence[str] | str | None = None,
    ) -> WaitToken:
        """Create a wait token (or return the live one holding ``idempotency_key``)."""
        if tags is not None and not isinstance(tags, str | list | tuple):
            raise TooManyTagsError(
                f"Token tags must be a string or a list of strings; got {type(tags).__name__}."
            )
        tag_list = list(validate_tags(tags))
        if len(tag_list) > TOKEN_MAX_TAGS:
            raise TooManyTagsError(
                f"A wait token can have at most {TOKEN_MAX_TAGS} tags; got {len(tag_list)}.",
                limit=TOKEN_MAX_TAGS,
            )
        key = None
        if idempotency_key is not None:
            # A raw key is hashed in the run scope (inside a run: this run's; outside: global),
            # as trigger keys are; an IdempotencyKey from idempotency_keys.create is final.
            key = normalize(
                check_text(str(idempotency_key), "idempotency_key", max_length=2048)
                if not isinstance(idempotency_key, IdempotencyKey)
                else idempotency_key
            )
        self.secret_key()  # the token's URL and access token are signed: fail before writing
        await self.start()
        now = self.now()
        ttl_ms = parse_duration_ms(idempotency_key_ttl) if idempotency_key_ttl else None
        params = WaitpointCreateParams(
            id=new_id("waitpoint"),
            environment=self.environment,
            kind="MANUAL",
            now=now,
            timeout_at=resolve_time(timeout, now) if timeout is not None else None,
            idempotency_key=key,
            idempotency_key_expires_at=now + ttl_ms if key and ttl_ms else None,
            tags=tag_list,
        )
        if key is None:
            # Tokens created at about the same time (a worker's runs all reaching one) share
            # a transaction: one commit instead of one each.
            return self._token(await self._token_creates.submit(params), False)
        record, cached = await self.store.waitpoint_create(params)
        return self._token(record, cached)

    async def read_waitpoint(self, params: WaitpointGetParams) -> WaitpointRecord | None:
        """One waitpoint by id, read with the others asked for meanwhile (one round trip)."""
        found = await self._waitpoint_reads.submit(params)
        assert not isinstance(found, RecordedCall)
        return found

    async def recorded_call(self, params: WaitpointRecordedParams) -> RecordedCall | None:
        """The durable call an attempt recorded at ``params.seq``, read with the others asked
        for meanwhile (a worker's runs reach their durable calls together)."""
        found = await self._waitpoint_reads.submit(params)
        assert not isinstance(found, WaitpointRecord)
        return found

    @functools.cached_property
    def _waitpoint_reads(
        self,
    ) -> Coalescer[
        WaitpointGetParams | WaitpointRecordedParams, WaitpointRecord | RecordedCall | None
    ]:
        async def read(
            items: Sequence[WaitpointGetParams | WaitpointRecordedParams],
        ) -> list[WaitpointRecord | RecordedCall | None]:
            gets = [i for i in items if isinstance(i, WaitpointGetParams)]
            recorded = [i for i in items if isinstance(i, WaitpointRecordedParams)]
            found = await self.store.waitpoint_reads(
                WaitpointReadsParams(environment=self.environment, gets=gets, recorded=recorded)
            )
            answers = iter(found.gets), iter(found.recorded)
            return [
                next(answers[0]) if isinstance(i, WaitpointGetParams) else next(answers[1])
                for i in items
            ]

        return Coalescer(read)

    @functools.cached_property
    def _token_creates(self) -> Coalescer[WaitpointCreateParams, WaitpointRecord]:
        async def write(creates: Sequence[WaitpointCreateParams]) -> list[WaitpointRecord]:
            return await self.store.waitpoint_create_many(
                WaitpointCreateManyParams(environment=self.environment, creates=creates)
            )

        return Coalescer(write)

    async def complete_token(self, waitpoint_id: str, data: Any) -> WaitTokenInfo:
        """Complete a token with ``data``; completing it again keeps the first data."""
        check_text(waitpoint_id, "token id")
        output = dumps(data, what="Token data")
        size = byte_size(output)
        if size > OUTPUT_MAX_BYTES:
            raise PayloadTooLargeError(
                f"Token data is {size:,} bytes; the limit is {OUTPUT_MAX_BYTES:,} bytes (10 MiB).",
                limit=OUTPUT_MAX_BYTES,
                size=size,
            )
        await self.start()
        found = await self.store.waitpoint_complete(
            WaitpointCompleteParams(
                environment=self.environment,
                waitpoint_id=waitpoint_id,
                output=output,
                now=self.now(),
            )
        )
        return self.token_info(self._manual_token(waitpoint_id, found))

    async def get_token(self, waitpoint_id: str) -> WaitpointRecord:
        """A token's row by id, or :class:`WaitpointNotFoundError`."""
        check_text(waitpoint_id, "token id")
        await self.start()
        found = await self.read_waitpoint(
            WaitpointGetParams(environment=self.environment, waitpoint_id=waitpoint_id)
        )
        return self._manual_token(waitpoint_id, found)

    def token_check(self, waitpoint_id: str) -> Awaitable[WaitpointRecord]:
        """:meth:`get_token`'s read, queued now with the reads made in this turn of the loop
        (``wait.for_token`` sends it with its recorded-call lookup); await it for the row or
        :class:`WaitpointNotFoundError`. Inside a run only (the engine is started)."""
        check_text(waitpoint_id, "token id")
        found = self._waitpoint_reads.enqueue(
            WaitpointGetParams(environment=self.environment, waitpoint_id=waitpoint_id)
        )
        return self._checked_token(waitpoint_id, found)

    async def _checked_token(
        self, waitpoint_id: str, found: Awaitable[WaitpointRecord | RecordedCall | None]
    ) -> WaitpointRecord:
        return self._manual_token(waitpoint_id, await found)

    def _manual_token(
        self, waitpoint_id: str, found: WaitpointRecord | RecordedCall | None
    ) -> WaitpointRecord:
        """``found`` if it is a wait token's row, else :class:`WaitpointNotFoundError`."""
        if not isinstance(found, WaitpointRecord) or found.kind != "MANUAL":
            raise WaitpointNotFoundError(
                f"Wait token {waitpoint_id} not found in environment '{self.environment}'.",
                waitpoint_id=waitpoint_id,
            )
        return found

    async def retrieve_token(self, waitpoint_id: str) -> WaitTokenInfo:
        """A token's status, data and times."""
        return self.token_info(await self.get_token(waitpoint_id))

    async def list_tokens(
        self,
        *,
        statuses: Sequence[str] = (),
        tags: Sequence[str] = (),
        idempotency_key: str | None = None,
        created_from: int | None = None,
        created_to: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> WaitTokenPage:
        """One page of tokens, newest first, without their output. ``statuses``: WAITING,
        COMPLETED or TIMED_OUT; ``tags``: all of them; ``created_from``/``to``: epoch ms."""
        if not 1 <= limit <= 1000:
            raise ValidationError(f"limit must be between 1 and 1000; got {limit}.", limit=limit)
        for status in statuses:
            if status not in TOKEN_STATUSES:
                raise ValidationError(
                    f"Unknown token status {status!r}; one of {', '.join(TOKEN_STATUSES)}.",
                    status=str(status),
                )
        wanted = list(validate_tags(list(tags)))
        for value, what in ((idempotency_key, "idempotency_key"), (cursor, "cursor")):
            if value is not None:
                check_text(value, what, max_length=2048)
        await self.start()
        page = await self.store.waitpoint_list(
            WaitpointListParams(
                environment=self.environment,
                statuses=["PENDING" if s == "WAITING" else s for s in statuses],
                tags=wanted,
                idempotency_key=idempotency_key,
                created_from=created_from,
                created_to=created_to,
                limit=limit,
                cursor=cursor,
            )
        )
        return WaitTokenPage(
            items=tuple(self.token_info(w) for w in page.items), next_cursor=page.next_cursor
        )
