-- Named queries of the SQLite store, loaded once. Values are always bound parameters;
-- lists travel as JSON arrays and are expanded with json_each.

-- name: run_insert
INSERT INTO runs (
    id, environment, task_id, status, payload, metadata, tags, queue, concurrency_key,
    priority_ms, queued_at, sort_key, available_at, delay_until, ttl_ms, max_attempts,
    idempotency_key, idempotency_key_expires_at, parent_run_id, root_run_id, depth,
    batch_id, batch_index, machine, max_duration_s, trigger_function, is_test,
    created_at, updated_at
) VALUES (
    :id, :environment, :task_id, :status, :payload, :metadata, :tags, :queue, :concurrency_key,
    :priority_ms, :queued_at, :sort_key, :available_at, :delay_until, :ttl_ms, :max_attempts,
    :idempotency_key, :idempotency_key_expires_at, :parent_run_id, :root_run_id, :depth,
    :batch_id, :batch_index, :machine, :max_duration_s, :trigger_function, :is_test,
    :created_at, :created_at
)
ON CONFLICT DO NOTHING;

-- name: run_tag_insert
INSERT OR IGNORE INTO run_tags (run_id, tag) VALUES (:run_id, :tag);

-- name: run_get
SELECT * FROM runs WHERE environment = :environment AND id = :id;

-- name: run_get_by_id
SELECT * FROM runs WHERE id = :id;

-- name: run_get_by_idempotency_key
SELECT * FROM runs
WHERE environment = :environment AND task_id = :task_id AND idempotency_key = :idempotency_key;

-- name: run_clear_idempotency_key
UPDATE runs SET idempotency_key = NULL, idempotency_key_expires_at = NULL, updated_at = :now
WHERE id = :id;

-- name: run_list
SELECT * FROM runs
WHERE environment = :environment
  AND (:cursor IS NULL OR id < :cursor)
  AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)))
  AND (:task_ids IS NULL OR task_id IN (SELECT value FROM json_each(:task_ids)))
  AND (:tag IS NULL OR id IN (SELECT run_id FROM run_tags WHERE tag = :tag))
  AND (:batch_id IS NULL OR batch_id = :batch_id)
  AND (:created_from IS NULL OR created_at >= :created_from)
  AND (:created_to IS NULL OR created_at <= :created_to)
ORDER BY id DESC
LIMIT :limit;

-- name: run_claim
-- max_attempts is locked at the first claim from the task the worker registered.
UPDATE runs SET
    status = 'EXECUTING',
    attempt_number = attempt_number + 1,
    lease_owner = :worker_id,
    lease_expires_at = :lease_expires_at,
    started_at = COALESCE(started_at, :now),
    updated_at = :now,
    max_attempts = COALESCE(
        max_attempts,
        (SELECT t.max_attempts FROM tasks t
         WHERE t.environment = runs.environment AND t.id = runs.task_id)
    )
WHERE id IN (
    SELECT id FROM runs
    WHERE environment = :environment
      AND status = 'QUEUED'
      AND available_at <= :now
      AND task_id IN (SELECT value FROM json_each(:task_ids))
    ORDER BY sort_key
    LIMIT :limit
)
RETURNING *;

-- name: attempt_insert
INSERT INTO attempts (run_id, number, status, worker_id, started_at)
VALUES (:run_id, :number, 'EXECUTING', :worker_id, :now);

-- name: run_finish
UPDATE runs SET
    status = :status,
    output = :output,
    error = :error,
    available_at = COALESCE(:retry_at, available_at),
    finished_at = CASE WHEN :status = 'QUEUED' THEN NULL ELSE :now END,
    lease_owner = NULL,
    lease_expires_at = NULL,
    updated_at = :now
WHERE id = :run_id
  AND status = 'EXECUTING'
  AND attempt_number = :attempt_number
  AND lease_owner = :worker_id;

-- name: attempt_finish
UPDATE attempts SET status = :attempt_status, finished_at = :now, error = :error
WHERE run_id = :run_id AND number = :attempt_number AND status = 'EXECUTING';

-- name: run_release
-- A released attempt does not count: the attempt number goes back so the next claim reuses it.
UPDATE runs SET
    status = 'QUEUED',
    attempt_number = attempt_number - 1,
    available_at = :now,
    lease_owner = NULL,
    lease_expires_at = NULL,
    updated_at = :now
WHERE id = :run_id
  AND status = 'EXECUTING'
  AND attempt_number = :attempt_number
  AND lease_owner = :worker_id;

-- name: attempt_release
UPDATE attempts SET status = 'RELEASED', finished_at = :now
WHERE run_id = :run_id AND number = :attempt_number AND status = 'EXECUTING';

-- name: run_reap_expired
-- A lost worker's attempt counts as crashed; the run retries while attempts remain.
UPDATE runs SET
    status = CASE WHEN attempt_number >= COALESCE(max_attempts, 1) THEN 'CRASHED' ELSE 'QUEUED' END,
    error = CASE WHEN attempt_number >= COALESCE(max_attempts, 1) THEN :crash_error ELSE error END,
    finished_at = CASE WHEN attempt_number >= COALESCE(max_attempts, 1) THEN :now ELSE NULL END,
    available_at = :now,
    lease_owner = NULL,
    lease_expires_at = NULL,
    updated_at = :now
WHERE environment = :environment
  AND status = 'EXECUTING'
  AND lease_expires_at < :now
RETURNING id, attempt_number, status;

-- name: attempt_crash
UPDATE attempts SET status = 'CRASHED', finished_at = :now, error = :crash_error
WHERE run_id = :run_id AND number = :attempt_number AND status = 'EXECUTING';

