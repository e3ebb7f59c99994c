-- PostgreSQL twin of the SQLite migration. Versions of the task code (SEMANTICS §12.1).
--
-- A worker registers the version of the code it runs (SHIPYARD_VERSION, else a content hash
-- of its task files) and the tasks that version has. A run triggered for a task no live worker
-- of its environment has is PENDING_VERSION until a worker with the task registers (or the
-- periodic pass of one that has it runs). runs.version (since 0001) is the version a run is
-- locked to: set by the claim to the claiming worker's version, or at trigger time to the
-- parent's for *_and_wait children; while a worker of that version is live only such workers
-- claim the run.

ALTER TABLE workers ADD COLUMN version TEXT;
-- Is a worker of version V live? (the claim asks it for locked runs)
CREATE INDEX workers_by_version ON workers (environment, version) WHERE stopped_at IS NULL;

-- One row per version an environment's workers registered; task_ids is a JSON array.
CREATE TABLE versions (
    environment  TEXT NOT NULL,
    version      TEXT NOT NULL,
    task_ids     TEXT NOT NULL DEFAULT '[]',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (environment, version)
);

CREATE INDEX runs_pending_version ON runs (environment, task_id)
    WHERE status = 'PENDING_VERSION';

-- A run waiting for a version expires by its TTL like a queued one.
DROP INDEX runs_ttl;
CREATE INDEX runs_ttl ON runs (environment, ttl_expires_at)
    WHERE ttl_expires_at IS NOT NULL AND status IN ('QUEUED', 'DELAYED', 'PENDING_VERSION');

-- The trigger functions resolve the engine's tables in the engine's schema whatever the
-- session's search_path (this migration runs with search_path = that schema). Also what
-- Supabase's database linter asks of every function (function_search_path_mutable).
ALTER FUNCTION shipyard_slot_change() SET search_path FROM CURRENT;
ALTER FUNCTION shipyard_status_events() SET search_path FROM CURRENT;
