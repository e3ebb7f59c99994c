-- Flow control: queues with concurrency limits, slot counters per (queue, concurrency key)
-- and per environment, delays, TTL and debounce. PostgreSQL twin of the SQLite migration.
--
-- A run holds a concurrency slot exactly while its status is DEQUEUED or EXECUTING; the
-- trigger below keeps the counters equal to that in the same transaction as every status
-- change. It always updates the environment row before the group row, the same order the
-- claim takes its locks in, so claims and completions cannot deadlock.

CREATE TABLE queues (
    environment        TEXT NOT NULL,
    name               TEXT NOT NULL,
    concurrency_limit  BIGINT,
    limit_override     BIGINT,
    paused             BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (environment, name)
);

CREATE TABLE concurrency_slots (
    environment      TEXT NOT NULL,
    queue            TEXT NOT NULL,
    concurrency_key  TEXT NOT NULL,
    running          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (environment, queue, concurrency_key)
);

CREATE TABLE environment_slots (
    environment       TEXT PRIMARY KEY,
    running           BIGINT NOT NULL DEFAULT 0,
    rate_tokens       DOUBLE PRECISION,
    rate_refilled_at  BIGINT
);

ALTER TABLE runs ADD COLUMN ttl_expires_at BIGINT;

CREATE INDEX runs_ready_by_group
    ON runs (environment, queue, (COALESCE(concurrency_key, '')), sort_key, id)
    WHERE status = 'QUEUED';
CREATE INDEX runs_delayed ON runs (environment, delay_until) WHERE status = 'DELAYED';
CREATE INDEX runs_ttl ON runs (environment, ttl_expires_at)
    WHERE ttl_expires_at IS NOT NULL AND status IN ('QUEUED', 'DELAYED');
CREATE UNIQUE INDEX runs_debounce_key ON runs (environment, task_id, debounce_key)
    WHERE debounce_key IS NOT NULL AND status = 'DELAYED';

CREATE FUNCTION shipyard_slot_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status IN ('DEQUEUED', 'EXECUTING') THEN
        INSERT INTO environment_slots (environment, running) VALUES (NEW.environment, 1)
        ON CONFLICT (environment) DO UPDATE SET running = environment_slots.running + 1;
        INSERT INTO concurrency_slots (environment, queue, concurrency_key, running)
        VALUES (NEW.environment, NEW.queue, COALESCE(NEW.concurrency_key, ''), 1)
        ON CONFLICT (environment, queue, concurrency_key)
        DO UPDATE SET running = concurrency_slots.running + 1;
    ELSE
        UPDATE environment_slots SET running = running - 1
        WHERE environment = OLD.environment;
        UPDATE concurrency_slots SET running = running - 1
        WHERE environment = OLD.environment AND queue = OLD.queue
          AND concurrency_key = COALESCE(OLD.concurrency_key, '');
    END IF;
    RETURN NULL;
END;
$$;

-- The WHEN clauses keep the function off the hot path unless a run takes or gives a slot.
CREATE TRIGGER runs_slots_update
AFTER UPDATE OF status ON runs
FOR EACH ROW
WHEN ((OLD.status IN ('DEQUEUED', 'EXECUTING')) <> (NEW.status IN ('DEQUEUED', 'EXECUTING')))
EXECUTE FUNCTION shipyard_slot_change();

CREATE TRIGGER runs_slots_delete
AFTER DELETE ON runs
FOR EACH ROW
WHEN (OLD.status IN ('DEQUEUED', 'EXECUTING'))
EXECUTE FUNCTION shipyard_slot_change();

-- The TTL a task sets (ms), so a process that triggers it by id applies it too.
ALTER TABLE tasks ADD COLUMN ttl_ms BIGINT;
