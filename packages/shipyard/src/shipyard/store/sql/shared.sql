-- Named queries both backends run as written, loaded once (store/sql.py). Values are always
-- bound: ``:name`` here, translated to psycopg's ``%(name)s`` for PostgreSQL at load time.
-- Portable spellings: CASE instead of MAX()/GREATEST(), CAST(:x AS BIGINT|TEXT) where
-- PostgreSQL cannot infer a parameter's type (a NULL, a SELECT list), ON CONFLICT DO NOTHING.
-- List parameters (JSON arrays) and row locks differ: those queries are in the dialect files.
-- Every operation is scoped by :environment.

-- fragment: run_wake_set
-- What a wake sets: WAITING → QUEUED to resume (queue position kept), and where the next
-- wake of the same attempt starts checking its links (0019): past every link it has now, all
-- settled (run_unblocked held), since its later durable calls link at higher numbers.
status = 'QUEUED', resume_state = 'RESUMING', available_at = :now, updated_at = :now,
wait_floor_attempt = attempt_number, wait_floor_seq = (
    SELECT COALESCE(MAX(f.seq) + 1, 0) FROM run_waitpoints f
    WHERE f.run_id = runs.id AND f.attempt_number = runs.attempt_number)

-- fragment: run_unblocked
-- A run none of whose current waitpoint links is pending: the links of its attempt from where
-- its last wake left off (0019; every link of a new attempt), so a loop of waits does not
-- check one more link per iteration.
NOT EXISTS (
    SELECT 1 FROM run_waitpoints rw JOIN waitpoints w ON w.id = rw.waitpoint_id
    WHERE rw.run_id = runs.id AND rw.attempt_number = runs.attempt_number
      AND rw.seq >= CASE WHEN runs.wait_floor_attempt = runs.attempt_number
                        THEN runs.wait_floor_seq ELSE 0 END
      AND w.status = 'PENDING'
)

-- name: run_tag_insert
INSERT INTO run_tags (run_id, tag) VALUES (:run_id, :tag) ON CONFLICT DO NOTHING;

-- name: run_get
SELECT * FROM runs WHERE environment = :environment AND id = :id;

-- name: run_get_by_idempotency_key
SELECT * FROM runs
WHERE environment = :environment AND task_id = :task_id AND idempotency_key = :idempotency_key;

-- name: run_clear_idempotency_key
UPDATE runs SET idempotency_key = NULL, idempotency_key_expires_at = NULL, updated_at = :now
WHERE environment = :environment AND id = :id;

-- name: run_debounce_push
-- Pushes only move later. Trailing mode also takes the newest trigger's data.
UPDATE runs SET
    delay_until = CASE WHEN delay_until > :delay_until THEN delay_until ELSE :delay_until END,
    available_at = CASE WHEN delay_until > :delay_until THEN delay_until ELSE :delay_until END,
    queued_at = CASE WHEN delay_until > :delay_until THEN delay_until ELSE :delay_until END,
    sort_key = CASE WHEN delay_until > :delay_until THEN delay_until ELSE :delay_until END
        - priority_ms,
    ttl_expires_at = CASE WHEN ttl_ms IS NULL THEN NULL
        ELSE CASE WHEN delay_until > :delay_until THEN delay_until ELSE :delay_until END
            + ttl_ms END,
    payload = CASE WHEN :trailing = 1 THEN CAST(:payload AS TEXT) ELSE payload END,
    metadata = CASE WHEN :trailing = 1 THEN CAST(:metadata AS TEXT) ELSE metadata END,
    tags = CASE WHEN :trailing = 1 THEN CAST(:tags AS TEXT) ELSE tags END,
    max_attempts = CASE WHEN :trailing = 1 THEN CAST(:max_attempts AS BIGINT)
                        ELSE max_attempts END,
    max_duration_s = CASE WHEN :trailing = 1 THEN CAST(:max_duration_s AS BIGINT)
                          ELSE max_duration_s END,
    machine = CASE WHEN :trailing = 1 THEN CAST(:machine AS TEXT) ELSE machine END,
    updated_at = :now
