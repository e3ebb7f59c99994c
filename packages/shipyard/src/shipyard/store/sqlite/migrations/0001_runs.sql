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
    priority_ms                 INTEGER NOT NULL DEFAULT 0,
    queued_at                   INTEGER NOT NULL,
    sort_key                    INTEGER NOT NULL,
    available_at                INTEGER NOT NULL,
    delay_until                 INTEGER,
    ttl_ms                      INTEGER,
    attempt_number              INTEGER NOT NULL DEFAULT 0,
    max_attempts                INTEGER,
    lease_owner                 TEXT,
    lease_expires_at            INTEGER,
    idempotency_key             TEXT,
    idempotency_key_expires_at  INTEGER,
    debounce_key                TEXT,
    parent_run_id               TEXT,
    root_run_id                 TEXT,
    depth                       INTEGER NOT NULL DEFAULT 0,
    batch_id                    TEXT,
    batch_index                 INTEGER,
    schedule_id                 TEXT,
    completion_waitpoint_id     TEXT,
    machine                     TEXT,
    max_duration_s              INTEGER,
    version                     TEXT,
    trigger_function            TEXT NOT NULL DEFAULT 'trigger',
    is_test                     INTEGER NOT NULL DEFAULT 0,
    created_at                  INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL,
    started_at                  INTEGER,
    finished_at                 INTEGER,
    expired_at                  INTEGER
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
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id       TEXT NOT NULL,
    number       INTEGER NOT NULL,
    status       TEXT NOT NULL,
    worker_id    TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    error        TEXT
);
CREATE INDEX attempts_by_run ON attempts (run_id, number);

CREATE TABLE batches (
    id               TEXT PRIMARY KEY,
    environment      TEXT NOT NULL,
    status           TEXT NOT NULL,
    run_count        INTEGER NOT NULL,
    idempotency_key  TEXT,
    created_at       INTEGER NOT NULL,
    completed_at     INTEGER
);

-- The change feed: logs, spans, metadata, tags and status changes, in order.
CREATE TABLE run_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT NOT NULL,
    ts          INTEGER NOT NULL,
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
    max_attempts    INTEGER NOT NULL,
    retry           TEXT,
    max_duration_s  INTEGER,
    machine         TEXT,
    description     TEXT,
    payload_schema  TEXT,
    worker_id       TEXT NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (environment, id)
);

CREATE TABLE workers (
    id             TEXT PRIMARY KEY,
    environment    TEXT NOT NULL,
    host           TEXT NOT NULL,
    pid            INTEGER NOT NULL,
    doorbell_port  INTEGER,
    started_at     INTEGER NOT NULL,
    heartbeat_at   INTEGER NOT NULL,
    stopped_at     INTEGER
);
CREATE INDEX workers_live ON workers (environment, heartbeat_at) WHERE stopped_at IS NULL;
