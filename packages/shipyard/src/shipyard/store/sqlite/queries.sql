-- Named queries of the SQLite store, loaded once. Values are always bound parameters;
-- lists travel as JSON arrays and are expanded with json_each.

-- name: run_insert
INSERT INTO runs (
    id, environment, task_id, status, payload, metadata, tags, queue, concurrency_key,
    priority_ms, queued_at, sort_key, available_at, delay_until, ttl_ms, max_attempts,
    idempotency_key, idempotency_key_expires_at, parent_run_id, root_run_id, depth,
    batch_id, batch_index, machine, max_duration_s, trigger_function, is_test,
    created_at, updated_at, debounce_key, ttl_expires_at
) VALUES (
    :id, :environment, :task_id, :status, :payload, :metadata, :tags, :queue, :concurrency_key,
    :priority_ms, :queued_at, :sort_key, :available_at, :delay_until, :ttl_ms, :max_attempts,
    :idempotency_key, :idempotency_key_expires_at, :parent_run_id, :root_run_id, :depth,
    :batch_id, :batch_index, :machine, :max_duration_s, :trigger_function, :is_test,
    :created_at, :created_at, :debounce_key, :ttl_expires_at
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

-- name: run_claim_ids
-- The runs were chosen under the write lock by the claim planner (store/claims.py).
-- max_attempts is locked at the first claim from the task the worker registered.
UPDATE runs SET
    status = 'EXECUTING',
    -- A run resuming from a durable wait continues its attempt (resume_state: 0004).
    attempt_number = attempt_number + CASE WHEN resume_state = 'RESUMING' THEN 0 ELSE 1 END,
    resume_state = CASE WHEN resume_state = 'RESUMING' THEN 'RESUMED' ELSE NULL END,
    lease_owner = :worker_id,
    lease_expires_at = :lease_expires_at,
    started_at = COALESCE(started_at, :now),
    updated_at = :now,
    max_attempts = COALESCE(
        max_attempts,
        (SELECT t.max_attempts FROM tasks t
         WHERE t.environment = runs.environment AND t.id = runs.task_id)
    )
WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'QUEUED'
RETURNING *;

-- name: environment_running
SELECT running FROM environment_slots WHERE environment = :environment;

-- name: ready_group_first
SELECT queue, COALESCE(concurrency_key, '') FROM runs
WHERE environment = :environment AND status = 'QUEUED'
ORDER BY queue, COALESCE(concurrency_key, '')
LIMIT 1;

-- name: ready_group_next
-- One index probe per (queue, concurrency key) group that has queued runs (a skip scan). Two
-- probes joined: SQLite only bounds an index search by the first column of a row-value
-- comparison, which would walk every queued run of the queue.
SELECT * FROM (
    SELECT queue, COALESCE(concurrency_key, '') FROM runs
    WHERE environment = :environment AND status = 'QUEUED'
      AND queue = :queue AND COALESCE(concurrency_key, '') > :concurrency_key
    ORDER BY queue, COALESCE(concurrency_key, '')
    LIMIT 1
)
UNION ALL
SELECT * FROM (
    SELECT queue, COALESCE(concurrency_key, '') FROM runs
    WHERE environment = :environment AND status = 'QUEUED' AND queue > :queue
    ORDER BY queue, COALESCE(concurrency_key, '')
    LIMIT 1
)
LIMIT 1;

-- name: group_state
SELECT q.concurrency_limit, q.limit_override, COALESCE(q.paused, 0), COALESCE(s.running, 0)
FROM (SELECT 1) AS one
LEFT JOIN queues q ON q.environment = :environment AND q.name = :queue
LEFT JOIN concurrency_slots s ON s.environment = :environment AND s.queue = :queue
    AND s.concurrency_key = :concurrency_key;

-- name: group_ready_runs
SELECT id, sort_key FROM runs
WHERE environment = :environment AND status = 'QUEUED'
  AND queue = :queue AND COALESCE(concurrency_key, '') = :concurrency_key
  AND available_at <= :now
  AND task_id IN (SELECT value FROM json_each(:task_ids))
ORDER BY sort_key, id
LIMIT :limit;

-- name: attempt_resume
UPDATE attempts SET worker_id = :worker_id, status = 'EXECUTING'
WHERE run_id = :run_id AND number = :number;

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
                   machine, description, payload_schema, worker_id, updated_at, ttl_ms)
