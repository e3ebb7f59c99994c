-- Flow control: queues with concurrency limits, slot counters per (queue, concurrency key)
-- and per environment, delays, TTL and debounce.
--
-- A run holds a concurrency slot exactly while its status is DEQUEUED or EXECUTING. The
-- triggers below keep the slot counters equal to that, in the same transaction as every
-- status change, whichever code path makes it: the claim reads the counters under the write
-- lock, so a limit holds across all workers without counting runs.

CREATE TABLE queues (
    environment        TEXT NOT NULL,
    name               TEXT NOT NULL,
    concurrency_limit  INTEGER,
    limit_override     INTEGER,
    paused             INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    PRIMARY KEY (environment, name)
);

CREATE TABLE concurrency_slots (
    environment      TEXT NOT NULL,
    queue            TEXT NOT NULL,
    concurrency_key  TEXT NOT NULL,
    running          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (environment, queue, concurrency_key)
);

CREATE TABLE environment_slots (
    environment       TEXT PRIMARY KEY,
    running           INTEGER NOT NULL DEFAULT 0,
    rate_tokens       REAL,
    rate_refilled_at  INTEGER
);

ALTER TABLE runs ADD COLUMN ttl_expires_at INTEGER;

CREATE INDEX runs_ready_by_group
    ON runs (environment, queue, COALESCE(concurrency_key, ''), sort_key, id)
    WHERE status = 'QUEUED';
CREATE INDEX runs_delayed ON runs (environment, delay_until) WHERE status = 'DELAYED';
CREATE INDEX runs_ttl ON runs (environment, ttl_expires_at)
    WHERE ttl_expires_at IS NOT NULL AND status IN ('QUEUED', 'DELAYED');
-- One debounceable run per (environment, task, key) at a time.
CREATE UNIQUE INDEX runs_debounce_key ON runs (environment, task_id, debounce_key)
    WHERE debounce_key IS NOT NULL AND status = 'DELAYED';

CREATE TRIGGER runs_slot_take AFTER UPDATE OF status ON runs
WHEN NEW.status IN ('DEQUEUED', 'EXECUTING') AND OLD.status NOT IN ('DEQUEUED', 'EXECUTING')
BEGIN
    INSERT INTO concurrency_slots (environment, queue, concurrency_key, running)
    VALUES (NEW.environment, NEW.queue, COALESCE(NEW.concurrency_key, ''), 1)
    ON CONFLICT (environment, queue, concurrency_key) DO UPDATE SET running = running + 1;
    INSERT INTO environment_slots (environment, running) VALUES (NEW.environment, 1)
    ON CONFLICT (environment) DO UPDATE SET running = running + 1;
END;

CREATE TRIGGER runs_slot_release AFTER UPDATE OF status ON runs
WHEN OLD.status IN ('DEQUEUED', 'EXECUTING') AND NEW.status NOT IN ('DEQUEUED', 'EXECUTING')
BEGIN
    UPDATE concurrency_slots SET running = running - 1
    WHERE environment = OLD.environment AND queue = OLD.queue
      AND concurrency_key = COALESCE(OLD.concurrency_key, '');
    UPDATE environment_slots SET running = running - 1 WHERE environment = OLD.environment;
END;

CREATE TRIGGER runs_slot_release_on_delete AFTER DELETE ON runs
WHEN OLD.status IN ('DEQUEUED', 'EXECUTING')
BEGIN
    UPDATE concurrency_slots SET running = running - 1
    WHERE environment = OLD.environment AND queue = OLD.queue
      AND concurrency_key = COALESCE(OLD.concurrency_key, '');
    UPDATE environment_slots SET running = running - 1 WHERE environment = OLD.environment;
END;

-- The TTL a task sets (ms), so a process that triggers it by id applies it too.
ALTER TABLE tasks ADD COLUMN ttl_ms INTEGER;
