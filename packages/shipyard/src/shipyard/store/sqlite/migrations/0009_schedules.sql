-- Schedules: a task fired on a cron expression in an IANA time zone.
--
-- type is DECLARATIVE (synced from code when a worker registers its tasks: one per task and
-- environment) or IMPERATIVE (created at run time; its deduplication key is unique across
-- every environment, so a create with the same key updates it, environment included).
-- next_run is the next nominal tick and next_run_at the moment it fires (the nominal tick
-- plus the schedule's window offset), both epoch ms; last_run is the nominal tick that last
-- created a run. A tick is fired by a compare-and-set on next_run in the same transaction that
-- creates its run, so any number of schedulers fire it once.
CREATE TABLE schedules (
    id                 TEXT PRIMARY KEY,
    environment        TEXT NOT NULL,
    type               TEXT NOT NULL,
    task_id            TEXT NOT NULL,
    cron               TEXT NOT NULL,
    timezone           TEXT NOT NULL,
    fire_window        TEXT,
    deduplication_key  TEXT,
    external_id        TEXT,
    environments       TEXT,
    active             INTEGER NOT NULL DEFAULT 1,
    next_run           INTEGER,
    next_run_at        INTEGER,
    last_run           INTEGER,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE UNIQUE INDEX schedules_deduplication_key ON schedules (deduplication_key)
    WHERE type = 'IMPERATIVE';
CREATE UNIQUE INDEX schedules_declarative ON schedules (environment, task_id)
    WHERE type = 'DECLARATIVE';
CREATE INDEX schedules_due ON schedules (environment, next_run_at) WHERE active = 1;
CREATE INDEX schedules_by_environment ON schedules (environment, created_at, id);
CREATE INDEX runs_by_schedule ON runs (schedule_id, created_at) WHERE schedule_id IS NOT NULL;