VALUES (:environment, :id, :file_path, :queue, :max_attempts, :retry, :max_duration_s,
        :machine, :description, :payload_schema, :worker_id, :updated_at, :ttl_ms)
ON CONFLICT (environment, id) DO UPDATE SET
    file_path = excluded.file_path, queue = excluded.queue,
    max_attempts = excluded.max_attempts, retry = excluded.retry,
    max_duration_s = excluded.max_duration_s, machine = excluded.machine,
    description = excluded.description, payload_schema = excluded.payload_schema,
    worker_id = excluded.worker_id, updated_at = excluded.updated_at,
    ttl_ms = excluded.ttl_ms;

-- name: task_list
SELECT environment, id, file_path, queue, max_attempts, retry, max_duration_s, machine,
       description, payload_schema, worker_id, updated_at, ttl_ms
FROM tasks WHERE environment = :environment ORDER BY id;

-- name: worker_list_live
SELECT id, environment, host, pid, doorbell_port, started_at, heartbeat_at, stopped_at
FROM workers
WHERE environment = :environment AND stopped_at IS NULL AND heartbeat_at >= :since;

-- name: worker_stop
UPDATE workers SET stopped_at = :now WHERE id = :worker_id;

-- name: worker_heartbeat_runs
UPDATE runs SET lease_expires_at = :lease_expires_at
WHERE lease_owner = :worker_id AND status = 'EXECUTING'
  AND id IN (SELECT value FROM json_each(:run_ids));

-- name: worker_heartbeat
UPDATE workers SET heartbeat_at = :now WHERE id = :worker_id;

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

-- name: queue_upsert
INSERT INTO queues (environment, name, concurrency_limit, paused, created_at, updated_at)
VALUES (:environment, :name, :concurrency_limit, 0, :now, :now)
ON CONFLICT (environment, name) DO UPDATE SET
    concurrency_limit = excluded.concurrency_limit, updated_at = excluded.updated_at;

-- name: queue_list
SELECT q.environment, q.name, q.concurrency_limit, q.limit_override, q.paused, q.created_at,
       q.updated_at,
       (SELECT COALESCE(SUM(s.running), 0) FROM concurrency_slots s
        WHERE s.environment = q.environment AND s.queue = q.name) AS running,
       (SELECT COUNT(*) FROM runs r
        WHERE r.environment = q.environment AND r.queue = q.name AND r.status = 'QUEUED')
           AS queued
FROM queues q
WHERE q.environment = :environment
ORDER BY q.name;

-- name: queue_update
UPDATE queues SET
    paused = COALESCE(:paused, paused),
    limit_override = CASE WHEN :clear_override THEN NULL
                          ELSE COALESCE(:limit_override, limit_override) END,
    updated_at = :now
WHERE environment = :environment AND name = :name;

-- name: run_promote_due
UPDATE runs SET status = 'QUEUED', available_at = delay_until, updated_at = :now
WHERE environment = :environment AND status = 'DELAYED' AND delay_until <= :now
RETURNING id;

-- name: run_expire_due
-- TTL applies only to runs that never started (retries and released runs are never expired).
UPDATE runs SET status = 'EXPIRED', error = :expired_error, expired_at = :now,
    finished_at = :now, updated_at = :now
WHERE environment = :environment
  AND status IN ('QUEUED', 'DELAYED')
  AND started_at IS NULL
  AND ttl_expires_at <= :now
RETURNING id;

-- name: run_reschedule
UPDATE runs SET
    delay_until = :delay_until,
    available_at = :delay_until,
    queued_at = :delay_until,
    sort_key = :delay_until - priority_ms,
    ttl_expires_at = CASE WHEN ttl_ms IS NULL THEN NULL ELSE :delay_until + ttl_ms END,
    updated_at = :now
WHERE environment = :environment AND id = :run_id AND status = 'DELAYED';

-- name: run_get_debounced
SELECT * FROM runs
WHERE environment = :environment AND task_id = :task_id AND debounce_key = :debounce_key
  AND status = 'DELAYED';

