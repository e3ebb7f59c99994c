"""Params and records of the access operations: secret keys, signing keys, single-use tokens
and request ids (migration ``0008_access``).

Unlike the run operations, a key lookup crosses environments: a secret key is how the server
learns which environment a request is for (:class:`AccessKeyFindParams` has no environment).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AccessKeyFindParams",
    "AccessKeyInsertParams",
    "AccessKeyListParams",
    "AccessKeyRecord",
    "AccessKeyRevokeParams",
    "RequestKeyAnswerParams",
    "RequestKeyClaim",
    "RequestKeyClaimParams",
    "RequestKeyReleaseParams",
    "SigningKeyParams",
    "TokenUseParams",
]


@dataclass(frozen=True, slots=True)
class AccessKeyRecord:
    """A secret key as stored, without its hash. Times are epoch ms."""

    id: str
    environment: str
    name: str | None
    prefix: str
    created_at: int
    revoked_at: int | None


@dataclass(slots=True)
class AccessKeyInsertParams:
    """Store a new key (its SHA-256 hex, never the key) and make sure its environment has a
    signing key (``signing_key`` is used if it has none yet)."""

    id: str
    environment: str
    name: str | None
    prefix: str
    key_hash: str
    signing_key: str
    now: int


@dataclass(slots=True)
class AccessKeyListParams:
    """Keys of one environment, or of every environment (``None``), oldest first."""

    environment: str | None = None


@dataclass(slots=True)
class AccessKeyRevokeParams:
    """Revoke a key by id (revoking it again changes nothing)."""

    key_id: str
    now: int


@dataclass(slots=True)
class AccessKeyFindParams:
    """The live (unrevoked) key with this hash, whatever its environment."""

    key_hash: str


@dataclass(slots=True)
class SigningKeyParams:
    """An environment's signing key; ``candidate`` becomes it if it has none (``None``: only
    read)."""

    environment: str
    candidate: str | None
    now: int


@dataclass(slots=True)
class TokenUseParams:
    """Spend a single-use token: True the first time its ``jti`` is seen before it expires."""

    environment: str
    jti: str
    expires_at: int
    now: int


@dataclass(slots=True)
class RequestKeyClaimParams:
    """Claim a request id for a request about to run. A claim left unanswered since before
    ``stale_before`` (its request died) can be claimed again."""

    environment: str
    request_key: str
    now: int
    expires_at: int
    stale_before: int


@dataclass(frozen=True, slots=True)
class RequestKeyClaim:
    """``claimed``: this request runs. Otherwise ``response`` is what the first answered
    (``None`` while it is still running)."""

    claimed: bool
    response: str | None = None


@dataclass(slots=True)
class RequestKeyAnswerParams:
    """Record the answer of a claimed request id."""

    environment: str
    request_key: str
    response: str


@dataclass(slots=True)
class RequestKeyReleaseParams:
    """Forget an unanswered claim (its request failed: a retry should run again)."""

    environment: str
    request_key: str
