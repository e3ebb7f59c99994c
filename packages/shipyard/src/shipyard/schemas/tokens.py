"""Wait tokens over HTTP: create, list, retrieve and complete.

=====================================================  ===========================================
``POST /api/v1/waitpoints/tokens``                     :class:`CreateWaitpointTokenRequest` →
                                                       :class:`CreateWaitpointTokenResponse`
                                                       (token in ``x-trigger-jwt``, 24 h,
                                                       ``write:waitpoints:<id>``)
``GET /api/v1/waitpoints/tokens``                      :class:`ListWaitpointTokensResponse`
                                                       (filters: :mod:`shipyard.schemas.filters`)
``GET /api/v1/waitpoints/tokens/{id}``                 :class:`RetrieveWaitpointTokenResponse`
``POST /api/v1/waitpoints/tokens/{id}/complete``       :class:`CompleteWaitpointTokenRequest` →
                                                       :class:`CompleteWaitpointTokenResponse`
=====================================================  ===========================================

The completion body is ``{"data": …}``. Trigger.dev silently completes a token with
``undefined`` when the body says ``{"output": …}`` (its issue #2292); Shipyard refuses any key
but ``data`` with HTTP 422 and a message that names ``data`` (see
:func:`shipyard.schemas.errors.validation_error_response`).

Example::

    request = CompleteWaitpointTokenRequest.model_validate(await http_request.json())
    await engine.complete_token(token_id, request.data)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pydantic import ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from shipyard.jsonutil import dumps
from shipyard.schemas.runs import CursorPagination
from shipyard.schemas.tasks import IdempotencyKeyText, Tags
from shipyard.schemas.wire import WireDateTime, WireModel

__all__ = [
    "CompleteWaitpointTokenRequest",
    "CompleteWaitpointTokenResponse",
    "CreateWaitpointTokenRequest",
    "CreateWaitpointTokenResponse",
    "ListWaitpointTokensResponse",
    "RetrieveWaitpointTokenResponse",
    "TokenErrorLike",
    "WaitTokenInfoLike",
    "WaitpointTokenItem",
    "WaitpointTokenStatus",
]

WaitpointTokenStatus = Literal["WAITING", "COMPLETED", "TIMED_OUT"]


class CreateWaitpointTokenRequest(WireModel):
    """Body of token creation; every field is optional.

    ``timeout`` is a duration (``"10m"``) or an ISO-8601 date-time; without it the token waits
    until completed (Shipyard sets no default).
    """

    idempotency_key: IdempotencyKeyText | None = None
    idempotency_key_ttl: str | None = Field(
        default=None, validation_alias="idempotencyKeyTTL", serialization_alias="idempotencyKeyTTL"
    )
    timeout: str | None = None
    tags: Tags | None = None

    def token_options(self) -> dict[str, Any]:
        """Keyword arguments for ``wait.create_token`` (only the ones given)."""
        options: dict[str, Any] = {}
        if self.timeout is not None:
            options["timeout"] = self.timeout
        if self.idempotency_key is not None:
            options["idempotency_key"] = self.idempotency_key
        if self.idempotency_key_ttl is not None:
            options["idempotency_key_ttl"] = self.idempotency_key_ttl
        if self.tags is not None:
            options["tags"] = list(self.tags)
        return options


class CreateWaitpointTokenResponse(WireModel):
    """A created token. Its public access token travels in the ``x-trigger-jwt`` header."""

    id: str
    is_cached: bool
    url: str
    """POST JSON here to complete the token (the URL is signed; no other auth needed)."""


class TokenErrorLike(Protocol):
    """An error a timed-out token carries (Shipyard's ``WaitpointTimeoutError``)."""

    @property
    def message(self) -> str: ...


class WaitTokenInfoLike(Protocol):
    """The fields of Shipyard's ``WaitTokenInfo`` the bodies are built from (times in epoch
    milliseconds)."""

    @property
    def id(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def completed_at(self) -> int | None: ...
    @property
    def timeout_at(self) -> int | None: ...
    @property
    def idempotency_key(self) -> str | None: ...
    @property
    def idempotency_key_expires_at(self) -> int | None: ...
    @property
    def tags(self) -> Sequence[str]: ...
    @property
    def created_at(self) -> int: ...
    @property
    def output(self) -> Any: ...
    @property
    def error(self) -> TokenErrorLike | None: ...


def _token_fields(info: WaitTokenInfoLike) -> dict[str, Any]:
    return {
        "id": info.id,
        "url": info.url,
        "status": info.status,
        "completed_at": info.completed_at,
        "timeout_at": info.timeout_at,
        "idempotency_key": info.idempotency_key,
        "idempotency_key_expires_at": info.idempotency_key_expires_at,
        "tags": list(info.tags),
        "created_at": info.created_at,
    }


class WaitpointTokenItem(WireModel):
    """A token as the list reports it."""

    id: str
    url: str
    status: WaitpointTokenStatus
    completed_at: WireDateTime | None = None
    timeout_at: WireDateTime | None = None
    idempotency_key: str | None = None
    idempotency_key_expires_at: WireDateTime | None = None
    tags: list[str] = Field(default_factory=list)
    created_at: WireDateTime

    @classmethod
    def from_info(cls, info: WaitTokenInfoLike) -> WaitpointTokenItem:
        """From Shipyard's ``WaitTokenInfo``."""
        return cls(**_token_fields(info))


class RetrieveWaitpointTokenResponse(WaitpointTokenItem):
    """A token with its result. As in Trigger.dev, ``output`` is JSON **text** described by
    ``outputType``; a timed-out token has ``outputIsError`` and an output of
    ``{"name": "WaitpointTimeoutError", "message": …}``."""

    output: str | None = None
    output_type: str | None = None
    output_is_error: bool | None = None

    @classmethod
    def from_info(cls, info: WaitTokenInfoLike) -> RetrieveWaitpointTokenResponse:
        """From Shipyard's ``WaitTokenInfo`` (the output is encoded as JSON text)."""
        fields = _token_fields(info)
        if info.error is not None:
            error = {"name": "WaitpointTimeoutError", "message": info.error.message}
            return cls(
                **fields,
                output=dumps(error),
                output_type="application/json",
                output_is_error=True,
            )
        if info.status == "COMPLETED":
            return cls(
                **fields,
                output=dumps(info.output, what="Output"),
                output_type="application/json",
                output_is_error=False,
            )
        return cls(**fields)


class ListWaitpointTokensResponse(WireModel):
    """Response of the token list: one page, newest first."""

    data: list[WaitpointTokenItem]
    pagination: CursorPagination = Field(default_factory=CursorPagination)


class CompleteWaitpointTokenRequest(WireModel):
    """Body of token completion: ``{"data": …}`` (``data`` may be left out: ``null``).

    Any other key is refused with error type ``wrong_completion_key`` (HTTP 422), and the
    message names ``data``: ``{"output": …}`` is the common mistake.
    """

    model_config = ConfigDict(extra="forbid")

    data: Any = None

    @model_validator(mode="before")
    @classmethod
    def _only_data(cls, value: Any) -> Any:
        if isinstance(value, dict):
            unknown = sorted(str(key) for key in value if key != "data")
            if unknown:
                hint = ' ("output" is not accepted)' if "output" in unknown else ""
                raise PydanticCustomError(
                    "wrong_completion_key",
                    'Complete a token with {"data": ...}; unexpected key(s) {keys}{hint}.',
                    {"keys": ", ".join(unknown), "hint": hint},
                )
        return value


class CompleteWaitpointTokenResponse(WireModel):
    """Response of completion. Completing an already completed token also answers this, and
    keeps the first data."""

    success: Literal[True] = True
