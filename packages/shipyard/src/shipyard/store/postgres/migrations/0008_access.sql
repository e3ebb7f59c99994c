-- PostgreSQL twin of the SQLite migration.
-- Access to the HTTP API: secret keys per environment, the key each environment signs its
-- public access tokens with, single-use tokens already spent, and request ids seen.
--
-- A secret key is stored as the SHA-256 of it (hex): the key itself is shown once, when it is
-- created, and never again. prefix is its first characters, to tell keys apart in a list.
CREATE TABLE access_keys (
    id           TEXT PRIMARY KEY,
    environment  TEXT NOT NULL,
    name         TEXT,
    prefix       TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX access_keys_by_environment ON access_keys (environment, created_at);

-- The key an environment without a configured SHIPYARD_SECRET_KEY signs its public access
-- tokens and wait token callback URLs with (created with its first secret key).
CREATE TABLE signing_keys (
    environment  TEXT PRIMARY KEY,
    signing_key  TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

-- Single-use public access tokens (trigger tokens) already used, until they expire.
CREATE TABLE used_tokens (
    environment  TEXT NOT NULL,
    jti          TEXT NOT NULL,
    used_at      BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (environment, jti)
);
CREATE INDEX used_tokens_expiry ON used_tokens (expires_at);

-- Request ids (x-trigger-request-idempotency-key) of triggers: a retried request answers what
-- the first one did. response is NULL while the first is in flight.
CREATE TABLE request_keys (
    environment  TEXT NOT NULL,
    request_key  TEXT NOT NULL,
    response     TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (environment, request_key)
);
CREATE INDEX request_keys_expiry ON request_keys (expires_at);