WHERE environment = :environment AND id = :id AND status = 'DELAYED'
RETURNING *;

-- name: run_debounce_release
-- The run keeps its time but stops absorbing triggers (max_delay reached).
UPDATE runs SET debounce_key = NULL, updated_at = :now
WHERE environment = :environment AND id = :id;

-- name: run_tags_delete
DELETE FROM run_tags WHERE run_id = :run_id;

-- name: run_finish_fence
-- Whether a finish would be accepted; asked under the write lock, so it holds until the
-- finish (the attempt's events go in first, before the status change appends its event).
SELECT 1 FROM runs
WHERE environment = :environment AND id = :run_id AND status = 'EXECUTING'
  AND attempt_number = :attempt_number AND lease_owner = :worker_id;

-- name: run_finish
UPDATE runs SET
    status = :status,
    output = CAST(:output AS TEXT),
    error = CAST(:error AS TEXT),
    available_at = COALESCE(CAST(:retry_at AS BIGINT), available_at),
    finished_at = CASE WHEN :status = 'QUEUED' THEN NULL ELSE :now END,
    lease_owner = NULL,
    lease_expires_at = NULL,
    updated_at = :now
WHERE environment = :environment
  AND id = :run_id
  AND status = 'EXECUTING'
  AND attempt_number = :attempt_number
  AND lease_owner = :worker_id;

-- name: attempt_finish
UPDATE attempts SET status = :attempt_status, finished_at = :now, error = CAST(:error AS TEXT)
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
WHERE environment = :environment
  AND id = :run_id
  AND status = 'EXECUTING'
  AND attempt_number = :attempt_number
  AND lease_owner = :worker_id;

-- name: attempt_release
UPDATE attempts SET status = 'RELEASED', finished_at = :now
WHERE run_id = :run_id AND number = :attempt_number AND status = 'EXECUTING';

-- name: attempt_crash
UPDATE attempts SET status = 'CRASHED', finished_at = :now, error = :crash_error
WHERE run_id = :run_id AND number = :attempt_number AND status = 'EXECUTING';

-- name: attempt_cancel
UPDATE attempts SET status = 'CANCELED', finished_at = :now
WHERE run_id = :run_id AND status = 'EXECUTING';

-- name: run_metadata_set
UPDATE runs SET metadata = :metadata, updated_at = :now
WHERE environment = :environment AND id = :run_id;

-- name: run_tags_set
UPDATE runs SET tags = :tags, updated_at = :now
WHERE environment = :environment AND id = :run_id;

-- name: run_event_insert
-- Written only for a run of the environment.
INSERT INTO run_events (run_id, ts, kind, level, message, attributes)
SELECT CAST(:run_id AS TEXT), CAST(:ts AS BIGINT), CAST(:kind AS TEXT), CAST(:level AS TEXT),
       CAST(:message AS TEXT), CAST(:attributes AS TEXT)
WHERE EXISTS (SELECT 1 FROM runs WHERE id = :run_id AND environment = :environment);

-- name: run_events_list
SELECT id, run_id, ts, kind, level, message, attributes FROM run_events
WHERE run_id = :run_id AND id > :after_id
  AND EXISTS (SELECT 1 FROM runs WHERE id = :run_id AND environment = :environment)
ORDER BY id
LIMIT :limit;

-- name: attempt_list
SELECT run_id, number, status, worker_id, started_at, finished_at, error FROM attempts
WHERE run_id = :run_id
  AND EXISTS (SELECT 1 FROM runs WHERE id = :run_id AND environment = :environment)
ORDER BY id;

-- name: retention_due
-- Whether a retention pass has anything to delete (two index probes, no lock). The oldest
-- finish, not "EXISTS (... finished_at < :before)": PostgreSQL's generic plan of that guesses
-- a third of the runs match and reads the table from the start, through every queued run.
SELECT 1 WHERE (
    SELECT finished_at FROM runs
    WHERE environment = :environment AND finished_at IS NOT NULL
    ORDER BY finished_at LIMIT 1
) < :before OR EXISTS (
    SELECT 1 FROM waitpoints
    WHERE environment = :environment AND created_at < :before AND status = 'COMPLETED'
      AND completed_at < :before
);

-- name: retention_runs
-- The runs that finished longest ago first (runs_finished: a range, however many runs).
SELECT id FROM runs
WHERE environment = :environment
  AND finished_at IS NOT NULL AND finished_at < :before
  AND status IN ('COMPLETED', 'FAILED', 'CRASHED', 'SYSTEM_FAILURE', 'CANCELED', 'EXPIRED',
                 'TIMED_OUT')
ORDER BY finished_at
LIMIT :limit;

-- name: attempts_delete
DELETE FROM attempts WHERE run_id = :run_id;

-- name: run_events_delete
DELETE FROM run_events WHERE run_id = :run_id;

-- name: run_waitpoints_delete
DELETE FROM run_waitpoints WHERE run_id = :run_id;

-- name: run_delete
DELETE FROM runs WHERE id = :run_id;

-- name: retention_waitpoints
-- Completed waitpoints older than the cutoff that no remaining run is linked to.
DELETE FROM waitpoints WHERE id IN (
    SELECT w.id FROM waitpoints w
    WHERE w.environment = :environment AND w.status = 'COMPLETED'
      -- created before the cutoff too: a range of waitpoints_by_environment, not all of them
      AND w.created_at < :before AND w.completed_at < :before
      AND NOT EXISTS (SELECT 1 FROM run_waitpoints rw WHERE rw.waitpoint_id = w.id)
    LIMIT :limit
);

-- name: run_expire_due
-- TTL applies only to runs that never started (retries and released runs are never expired);
-- a run waiting for a worker with its task (PENDING_VERSION) expires like a queued one.
UPDATE runs SET status = 'EXPIRED', error = :expired_error, expired_at = :now,
    finished_at = :now, updated_at = :now
WHERE environment = :environment
  AND status IN ('QUEUED', 'DELAYED', 'PENDING_VERSION')
  AND started_at IS NULL
  AND ttl_expires_at <= :now
RETURNING id;

-- name: run_promote_due
UPDATE runs SET status = 'QUEUED', available_at = delay_until, updated_at = :now
WHERE environment = :environment AND status = 'DELAYED' AND delay_until <= :now
RETURNING id;

-- name: run_reschedule
UPDATE runs SET
    delay_until = :delay_until,
    available_at = :delay_until,
    queued_at = :delay_until,
    sort_key = :delay_until - priority_ms,
    ttl_expires_at = CASE WHEN ttl_ms IS NULL THEN NULL ELSE :delay_until + ttl_ms END,
    updated_at = :now
WHERE environment = :environment AND id = :run_id AND status = 'DELAYED'
RETURNING *;

-- name: batch_insert
INSERT INTO batches (id, environment, status, run_count, idempotency_key, created_at, completed_at)
VALUES (:id, :environment, 'COMPLETED', :run_count, :idempotency_key, :created_at, :created_at);

-- name: batch_set_run_ids
UPDATE batches SET run_ids = :run_ids WHERE environment = :environment AND id = :id;

-- name: batch_get
SELECT id, environment, status, run_count, idempotency_key, created_at, completed_at,
       run_ids
FROM batches WHERE environment = :environment AND id = :id;

-- name: batch_runs
SELECT * FROM runs WHERE environment = :environment AND batch_id = :batch_id
ORDER BY batch_index;

-- name: idempotency_key_reset
UPDATE runs SET idempotency_key = NULL, idempotency_key_expires_at = NULL, updated_at = :now
WHERE environment = :environment AND task_id = :task_id AND idempotency_key = :key;

-- name: queue_upsert
INSERT INTO queues (environment, name, concurrency_limit, paused, created_at, updated_at)
VALUES (:environment, :name, :concurrency_limit, 0, :now, :now)
ON CONFLICT (environment, name) DO UPDATE SET
    concurrency_limit = excluded.concurrency_limit, updated_at = excluded.updated_at;

-- name: queue_list
SELECT q.environment, q.name, q.concurrency_limit, q.limit_override, q.paused, q.created_at,
       q.updated_at,
       -- Less what finishes freed and no claim has moved into the counters yet (0018).
       (SELECT CAST(COALESCE(SUM(s.running), 0) AS BIGINT) FROM concurrency_slots s
        WHERE s.environment = q.environment AND s.queue = q.name)
       - (SELECT CAST(COALESCE(SUM(f.released), 0) AS BIGINT) FROM slot_releases f
          WHERE f.environment = q.environment AND f.queue = q.name) AS running,
       (SELECT CAST(COUNT(*) AS BIGINT) FROM runs r
        WHERE r.environment = q.environment AND r.queue = q.name AND r.status = 'QUEUED')
           AS queued
FROM queues q
WHERE q.environment = :environment AND (CAST(:name AS TEXT) IS NULL OR q.name = :name)
ORDER BY q.name;

-- name: queue_update
UPDATE queues SET
    paused = COALESCE(CAST(:paused AS BIGINT), paused),
    limit_override = CASE WHEN :clear_override = 1 THEN NULL
                          ELSE COALESCE(CAST(:limit_override AS BIGINT), limit_override) END,
    updated_at = :now
WHERE environment = :environment AND name = :name;

-- name: environment_slot_ensure
INSERT INTO environment_slots (environment, running) VALUES (:environment, 0)
ON CONFLICT (environment) DO NOTHING;

-- name: environment_rate_set
UPDATE environment_slots SET rate_tokens = :tokens, rate_refilled_at = :now
WHERE environment = :environment;

-- name: worker_upsert
INSERT INTO workers (id, environment, host, pid, doorbell_port, started_at, heartbeat_at,
                     stopped_at, version)
VALUES (:id, :environment, :host, :pid, :doorbell_port, :started_at, :heartbeat_at, NULL,
        :version)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at,
    doorbell_port = excluded.doorbell_port, stopped_at = NULL, version = excluded.version;

-- name: version_upsert
-- The tasks a version has: what its last registering worker brought (0006).
INSERT INTO versions (environment, version, task_ids, created_at, updated_at)
VALUES (:environment, :version, :task_ids, :now, :now)
ON CONFLICT (environment, version) DO UPDATE SET
    task_ids = excluded.task_ids, updated_at = excluded.updated_at;

-- name: version_list
-- Newest registration first, with how many workers of each version are live now.
SELECT v.environment, v.version, v.task_ids, v.created_at, v.updated_at,
       (SELECT CAST(COUNT(*) AS BIGINT) FROM workers w
        WHERE w.environment = v.environment AND w.version = v.version
          AND w.stopped_at IS NULL AND w.heartbeat_at >= :since) AS live_workers,
       (SELECT MAX(w.heartbeat_at) FROM workers w
        WHERE w.environment = v.environment AND w.version = v.version) AS last_heartbeat_at
FROM versions v
WHERE v.environment = :environment
ORDER BY v.updated_at DESC, v.version;

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
SELECT id, environment, host, pid, doorbell_port, started_at, heartbeat_at, stopped_at,
       version
FROM workers
WHERE environment = :environment AND stopped_at IS NULL AND heartbeat_at >= :since;

-- name: worker_stop
UPDATE workers SET stopped_at = :now WHERE environment = :environment AND id = :worker_id;

-- name: worker_wanting_set
UPDATE workers SET wanting_at = :wanting_at
WHERE environment = :environment AND id = :worker_id;

-- name: worker_others
-- The other live workers of this worker's version, and how many of them want more runs than
-- they get.
SELECT count(*), COALESCE(SUM(CASE WHEN wanting_at >= :wanting_since THEN 1 ELSE 0 END), 0)
FROM workers
WHERE environment = :environment AND id <> :worker_id
  AND stopped_at IS NULL AND heartbeat_at >= :live_since
  AND COALESCE(version, '') = COALESCE(CAST(:version AS TEXT), '');

-- name: worker_heartbeat
UPDATE workers SET heartbeat_at = :now WHERE environment = :environment AND id = :worker_id;

-- name: migrations_applied
SELECT name FROM shipyard_migrations;

-- name: migration_record
INSERT INTO shipyard_migrations (name, applied_at) VALUES (:name, :applied_at);

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

-- name: waitpoint_get_by_key
SELECT id, environment, kind, status, completes_at, timeout_at, idempotency_key,
    idempotency_key_expires_at, tags, output, output_is_error, target_id, created_at,
    completed_at
FROM waitpoints WHERE environment = :environment AND idempotency_key = :idempotency_key;

-- name: waitpoint_clear_key
UPDATE waitpoints SET idempotency_key = NULL, idempotency_key_expires_at = NULL
WHERE environment = :environment AND id = :id;

-- name: waitpoint_recorded
SELECT rw.call, w.id, w.environment, w.kind, w.status, w.completes_at, w.timeout_at,
    w.idempotency_key, w.idempotency_key_expires_at, w.tags, w.output, w.output_is_error,
    w.target_id, w.created_at, w.completed_at
FROM run_waitpoints rw JOIN waitpoints w ON w.id = rw.waitpoint_id
WHERE rw.run_id = :run_id AND rw.attempt_number = :attempt_number AND rw.seq = :seq
  AND w.environment = :environment;

-- name: waitpoint_link
-- Only for a run of the environment; a call already linked keeps its waitpoint.
INSERT INTO run_waitpoints (run_id, attempt_number, seq, waitpoint_id, call, created_at)
SELECT CAST(:run_id AS TEXT), CAST(:attempt_number AS BIGINT), CAST(:seq AS BIGINT),
       CAST(:waitpoint_id AS TEXT), CAST(:call AS TEXT), CAST(:now AS BIGINT)
WHERE EXISTS (SELECT 1 FROM runs WHERE id = :run_id AND environment = :environment)
ON CONFLICT DO NOTHING;

-- name: waitpoint_settle_one
-- A waitpoint that is already due (a past date, a child that already finished) resolves
-- before its run would suspend. Token timeouts are left to waitpoint_settle_due.
UPDATE waitpoints SET status = 'COMPLETED', completed_at = :now
WHERE environment = :environment AND id = :id AND status = 'PENDING' AND (
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
-- Whether a resolver pass has anything to do: a date or a token timeout that fell due, or a run
-- or batch waitpoint whose target ended without its finish settling it (a worker that died in
-- between). WAITING runs themselves are not polled (a pass over them cost O(waiting runs) every
-- tick on every worker): every write that completes a waitpoint wakes its runs in the same
-- transaction (token completion, input streams, the resolver), and a suspend reads its
-- waitpoint locked (waitpoint_block_get), so it never misses a completion committed meanwhile.
SELECT 1 WHERE EXISTS (
    SELECT 1 FROM waitpoints WHERE environment = :environment AND status = 'PENDING'
      AND kind = 'DATETIME' AND completes_at <= :now
) OR EXISTS (
    SELECT 1 FROM waitpoints WHERE environment = :environment AND status = 'PENDING'
      AND kind = 'MANUAL' AND timeout_at <= :now
) OR EXISTS (
    SELECT 1 FROM waitpoints w JOIN runs r ON r.id = w.target_id
    WHERE w.environment = :environment AND w.status = 'PENDING' AND w.kind = 'RUN'
      AND r.status IN ('COMPLETED', 'CANCELED', 'FAILED', 'CRASHED', 'SYSTEM_FAILURE',
                       'EXPIRED', 'TIMED_OUT')
) OR EXISTS (
    SELECT 1 FROM waitpoints w
    WHERE w.environment = :environment AND w.status = 'PENDING' AND w.kind = 'BATCH'
      -- A scalar subquery, not NOT EXISTS: PostgreSQL may turn NOT EXISTS into an anti-join
      -- that reads every batched run on every pass; this is one probe per pending waitpoint.
      AND (SELECT 1 FROM runs r WHERE r.batch_id = w.target_id
             AND r.status NOT IN ('COMPLETED', 'CANCELED', 'FAILED', 'CRASHED', 'SYSTEM_FAILURE',
                                  'EXPIRED', 'TIMED_OUT')
           LIMIT 1) IS NULL
);

-- name: run_suspend
-- Fenced like a finish; the lease owner is kept (the worker holding the parked coroutine).
UPDATE runs SET status = 'WAITING', lease_expires_at = NULL, updated_at = :now
WHERE environment = :environment AND id = :run_id AND status = 'EXECUTING'
  AND attempt_number = :attempt_number AND lease_owner = :worker_id;

-- name: stream_run_status
SELECT status FROM runs WHERE environment = :environment AND id = :run_id;

-- name: stream_create
INSERT INTO streams (run_id, stream_id, next_index, total_bytes, created_at, updated_at)
VALUES (:run_id, :stream_id, 0, 0, :now, :now)
ON CONFLICT DO NOTHING;

-- name: stream_reserve
-- Takes the stream's row (PostgreSQL: locked until commit), so concurrent appends to one
-- stream get dense indexes in commit order. Returns the first index and the new size.
UPDATE streams SET next_index = next_index + :count, total_bytes = total_bytes + :bytes,
    updated_at = :now
WHERE run_id = :run_id AND stream_id = :stream_id
RETURNING next_index - :count, total_bytes;

-- name: stream_chunk_insert
INSERT INTO stream_chunks (run_id, stream_id, idx, data, ts)
VALUES (:run_id, :stream_id, :idx, :data, :ts);

-- name: stream_read
SELECT idx, data, ts FROM stream_chunks
WHERE run_id = :run_id AND stream_id = :stream_id AND idx >= :start
  AND EXISTS (SELECT 1 FROM runs WHERE id = :run_id AND environment = :environment)
ORDER BY idx
LIMIT :limit;

-- name: input_data_insert
INSERT INTO input_stream_data (run_id, stream_id, data, created_at, consumed_at)
VALUES (:run_id, :stream_id, :data, :now, CAST(:consumed_at AS BIGINT));

-- name: input_data_oldest
SELECT id, data FROM input_stream_data
WHERE run_id = :run_id AND stream_id = :stream_id AND consumed_at IS NULL
ORDER BY id
LIMIT 1;

-- name: input_data_consume
UPDATE input_stream_data SET consumed_at = :now WHERE id = :id AND consumed_at IS NULL;

-- name: input_wait_insert
INSERT INTO input_stream_waits (waitpoint_id, run_id, stream_id, created_at)
VALUES (:waitpoint_id, :run_id, :stream_id, :now)
ON CONFLICT DO NOTHING;

-- name: input_wait_pending
-- The oldest .wait() still suspended on this stream (a timed-out token no longer counts).
SELECT w.waitpoint_id FROM input_stream_waits w
JOIN waitpoints p ON p.id = w.waitpoint_id
WHERE w.run_id = :run_id AND w.stream_id = :stream_id AND p.status = 'PENDING'
ORDER BY w.created_at, w.waitpoint_id
LIMIT 1;

-- name: input_wait_delete
DELETE FROM input_stream_waits WHERE waitpoint_id = :waitpoint_id;

-- name: access_key_insert
INSERT INTO access_keys (id, environment, name, prefix, key_hash, created_at)
VALUES (:id, :environment, :name, :prefix, :key_hash, :now);

-- name: access_key_list
SELECT id, environment, name, prefix, created_at, revoked_at FROM access_keys
WHERE (CAST(:environment AS TEXT) IS NULL OR environment = :environment)
ORDER BY created_at, id;

-- name: access_key_get
SELECT id, environment, name, prefix, created_at, revoked_at FROM access_keys WHERE id = :id;

-- name: access_key_revoke
UPDATE access_keys SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL;

-- name: access_key_find
SELECT id, environment, name, prefix, created_at, revoked_at FROM access_keys
WHERE key_hash = :key_hash AND revoked_at IS NULL;

-- name: signing_key_insert
INSERT INTO signing_keys (environment, signing_key, created_at)
VALUES (:environment, :signing_key, :now)
ON CONFLICT (environment) DO NOTHING;

-- name: signing_key_get
SELECT signing_key FROM signing_keys WHERE environment = :environment;

-- name: used_token_purge
DELETE FROM used_tokens WHERE expires_at < :now;

-- name: used_token_insert
INSERT INTO used_tokens (environment, jti, used_at, expires_at)
VALUES (:environment, :jti, :now, :expires_at)
ON CONFLICT (environment, jti) DO NOTHING;

-- name: request_key_purge
DELETE FROM request_keys WHERE expires_at < :now;

-- name: request_key_claim
-- A new key, or one whose first request never answered (it crashed) and went stale.
INSERT INTO request_keys (environment, request_key, response, created_at, expires_at)
VALUES (:environment, :request_key, NULL, :now, :expires_at)
ON CONFLICT (environment, request_key) DO UPDATE SET created_at = excluded.created_at,
    expires_at = excluded.expires_at
WHERE request_keys.response IS NULL AND request_keys.created_at < :stale_before;

-- name: request_key_get
SELECT response FROM request_keys
WHERE environment = :environment AND request_key = :request_key AND expires_at >= :now;

-- name: request_key_answer
UPDATE request_keys SET response = :response
WHERE environment = :environment AND request_key = :request_key;

-- name: request_key_release
DELETE FROM request_keys
WHERE environment = :environment AND request_key = :request_key AND response IS NULL;

-- -- schedules (0009) ---------------------------------------------------------------------------

-- name: schedule_insert
-- A new schedule; a key already held (deduplication key, or environment and task of a
-- declarative schedule) inserts nothing: the caller updates that row instead.
INSERT INTO schedules (
    id, environment, type, task_id, cron, timezone, fire_window, deduplication_key,
    external_id, environments, active, next_run, next_run_at, last_run, created_at, updated_at
) VALUES (
    :id, :environment, :type, :task_id, :cron, :timezone, :fire_window, :deduplication_key,
    :external_id, :environments, :active, :next_run, :next_run_at, :last_run, :created_at,
    :updated_at
)
ON CONFLICT DO NOTHING;

-- name: schedule_get_imperative
SELECT * FROM schedules WHERE type = 'IMPERATIVE' AND deduplication_key = :deduplication_key;

-- name: schedule_get_declarative
SELECT * FROM schedules
WHERE type = 'DECLARATIVE' AND environment = :environment AND task_id = :task_id;

-- name: schedule_update_imperative
-- The same deduplication key updates (and moves the schedule to this environment). The next
-- tick is kept unless what decides it changed. SET expressions read the row as it was.
UPDATE schedules SET
    environment = :environment,
    task_id = :task_id,
    next_run = CASE WHEN cron = :cron AND timezone = :timezone
                         AND COALESCE(fire_window, '') = COALESCE(CAST(:fire_window AS TEXT), '')
                         AND next_run IS NOT NULL
                    THEN next_run ELSE CAST(:next_run AS BIGINT) END,
    next_run_at = CASE WHEN cron = :cron AND timezone = :timezone
                         AND COALESCE(fire_window, '') = COALESCE(CAST(:fire_window AS TEXT), '')
                         AND next_run IS NOT NULL
                    THEN next_run_at ELSE CAST(:next_run_at AS BIGINT) END,
    cron = :cron,
    timezone = :timezone,
    fire_window = :fire_window,
    external_id = :external_id,
    updated_at = :now
WHERE type = 'IMPERATIVE' AND deduplication_key = :deduplication_key;

-- name: schedule_update_declarative
UPDATE schedules SET
    next_run = CASE WHEN cron = :cron AND timezone = :timezone
                         AND COALESCE(fire_window, '') = COALESCE(CAST(:fire_window AS TEXT), '')
                         AND next_run IS NOT NULL
                    THEN next_run ELSE CAST(:next_run AS BIGINT) END,
    next_run_at = CASE WHEN cron = :cron AND timezone = :timezone
                         AND COALESCE(fire_window, '') = COALESCE(CAST(:fire_window AS TEXT), '')
                         AND next_run IS NOT NULL
                    THEN next_run_at ELSE CAST(:next_run_at AS BIGINT) END,
    cron = :cron,
    timezone = :timezone,
    fire_window = :fire_window,
    environments = :environments,
    updated_at = :now
WHERE type = 'DECLARATIVE' AND environment = :environment AND task_id = :task_id;

-- name: schedule_get
SELECT * FROM schedules WHERE environment = :environment AND id = :id;

-- name: schedule_list
SELECT * FROM schedules
WHERE environment = :environment
  AND (CAST(:type AS TEXT) IS NULL OR type = :type)
  AND (CAST(:task_id AS TEXT) IS NULL OR task_id = :task_id)
ORDER BY created_at, id
LIMIT :limit OFFSET :offset;

-- name: schedule_count
SELECT COUNT(*) FROM schedules
WHERE environment = :environment
  AND (CAST(:type AS TEXT) IS NULL OR type = :type)
  AND (CAST(:task_id AS TEXT) IS NULL OR task_id = :task_id);

-- name: schedule_update
-- An imperative schedule edited by id; the next tick is kept unless what decides it changed.
UPDATE schedules SET
    task_id = :task_id,
    next_run = CASE WHEN cron = :cron AND timezone = :timezone
                         AND COALESCE(fire_window, '') = COALESCE(CAST(:fire_window AS TEXT), '')
                         AND next_run IS NOT NULL
                    THEN next_run ELSE CAST(:next_run AS BIGINT) END,
    next_run_at = CASE WHEN cron = :cron AND timezone = :timezone
                         AND COALESCE(fire_window, '') = COALESCE(CAST(:fire_window AS TEXT), '')
                         AND next_run IS NOT NULL
                    THEN next_run_at ELSE CAST(:next_run_at AS BIGINT) END,
    cron = :cron,
    timezone = :timezone,
    fire_window = :fire_window,
    external_id = :external_id,
    deduplication_key = :deduplication_key,
    updated_at = :now
WHERE environment = :environment AND id = :id AND type = 'IMPERATIVE';

-- name: schedule_set_active
-- Activating moves the next tick to the one given (computed from now: the ticks that passed
-- while inactive never fire); deactivating keeps it, unused.
UPDATE schedules SET
    active = :active,
    next_run = COALESCE(CAST(:next_run AS BIGINT), next_run),
    next_run_at = COALESCE(CAST(:next_run_at AS BIGINT), next_run_at),
    updated_at = :now
WHERE environment = :environment AND id = :id;

-- name: schedule_delete
DELETE FROM schedules
WHERE environment = :environment AND id = :id
  AND (:imperative_only = 0 OR type = 'IMPERATIVE');

-- name: schedule_due
SELECT * FROM schedules
WHERE environment = :environment AND active = 1 AND next_run_at <= :now
ORDER BY next_run_at
LIMIT :limit;

-- name: schedule_next_at
SELECT MIN(next_run_at) FROM schedules WHERE environment = :environment AND active = 1;

-- name: schedule_advance
-- The compare-and-set that fires a tick: only the scheduler that still sees next_run at the
-- tick it fires moves it on. last_run moves only when a run is created.
UPDATE schedules SET
    next_run = :next_run,
    next_run_at = :next_run_at,
    last_run = COALESCE(CAST(:last_run AS BIGINT), last_run),
    updated_at = :now
WHERE environment = :environment AND id = :id AND active = 1 AND next_run = :expected;

-- name: run_set_schedule
UPDATE runs SET schedule_id = :schedule_id WHERE id = :id;
