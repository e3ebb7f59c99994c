-- PostgreSQL twin of the SQLite schema (same tables, columns and meanings).
-- The run engine's core records. Later migrations add queues, waitpoints, schedules and
-- streams; the columns they need on runs (queue, concurrency_key, priority_ms, delay_until,
-- ttl_ms, completion_waitpoint_id, schedule_id, debounce_key) exist from the start.

CREATE TABLE runs (
    id                          TEXT PRIMARY KEY,
    environment                 TEXT NOT NULL,
    task_id                     TEXT NOT NULL,
    status                      TEXT NOT NULL,
    payload                     TEXT,
    output                      TEXT,
    error                       TEXT,
    metadata                    TEXT NOT NULL DEFAULT '{}',
    tags                        TEXT NOT NULL DEFAULT '[]',
    queue                       TEXT NOT NULL,
    concurrency_key             TEXT,
    priority_ms                 BIGINT NOT NULL DEFAULT 0,
    queued_at                   BIGINT NOT NULL,
    sort_key                    BIGINT NOT NULL,
    available_at                BIGINT NOT NULL,
    delay_until                 BIGINT,
    ttl_ms                      BIGINT,
    attempt_number              BIGINT NOT NULL DEFAULT 0,
    max_attempts                BIGINT,
    lease_owner                 TEXT,
    lease_expires_at            BIGINT,
    idempotency_key             TEXT,
    idempotency_key_expires_at  BIGINT,
    debounce_key                TEXT,
    parent_run_id               TEXT,
    root_run_id                 TEXT,
    depth                       BIGINT NOT NULL DEFAULT 0,
    batch_id                    TEXT,
    batch_index                 BIGINT,
    schedule_id                 TEXT,
    completion_waitpoint_id     TEXT,
    machine                     TEXT,
    max_duration_s              BIGINT,
    version                     TEXT,
    trigger_function            TEXT NOT NULL DEFAULT 'trigger',
    is_test                     BIGINT NOT NULL DEFAULT 0,
    created_at                  BIGINT NOT NULL,
    updated_at                  BIGINT NOT NULL,
    started_at                  BIGINT,
    finished_at                 BIGINT,
    expired_at                  BIGINT
);

-- Idempotency is enforced here, never by check-then-insert.
CREATE UNIQUE INDEX runs_idempotency_key ON runs (environment, task_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX runs_ready ON runs (environment, sort_key) WHERE status = 'QUEUED';
CREATE INDEX runs_leased ON runs (lease_expires_at) WHERE status = 'EXECUTING';
CREATE INDEX runs_owner ON runs (lease_owner) WHERE status = 'EXECUTING';
CREATE INDEX runs_by_environment ON runs (environment, id);
CREATE INDEX runs_by_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
CREATE INDEX runs_by_batch ON runs (batch_id, batch_index) WHERE batch_id IS NOT NULL;

CREATE TABLE run_tags (
    run_id  TEXT NOT NULL,
    tag     TEXT NOT NULL,
    PRIMARY KEY (run_id, tag)
);
CREATE INDEX run_tags_by_tag ON run_tags (tag, run_id);

CREATE TABLE attempts (
    id           BIGSERIAL PRIMARY KEY,
    run_id       TEXT NOT NULL,
    number       BIGINT NOT NULL,
    status       TEXT NOT NULL,
    worker_id    TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT,
    error        TEXT
);
CREATE INDEX attempts_by_run ON attempts (run_id, number);

CREATE TABLE batches (
    id               TEXT PRIMARY KEY,
    environment      TEXT NOT NULL,
    status           TEXT NOT NULL,
    run_count        BIGINT NOT NULL,
    idempotency_key  TEXT,
    created_at       BIGINT NOT NULL,
    completed_at     BIGINT
);

-- The change feed: logs, spans, metadata, tags and status changes, in order.
CREATE TABLE run_events (
    id          BIGSERIAL PRIMARY KEY,
    run_id      TEXT NOT NULL,
    ts          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    level       TEXT,
    message     TEXT NOT NULL,
    attributes  TEXT
);
CREATE INDEX run_events_by_run ON run_events (run_id, id);

CREATE TABLE tasks (
    environment     TEXT NOT NULL,
    id              TEXT NOT NULL,
    file_path       TEXT NOT NULL,
    queue           TEXT NOT NULL,
    max_attempts    BIGINT NOT NULL,
    retry           TEXT,
    max_duration_s  BIGINT,
    machine         TEXT,
    description     TEXT,
    payload_schema  TEXT,
    worker_id       TEXT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (environment, id)
);

CREATE TABLE workers (
    id             TEXT PRIMARY KEY,
    environment    TEXT NOT NULL,
    host           TEXT NOT NULL,
    pid            BIGINT NOT NULL,
    doorbell_port  BIGINT,
    started_at     BIGINT NOT NULL,
    heartbeat_at   BIGINT NOT NULL,
    stopped_at     BIGINT
);
CREATE INDEX workers_live ON workers (environment, heartbeat_at) WHERE stopped_at IS NULL;

-- attempts(number), depth, batch_index and is_test are small; BIGINT keeps one numeric type
-- for every column the two backends share, so rows decode the same way.