-- name: run_debounce_push
-- Pushes only move later. Trailing mode also takes the newest trigger's data.
UPDATE runs SET
    delay_until = MAX(delay_until, :delay_until),
    available_at = MAX(delay_until, :delay_until),
    queued_at = MAX(delay_until, :delay_until),
    sort_key = MAX(delay_until, :delay_until) - priority_ms,
    ttl_expires_at = CASE WHEN ttl_ms IS NULL THEN NULL
                          ELSE MAX(delay_until, :delay_until) + ttl_ms END,
    payload = CASE WHEN :trailing THEN :payload ELSE payload END,
    metadata = CASE WHEN :trailing THEN :metadata ELSE metadata END,
    tags = CASE WHEN :trailing THEN :tags ELSE tags END,
    max_attempts = CASE WHEN :trailing THEN :max_attempts ELSE max_attempts END,
    max_duration_s = CASE WHEN :trailing THEN :max_duration_s ELSE max_duration_s END,
    machine = CASE WHEN :trailing THEN :machine ELSE machine END,
    updated_at = :now
WHERE id = :id AND status = 'DELAYED';

-- name: run_debounce_release
-- The run keeps its time but stops absorbing triggers (max_delay reached).
UPDATE runs SET debounce_key = NULL, updated_at = :now WHERE id = :id;

-- name: run_tags_delete
DELETE FROM run_tags WHERE run_id = :run_id;

-- name: environment_rate_get
SELECT rate_tokens, rate_refilled_at FROM environment_slots WHERE environment = :environment;

-- name: environment_rate_set
INSERT INTO environment_slots (environment, running, rate_tokens, rate_refilled_at)
VALUES (:environment, 0, :tokens, :now)
ON CONFLICT (environment) DO UPDATE SET rate_tokens = :tokens, rate_refilled_at = :now;

-- name: run_due_exists
SELECT 1 WHERE EXISTS (
    SELECT 1 FROM runs WHERE environment = :environment AND status = 'DELAYED'
        AND delay_until <= :now
) OR EXISTS (
    SELECT 1 FROM runs WHERE environment = :environment AND status IN ('QUEUED', 'DELAYED')
        AND ttl_expires_at <= :now AND started_at IS NULL
);

-- name: waitpoint_insert
INSERT INTO waitpoints (
    id, environment, kind, status, completes_at, timeout_at, idempotency_key,
    idempotency_key_expires_at, tags, target_id, created_at
) VALUES (
    :id, :environment, :kind, 'PENDING', :completes_at, :timeout_at, :idempotency_key,
    :idempotency_key_expires_at, :tags, :target_id, :now
)
ON CONFLICT DO NOTHING
RETURNING id, environment, kind, status, completes_at, timeout_at, idempotency_key,
    idempotency_key_expires_at, tags, output, output_is_error, target_id, created_at,
    completed_at;

-- name: waitpoint_get
SELECT id, environment, kind, status, completes_at, timeout_at, idempotency_key,
    idempotency_key_expires_at, tags, output, output_is_error, target_id, created_at,
    completed_at
FROM waitpoints WHERE environment = :environment AND id = :id;

-- name: waitpoint_get_by_id
SELECT id, environment, kind, status, completes_at, timeout_at, idempotency_key,
    idempotency_key_expires_at, tags, output, output_is_error, target_id, created_at,
    completed_at
FROM waitpoints WHERE id = :id;

-- name: waitpoint_get_by_key
SELECT id, environment, kind, status, completes_at, timeout_at, idempotency_key,
    idempotency_key_expires_at, tags, output, output_is_error, target_id, created_at,
    completed_at
FROM waitpoints WHERE environment = :environment AND idempotency_key = :idempotency_key;

-- name: waitpoint_clear_key
UPDATE waitpoints SET idempotency_key = NULL, idempotency_key_expires_at = NULL
WHERE id = :id;

-- name: waitpoint_list
SELECT id, environment, kind, status, completes_at, timeout_at, idempotency_key,
    idempotency_key_expires_at, tags, output, output_is_error, target_id, created_at,
    completed_at
FROM waitpoints WHERE environment = :environment AND kind = 'MANUAL'
ORDER BY created_at DESC, id DESC;

-- name: waitpoint_recorded
SELECT rw.call, w.id, w.environment, w.kind, w.status, w.completes_at, w.timeout_at,
    w.idempotency_key, w.idempotency_key_expires_at, w.tags, w.output, w.output_is_error,
    w.target_id, w.created_at, w.completed_at