-- name: run_cancel
-- The lease owner is kept so the executing worker sees the cancel and runs on_cancel.
WITH RECURSIVE tree(id) AS (
    SELECT id FROM runs WHERE environment = :environment AND id = :run_id
    UNION
    SELECT r.id FROM runs r JOIN tree ON r.parent_run_id = tree.id
)
UPDATE runs SET
    status = 'CANCELED',
    error = :error,
    finished_at = :now,
    lease_expires_at = NULL,
    updated_at = :now
WHERE id IN (SELECT id FROM tree)
  AND status NOT IN (SELECT value FROM json_each(:final_statuses))
RETURNING id;

-- name: attempt_cancel
UPDATE attempts SET status = 'CANCELED', finished_at = :now
WHERE run_id = :run_id AND status = 'EXECUTING';

-- name: run_ownership
SELECT id, status, attempt_number, lease_owner FROM runs
WHERE id IN (SELECT value FROM json_each(:ids));

-- name: run_metadata_get
SELECT metadata FROM runs WHERE id = :run_id;

-- name: run_metadata_set
UPDATE runs SET metadata = :metadata, updated_at = :now WHERE id = :run_id;

-- name: run_tags_get
SELECT tags FROM runs WHERE id = :run_id;

-- name: run_tags_set
UPDATE runs SET tags = :tags, updated_at = :now WHERE id = :run_id;

-- name: run_event_insert
INSERT INTO run_events (run_id, ts, kind, level, message, attributes)
VALUES (:run_id, :ts, :kind, :level, :message, :attributes);

-- name: run_events_list
SELECT id, run_id, ts, kind, level, message, attributes FROM run_events
WHERE run_id = :run_id AND id > :after_id
ORDER BY id
LIMIT :limit;

-- name: attempt_list
SELECT run_id, number, status, worker_id, started_at, finished_at, error FROM attempts
WHERE run_id = :run_id
ORDER BY id;

-- name: batch_insert
INSERT INTO batches (id, environment, status, run_count, idempotency_key, created_at, completed_at)
VALUES (:id, :environment, 'COMPLETED', :run_count, :idempotency_key, :created_at, :created_at);

-- name: batch_get
SELECT id, environment, status, run_count, idempotency_key, created_at, completed_at,
       run_ids
FROM batches WHERE environment = :environment AND id = :id;

-- name: batch_runs
SELECT * FROM runs WHERE batch_id = :batch_id ORDER BY batch_index;

-- name: idempotency_key_reset
UPDATE runs SET idempotency_key = NULL, idempotency_key_expires_at = NULL, updated_at = :now
WHERE environment = :environment AND task_id = :task_id AND idempotency_key = :key;

-- name: worker_upsert
INSERT INTO workers (id, environment, host, pid, doorbell_port, started_at, heartbeat_at, stopped_at)
VALUES (:id, :environment, :host, :pid, :doorbell_port, :started_at, :heartbeat_at, NULL)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at,
    doorbell_port = excluded.doorbell_port, stopped_at = NULL;

-- name: task_upsert
INSERT INTO tasks (environment, id, file_path, queue, max_attempts, retry, max_duration_s,
                   machine, description, payload_schema, worker_id, updated_at)
VALUES (:environment, :id, :file_path, :queue, :max_attempts, :retry, :max_duration_s,
        :machine, :description, :payload_schema, :worker_id, :updated_at)
ON CONFLICT (environment, id) DO UPDATE SET
    file_path = excluded.file_path, queue = excluded.queue,
    max_attempts = excluded.max_attempts, retry = excluded.retry,
    max_duration_s = excluded.max_duration_s, machine = excluded.machine,
    description = excluded.description, payload_schema = excluded.payload_schema,
    worker_id = excluded.worker_id, updated_at = excluded.updated_at;

-- name: task_list
SELECT environment, id, file_path, queue, max_attempts, retry, max_duration_s, machine,
       description, payload_schema, worker_id, updated_at
FROM tasks WHERE environment = :environment ORDER BY id;

-- name: worker_list_live
SELECT id, environment, host, pid, doorbell_port, started_at, heartbeat_at, stopped_at
FROM workers
WHERE environment = :environment AND stopped_at IS NULL AND heartbeat_at >= :since;

-- name: worker_stop
UPDATE workers SET stopped_at = :now WHERE id = :worker_id;

-- name: worker_heartbeat_runs
UPDATE runs SET lease_expires_at = :lease_expires_at
WHERE lease_owner = :worker_id AND status = 'EXECUTING';

-- name: worker_heartbeat
UPDATE workers SET heartbeat_at = :now WHERE id = :worker_id;

-- name: runs_by_ids
SELECT * FROM runs WHERE id IN (SELECT value FROM json_each(:ids));

-- name: run_ready_exists
SELECT 1 FROM runs
WHERE environment = :environment
  AND status = 'QUEUED'
  AND available_at <= :now
  AND task_id IN (SELECT value FROM json_each(:task_ids))
LIMIT 1;

-- name: migrations_table
CREATE TABLE IF NOT EXISTS shipyard_migrations (
    name        TEXT PRIMARY KEY,
    applied_at  INTEGER NOT NULL
);

-- name: migrations_applied
SELECT name FROM shipyard_migrations;

-- name: migration_record
INSERT INTO shipyard_migrations (name, applied_at) VALUES (:name, :applied_at);

-- name: batch_set_run_ids
UPDATE batches SET run_ids = :run_ids WHERE id = :id;
