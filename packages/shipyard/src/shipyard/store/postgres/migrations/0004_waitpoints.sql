-- PostgreSQL twin of the SQLite migration. Durable waits: every durable call of a run (wait.for_ over 5 s, wait.until, wait.for_token,
-- trigger_and_wait, batch_trigger_and_wait) has a sequence number in its attempt and a
-- waitpoint holding its request and, once resolved, its result.
--
-- kind: DATETIME (completes at completes_at), MANUAL (a token: completed by a call or the
-- callback URL, or TIMED_OUT at timeout_at), RUN (a child run reaches a final status; the
-- result is read from the run), BATCH (every run of batch target_id is final).
-- status: PENDING, COMPLETED or TIMED_OUT.
--
-- A run blocked on a pending waitpoint is WAITING and holds no slot. When none of the
-- waitpoints of its current attempt is pending it goes back to QUEUED with
-- resume_state = 'RESUMING'; the claim that takes it keeps its attempt number and marks it
-- 'RESUMED', so the worker resumes (or replays) the attempt instead of starting a new one.

ALTER TABLE runs ADD COLUMN resume_state TEXT;

CREATE TABLE waitpoints (
    id                          TEXT PRIMARY KEY,
    environment                 TEXT NOT NULL,
    kind                        TEXT NOT NULL,
    status                      TEXT NOT NULL,
    completes_at                BIGINT,
    timeout_at                  BIGINT,
    idempotency_key             TEXT,
    idempotency_key_expires_at  BIGINT,
    tags                        TEXT NOT NULL DEFAULT '[]',
    output                      TEXT,
    output_is_error             BIGINT NOT NULL DEFAULT 0,
    target_id                   TEXT,
    created_at                  BIGINT NOT NULL,
    completed_at                BIGINT
);
CREATE UNIQUE INDEX waitpoints_idempotency_key ON waitpoints (environment, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX waitpoints_pending ON waitpoints (environment, kind) WHERE status = 'PENDING';
CREATE INDEX waitpoints_by_environment ON waitpoints (environment, created_at);

CREATE TABLE run_waitpoints (
    run_id          TEXT NOT NULL,
    attempt_number  BIGINT NOT NULL,
    seq             BIGINT NOT NULL,
    waitpoint_id    TEXT NOT NULL,
    call            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (run_id, attempt_number, seq)
);
CREATE INDEX run_waitpoints_by_waitpoint ON run_waitpoints (waitpoint_id);
CREATE INDEX runs_waiting ON runs (environment) WHERE status = 'WAITING';