FROM run_waitpoints rw JOIN waitpoints w ON w.id = rw.waitpoint_id
WHERE rw.run_id = :run_id AND rw.attempt_number = :attempt_number AND rw.seq = :seq;

-- name: waitpoint_link
INSERT INTO run_waitpoints (run_id, attempt_number, seq, waitpoint_id, call, created_at)
VALUES (:run_id, :attempt_number, :seq, :waitpoint_id, :call, :now)
ON CONFLICT DO NOTHING;

-- name: waitpoint_settle_one
-- A waitpoint that is already due (a past date, a child that already finished) resolves
-- before its run would suspend. Token timeouts are left to waitpoint_settle_due.
UPDATE waitpoints SET status = 'COMPLETED', completed_at = :now
WHERE id = :id AND status = 'PENDING' AND (
    (kind = 'DATETIME' AND completes_at <= :now)
    OR (kind = 'RUN' AND EXISTS (
        SELECT 1 FROM runs r WHERE r.id = waitpoints.target_id
          AND r.status IN ('COMPLETED', 'CANCELED', 'FAILED', 'CRASHED', 'SYSTEM_FAILURE',
                           'EXPIRED', 'TIMED_OUT')))
    OR (kind = 'BATCH' AND NOT EXISTS (
        SELECT 1 FROM runs r WHERE r.batch_id = waitpoints.target_id
          AND r.status NOT IN ('COMPLETED', 'CANCELED', 'FAILED', 'CRASHED', 'SYSTEM_FAILURE',
                               'EXPIRED', 'TIMED_OUT')))
);

-- name: waitpoint_settle_due
UPDATE waitpoints SET status = 'COMPLETED', completed_at = :now
WHERE environment = :environment AND status = 'PENDING' AND (
    (kind = 'DATETIME' AND completes_at <= :now)
    OR (kind = 'RUN' AND EXISTS (
        SELECT 1 FROM runs r WHERE r.id = waitpoints.target_id
          AND r.status IN ('COMPLETED', 'CANCELED', 'FAILED', 'CRASHED', 'SYSTEM_FAILURE',
                           'EXPIRED', 'TIMED_OUT')))
    OR (kind = 'BATCH' AND NOT EXISTS (
        SELECT 1 FROM runs r WHERE r.batch_id = waitpoints.target_id
          AND r.status NOT IN ('COMPLETED', 'CANCELED', 'FAILED', 'CRASHED', 'SYSTEM_FAILURE',
                               'EXPIRED', 'TIMED_OUT')))
);

-- name: waitpoint_timeout_due
UPDATE waitpoints SET status = 'TIMED_OUT', completed_at = :now, output = :timeout_error,
    output_is_error = 1
WHERE environment = :environment AND status = 'PENDING' AND kind = 'MANUAL'
  AND timeout_at <= :now;

-- name: waitpoint_complete
UPDATE waitpoints SET status = 'COMPLETED', output = :output, output_is_error = 0,
    completed_at = :now
WHERE environment = :environment AND id = :id AND status = 'PENDING' AND kind = 'MANUAL';

-- name: waitpoint_due_exists
SELECT 1 WHERE EXISTS (
    SELECT 1 FROM runs WHERE environment = :environment AND status = 'WAITING'
) OR EXISTS (
    SELECT 1 FROM waitpoints WHERE environment = :environment AND status = 'PENDING'
      AND kind = 'MANUAL' AND timeout_at <= :now
);

-- name: run_suspend
-- Fenced like a finish; the lease owner is kept (the worker holding the parked coroutine).
UPDATE runs SET status = 'WAITING', lease_expires_at = NULL, updated_at = :now
WHERE id = :run_id AND status = 'EXECUTING' AND attempt_number = :attempt_number
  AND lease_owner = :worker_id;

-- name: runs_wake
-- WAITING → QUEUED (queue position kept) for runs none of whose current waitpoints is pending.
UPDATE runs SET status = 'QUEUED', resume_state = 'RESUMING', available_at = :now,
    updated_at = :now
WHERE environment = :environment AND status = 'WAITING' AND NOT EXISTS (
    SELECT 1 FROM run_waitpoints rw JOIN waitpoints w ON w.id = rw.waitpoint_id
    WHERE rw.run_id = runs.id AND rw.attempt_number = runs.attempt_number
      AND w.status = 'PENDING'
)
RETURNING id;
