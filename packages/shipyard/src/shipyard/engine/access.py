"""Access to the HTTP API: secret keys per environment, the key each environment signs its
public access tokens with, single-use tokens and request ids.

A secret key belongs to one environment and is stored only as its SHA-256 (a key is 256
random bits, so a fast hash is enough: nobody can guess one to match). The configured
``SHIPYARD_SECRET_KEY`` stays the key of ``SHIPYARD_ENVIRONMENT`` and signs that environment's
tokens; any other environment signs with a random signing key stored with its first secret
key. :meth:`AccessOps.for_environment` gives the engine of another environment over the same
store, so every operation of a request is scoped by its key's environment.

Example::

    created = await engine.create_key("production", name="ci")
    print(created.key)  # sk_prod_…, shown once
    found = await engine.find_key(created.key)  # AccessKey(environment="production", …)
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Self

from shipyard.engine.options import check_text
from shipyard.engine.runs import RunOps
from shipyard.errors import KeyNotFoundError, ValidationError
from shipyard.ids import new_id
from shipyard.models.access import AccessKey, CreatedKey
from shipyard.models.runs import to_datetime
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

__all__ = ["REQUEST_KEY_TTL_MS", "AccessOps", "check_environment", "hash_key", "key_prefix"]

REQUEST_KEY_TTL_MS = 24 * 3600 * 1000
"""How long a request id is remembered (a retried request within it answers the first)."""
_REQUEST_STALE_MS = 60_000
_ENVIRONMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
_SHORT = {"production": "prod", "staging": "stg", "development": "dev"}


def check_environment(environment: str) -> str:
    """An environment name: ``production``, ``staging``, ``development``, ``preview/<branch>``
    or another name of letters, digits and ``._/-`` (at most 100)."""
    if not isinstance(environment, str) or not _ENVIRONMENT.match(environment):
        raise ValidationError(
            f"Invalid environment {environment!r}: use production, staging, development or "
            "preview/<branch> (letters, digits, '._/-', at most 100 characters).",
            param="environment",
        )
    return environment


def hash_key(key: str) -> str:
    """How a secret key is stored: its SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_prefix(environment: str) -> str:
    """The start of a new key of ``environment``: ``sk_prod_``, ``sk_stg_``, ``sk_preview_``."""
    short = _SHORT.get(environment) or re.sub(r"[^a-z0-9]", "", environment.split("/")[0].lower())
    return f"sk_{short or 'env'}_"


def _key(record: AccessKeyRecord) -> AccessKey:
    return AccessKey(
        id=record.id,
        environment=record.environment,
        name=record.name,
        prefix=record.prefix,
        created_at=to_datetime(record.created_at),  # type: ignore[arg-type]
        revoked_at=to_datetime(record.revoked_at),
    )


class AccessOps(RunOps):
    """Secret keys, signing keys, single-use tokens and request ids."""

    _borrowed_store = False

    def for_environment(self, environment: str, signing_key: str) -> Self:
        """The engine of ``environment`` over this engine's store, clock and definitions,
        signing with ``signing_key``. Closing it leaves the store open (this engine owns it).
        """
        settings = self.settings.model_copy(
            update={"environment": check_environment(environment), "secret_key": signing_key}
        )
        other = type(self)(settings, self.store, clock=self.clock, definitions=self.definitions)
        other._borrowed_store = True
        other._started = self._started
        return other

    async def create_key(self, environment: str, name: str | None = None) -> CreatedKey:
        """A new secret key of ``environment`` (shown once: only its hash is stored)."""
        check_environment(environment)
        if name is not None:
            check_text(name, "key name", max_length=100)
        await self.start()
        key = key_prefix(environment) + secrets.token_urlsafe(32)
        record = await self.store.access_key_insert(
            AccessKeyInsertParams(
                id=new_id("key"),
                environment=environment,
                name=name,
                prefix=key[: len(key_prefix(environment)) + 4],
                key_hash=hash_key(key),
                signing_key=secrets.token_urlsafe(48),
                now=self.now(),
            )
        )
        return CreatedKey(info=_key(record), key=key)

    async def list_keys(self, environment: str | None = None) -> list[AccessKey]:
        """Keys of ``environment`` (every environment when None), oldest first."""
        if environment is not None:
            check_environment(environment)
        await self.start()
        found = await self.store.access_key_list(AccessKeyListParams(environment=environment))
        return [_key(r) for r in found]

    async def revoke_key(self, key_id: str) -> AccessKey:
        """Revoke a key: it stops authenticating at once (a server caches a key at most
        a few seconds). :class:`KeyNotFoundError` if there is no such key."""
        check_text(key_id, "key id")
        await self.start()
        record = await self.store.access_key_revoke(
            AccessKeyRevokeParams(key_id=key_id, now=self.now())
        )
        if record is None:
            raise KeyNotFoundError(f"Secret key {key_id} not found.", key_id=key_id)
        return _key(record)

    async def find_key(self, key: str) -> AccessKey | None:
        """The live key ``key`` is, whatever its environment, or None."""
        await self.start()
        found = await self.store.access_key_find(AccessKeyFindParams(key_hash=hash_key(key)))
        return _key(found) if found is not None else None

    async def signing_key_of(self, environment: str) -> str | None:
        """The key ``environment`` signs its tokens with: the configured secret key for this
        engine's own environment, else the one stored with its first secret key (None when
        it has none)."""
        if environment == self.environment:
            return self.secret_key()
        await self.start()
        return await self.store.signing_key_get(
            SigningKeyParams(environment=environment, candidate=None, now=self.now())
        )

    async def spend_token(self, jti: str, expires_at_s: int) -> bool:
        """Spend a single-use token of this environment: True the first time."""
        return await self.store.token_use(
            TokenUseParams(
                environment=self.environment,
                jti=jti,
                expires_at=expires_at_s * 1000,
                now=self.now(),
            )
        )

    async def claim_request(self, request_key: str) -> RequestKeyClaim:
        """Claim a request id (``x-trigger-request-idempotency-key``) for a request about to
        run, or learn what its first attempt answered (``response`` None: still running)."""
        check_text(request_key, "request idempotency key", max_length=256)
        now = self.now()
        return await self.store.request_key_claim(
            RequestKeyClaimParams(
                environment=self.environment,
                request_key=request_key,
                now=now,
                expires_at=now + REQUEST_KEY_TTL_MS,
                stale_before=now - _REQUEST_STALE_MS,
            )
        )

    async def answer_request(self, request_key: str, response: str) -> None:
        """Record what a claimed request answered (JSON text)."""
        await self.store.request_key_answer(
            RequestKeyAnswerParams(self.environment, request_key, response)
        )

    async def release_request(self, request_key: str) -> None:
        """Forget a claimed request that failed: its retry runs again."""
        await self.store.request_key_release(RequestKeyReleaseParams(self.environment, request_key))

    async def close(self) -> None:
        """Close the engine; a borrowed store (:meth:`for_environment`) stays open."""
        if self._borrowed_store:
            hub = getattr(self, "_hub", None)
            if hub is not None:
                await hub.close()
            return
        await super().close()
