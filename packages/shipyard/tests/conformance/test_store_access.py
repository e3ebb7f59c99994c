"""Store conformance: secret keys (hashed), signing keys, single-use tokens and request ids."""

from __future__ import annotations

from shipyard.store.access import (
    AccessKeyFindParams,
    AccessKeyInsertParams,
    AccessKeyListParams,
    AccessKeyRevokeParams,
    RequestKeyAnswerParams,
    RequestKeyClaimParams,
    RequestKeyReleaseParams,
    SigningKeyParams,
    TokenUseParams,
)
from shipyard.store.protocol import Store


def key(n: int, environment: str = "production") -> AccessKeyInsertParams:
    return AccessKeyInsertParams(
        id=f"key_{n}",
        environment=environment,
        name=f"k{n}",
        prefix=f"sk_prod_{n}",
        key_hash=f"hash{n}",
        signing_key=f"signing-{environment}-{n}",
        now=1_000 + n,
    )


async def test_keys_are_found_by_hash_listed_and_revoked(store: Store) -> None:
    created = await store.access_key_insert(key(1))
    await store.access_key_insert(key(2, "staging"))
    assert created.environment == "production" and created.revoked_at is None
    found = await store.access_key_find(AccessKeyFindParams(key_hash="hash1"))
    assert found is not None and found.id == "key_1" and found.environment == "production"
    assert await store.access_key_find(AccessKeyFindParams(key_hash="nope")) is None
    every = await store.access_key_list(AccessKeyListParams())
    assert [k.id for k in every] == ["key_1", "key_2"]
    staging = await store.access_key_list(AccessKeyListParams(environment="staging"))
    assert [k.id for k in staging] == ["key_2"]

    revoked = await store.access_key_revoke(AccessKeyRevokeParams(key_id="key_1", now=5_000))
    assert revoked is not None and revoked.revoked_at == 5_000
    again = await store.access_key_revoke(AccessKeyRevokeParams(key_id="key_1", now=6_000))
    assert again is not None and again.revoked_at == 5_000  # the first revocation stays
    assert await store.access_key_find(AccessKeyFindParams(key_hash="hash1")) is None
    assert await store.access_key_revoke(AccessKeyRevokeParams(key_id="key_x", now=1)) is None


async def test_an_environment_keeps_its_first_signing_key(store: Store) -> None:
    none = await store.signing_key_get(SigningKeyParams("staging", None, 1))
    assert none is None
    await store.access_key_insert(key(1, "staging"))
    await store.access_key_insert(key(2, "staging"))
    assert await store.signing_key_get(SigningKeyParams("staging", None, 1)) == "signing-staging-1"
    made = await store.signing_key_get(SigningKeyParams("preview/x", "fresh", 1))
    assert made == "fresh"
    assert await store.signing_key_get(SigningKeyParams("preview/x", "other", 2)) == "fresh"


async def test_a_single_use_token_is_spent_once_per_environment(store: Store) -> None:
    use = TokenUseParams(environment="production", jti="j1", expires_at=10_000, now=1_000)
    assert await store.token_use(use) is True
    assert await store.token_use(use) is False
    other = TokenUseParams(environment="staging", jti="j1", expires_at=10_000, now=1_000)
    assert await store.token_use(other) is True
    # Expired rows are purged; an expired token is refused before it reaches the store.
    later = TokenUseParams(environment="production", jti="j2", expires_at=30_000, now=20_000)
    assert await store.token_use(later) is True


async def test_a_request_id_answers_what_its_first_request_did(store: Store) -> None:
    def claim(now: int, key: str = "r1") -> RequestKeyClaimParams:
        return RequestKeyClaimParams(
            environment="production",
            request_key=key,
            now=now,
            expires_at=now + 86_400_000,
            stale_before=now - 60_000,
        )

    first = await store.request_key_claim(claim(1_000))
    assert first.claimed
    in_flight = await store.request_key_claim(claim(2_000))
    assert not in_flight.claimed and in_flight.response is None
    await store.request_key_answer(RequestKeyAnswerParams("production", "r1", '{"id":"run_1"}'))
    retried = await store.request_key_claim(claim(3_000))
    assert not retried.claimed and retried.response == '{"id":"run_1"}'

    # A failed request releases its claim: the retry runs.
    assert (await store.request_key_claim(claim(1_000, "r2"))).claimed
    await store.request_key_release(RequestKeyReleaseParams("production", "r2"))
    assert (await store.request_key_claim(claim(2_000, "r2"))).claimed
    # A claim nobody answered for a minute (its server died) can be taken over.
    assert (await store.request_key_claim(claim(1_000, "r3"))).claimed
    assert (await store.request_key_claim(claim(70_000, "r3"))).claimed
    # After it expires a request id is new again.
    assert (await store.request_key_claim(claim(1_000 + 86_400_001))).claimed
