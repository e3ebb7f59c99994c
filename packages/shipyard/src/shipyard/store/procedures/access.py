"""Procedures of access to the HTTP API: secret keys, signing keys, single-use tokens and
request ids (``store/access.py``)."""

from __future__ import annotations

from shipyard.store.access import (
    AccessKeyFindParams,
    AccessKeyInsertParams,
    AccessKeyListParams,
    AccessKeyRecord,
    AccessKeyRevokeParams,
    RequestKeyAnswerParams,
    RequestKeyClaim,
    RequestKeyClaimParams,
    RequestKeyReleaseParams,
    SigningKeyParams,
    TokenUseParams,
)
from shipyard.store.steps import Procedure, begin, count, row, rows


def _key(found: tuple[object, ...]) -> AccessKeyRecord:
    return AccessKeyRecord(*found)  # type: ignore[arg-type]


def access_key_insert(p: AccessKeyInsertParams) -> Procedure[AccessKeyRecord]:
    """Store a key (hashed) and give its environment a signing key if it has none."""
    yield begin()
    yield count(
        "access_key_insert",
        {
            "id": p.id,
            "environment": p.environment,
            "name": p.name,
            "prefix": p.prefix,
            "key_hash": p.key_hash,
            "now": p.now,
        },
    )
    yield count(
        "signing_key_insert",
        {"environment": p.environment, "signing_key": p.signing_key, "now": p.now},
    )
    return AccessKeyRecord(p.id, p.environment, p.name, p.prefix, p.now, None)


def access_key_list(p: AccessKeyListParams) -> Procedure[list[AccessKeyRecord]]:
    """Keys (without hashes), oldest first."""
    found = yield rows("access_key_list", {"environment": p.environment})
    return [_key(r) for r in found]


def access_key_revoke(p: AccessKeyRevokeParams) -> Procedure[AccessKeyRecord | None]:
    """Revoke a key; the key after, or None if there is no such key."""
    yield begin()
    yield count("access_key_revoke", {"id": p.key_id, "now": p.now})
    found = yield row("access_key_get", {"id": p.key_id})
    return _key(found) if found is not None else None


def access_key_find(p: AccessKeyFindParams) -> Procedure[AccessKeyRecord | None]:
    """The live key with this hash, or None."""
    found = yield row("access_key_find", {"key_hash": p.key_hash})
    return _key(found) if found is not None else None


def signing_key_get(p: SigningKeyParams) -> Procedure[str | None]:
    """The environment's signing key (set to ``candidate`` first if it has none)."""
    if p.candidate is not None:
        yield begin()
        yield count(
            "signing_key_insert",
            {"environment": p.environment, "signing_key": p.candidate, "now": p.now},
        )
    found = yield row("signing_key_get", {"environment": p.environment})
    return str(found[0]) if found is not None else None


def token_use(p: TokenUseParams) -> Procedure[bool]:
    """Spend a single-use token; False if it was spent already."""
    yield begin()
    yield count("used_token_purge", {"now": p.now})
    inserted = yield count(
        "used_token_insert",
        {"environment": p.environment, "jti": p.jti, "now": p.now, "expires_at": p.expires_at},
    )
    return bool(inserted)


def request_key_claim(p: RequestKeyClaimParams) -> Procedure[RequestKeyClaim]:
    """Claim a request id, or say what its first request answered."""
    yield begin()
    yield count("request_key_purge", {"now": p.now})
    key = {"environment": p.environment, "request_key": p.request_key}
    claimed = yield count(
        "request_key_claim",
        {**key, "now": p.now, "expires_at": p.expires_at, "stale_before": p.stale_before},
    )
    if claimed:
        return RequestKeyClaim(claimed=True)
    found = yield row("request_key_get", {**key, "now": p.now})
    return RequestKeyClaim(claimed=False, response=None if found is None else found[0])


def request_key_answer(p: RequestKeyAnswerParams) -> Procedure[None]:
    """Record the answer of a claimed request id."""
    yield count(
        "request_key_answer",
        {"environment": p.environment, "request_key": p.request_key, "response": p.response},
    )


def request_key_release(p: RequestKeyReleaseParams) -> Procedure[None]:
    """Forget an unanswered claim."""
    yield count("request_key_release", {"environment": p.environment, "request_key": p.request_key})
