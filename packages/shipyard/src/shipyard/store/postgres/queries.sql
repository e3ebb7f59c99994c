-- Named queries of the PostgreSQL store, loaded once. Values are always bound parameters
-- (psycopg's %(name)s); lists travel as arrays.

-- name: run_insert
INSERT INTO runs (
    id, environment, task_id, status, payload, metadata, tags, queue, concurrency_key,
    priority_ms, queued_at, sort_key, available_at, delay_until, ttl_ms, max_attempts,
    idempotency_key, idempotency_key_expires_at, parent_run_id, root_run_id, depth,
    batch_id, batch_index, machine, max_duration_s, trigger_function, is_test,
    created_at, updated_at, debounce_key, ttl_expires_at
) VALUES (
    %(id)s, %(environment)s, %(task_id)s, %(status)s, %(payload)s, %(metadata)s, %(tags)s,
    %(queue)s, %(concurrency_key)s, %(priority_ms)s, %(queued_at)s, %(sort_key)s,
    %(available_at)s, %(delay_until)s, %(ttl_ms)s, %(max_attempts)s, %(idempotency_key)s,
    %(idempotency_key_expires_at)s, %(parent_run_id)s, %(root_run_id)s, %(depth)s,
    %(batch_id)s, %(batch_index)s, %(machine)s, %(max_duration_s)s, %(trigger_function)s,
    %(is_test)s, %(created_at)s, %(created_at)s, %(debounce_key)s, %(ttl_expires_at)s
)
ON CONFLICT DO NOTHING
RETURNING *;

-- name: run_insert_notify
-- The common trigger in one statement (one round trip, one commit in autocommit): insert the
-- run and its tags, and NOTIFY in the same transaction, only if the row was inserted. No row
-- back (an idempotency key conflict) means: resolve the key in a transaction (run_insert).
WITH ins AS (
    INSERT INTO runs (
        id, environment, task_id, status, payload, metadata, tags, queue, concurrency_key,
        priority_ms, queued_at, sort_key, available_at, delay_until, ttl_ms, max_attempts,
        idempotency_key, idempotency_key_expires_at, parent_run_id, root_run_id, depth,
        batch_id, batch_index, machine, max_duration_s, trigger_function, is_test,
        created_at, updated_at, debounce_key, ttl_expires_at
    ) VALUES (
        %(id)s, %(environment)s, %(task_id)s, %(status)s, %(payload)s, %(metadata)s, %(tags)s,
        %(queue)s, %(concurrency_key)s, %(priority_ms)s, %(queued_at)s, %(sort_key)s,
        %(available_at)s, %(delay_until)s, %(ttl_ms)s, %(max_attempts)s, %(idempotency_key)s,
        %(idempotency_key_expires_at)s, %(parent_run_id)s, %(root_run_id)s, %(depth)s,
        %(batch_id)s, %(batch_index)s, %(machine)s, %(max_duration_s)s, %(trigger_function)s,
        %(is_test)s, %(created_at)s, %(created_at)s, %(debounce_key)s, %(ttl_expires_at)s
    )
    ON CONFLICT DO NOTHING
    RETURNING *
), tagged AS (
    INSERT INTO run_tags (run_id, tag)
    SELECT ins.id, t.tag FROM ins, unnest(%(tag_list)s::text[]) AS t(tag)
    ON CONFLICT DO NOTHING
)
SELECT ins.*, pg_notify('shipyard_ready', ins.environment) AS notified FROM ins;

-- name: run_tag_insert
INSERT INTO run_tags (run_id, tag) VALUES (%(run_id)s, %(tag)s) ON CONFLICT DO NOTHING;

-- name: run_get
SELECT * FROM runs WHERE environment = %(environment)s AND id = %(id)s;

-- name: run_get_by_idempotency_key
SELECT * FROM runs
WHERE environment = %(environment)s AND task_id = %(task_id)s
  AND idempotency_key = %(idempotency_key)s;

-- name: run_clear_idempotency_key
UPDATE runs SET idempotency_key = NULL, idempotency_key_expires_at = NULL, updated_at = %(now)s
WHERE id = %(id)s;

-- name: run_list
SELECT * FROM runs
WHERE environment = %(environment)s
  AND (%(cursor)s::text IS NULL OR id < %(cursor)s)
  AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s))
  AND (%(task_ids)s::text[] IS NULL OR task_id = ANY(%(task_ids)s))
  AND (%(tag)s::text IS NULL OR id IN (SELECT run_id FROM run_tags WHERE tag = %(tag)s))
  AND (%(batch_id)s::text IS NULL OR batch_id = %(batch_id)s)
  AND (%(created_from)s::bigint IS NULL OR created_at >= %(created_from)s)
  AND (%(created_to)s::bigint IS NULL OR created_at <= %(created_to)s)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: run_ready_exists
SELECT 1 FROM runs
WHERE environment = %(environment)s
  AND status = 'QUEUED'
  AND available_at <= %(now)s
  AND task_id = ANY(%(task_ids)s)
LIMIT 1;

-- name: environment_slot_ensure
INSERT INTO environment_slots (environment, running) VALUES (%(environment)s, 0)
ON CONFLICT (environment) DO NOTHING;

-- name: environment_slot_lock
-- Claims in one environment take this lock first, so the slot counters they read next are
-- exact (every status change that moves a counter updates this row too, in that order).
SELECT running FROM environment_slots WHERE environment = %(environment)s FOR UPDATE;

-- name: run_claim_limited
-- Runs after environment_slot_lock in the same transaction, so its snapshot sees every
-- committed slot change. Mirrors store/claims.py (the SQLite claim runs the same rules in
-- Python): each (queue, concurrency key) group that has queued runs gets
-- room = min(override ?? code limit ?? environment limit, environment limit) − running
-- (none when paused); the environment as a whole gets floor(limit × burst) − running; the
-- oldest priority-adjusted runs within those rooms are leased. Groups are found with a skip
-- scan: one index probe per group. max_attempts is locked at the first claim.
WITH RECURSIVE g(queue, ck) AS (
    (SELECT queue, COALESCE(concurrency_key, '') FROM runs
     WHERE environment = %(environment)s AND status = 'QUEUED'
     ORDER BY queue, COALESCE(concurrency_key, '') LIMIT 1)
    UNION ALL
    SELECT n.queue, n.ck FROM g, LATERAL (
        SELECT queue, COALESCE(concurrency_key, '') AS ck FROM runs
        WHERE environment = %(environment)s AND status = 'QUEUED'
          AND (queue, COALESCE(concurrency_key, '')) > (g.queue, g.ck)
        ORDER BY queue, COALESCE(concurrency_key, '') LIMIT 1
    ) n
), groups AS (
    SELECT g.queue, g.ck,
           LEAST(COALESCE(q.limit_override, q.concurrency_limit, %(environment_limit)s),
                 %(environment_limit)s) - COALESCE(s.running, 0) AS room
    FROM g
    LEFT JOIN queues q ON q.environment = %(environment)s AND q.name = g.queue
    LEFT JOIN concurrency_slots s ON s.environment = %(environment)s AND s.queue = g.queue
        AND s.concurrency_key = g.ck
    WHERE COALESCE(q.paused, 0) = 0
), free AS (
    SELECT LEAST(
        %(limit)s,
        COALESCE(
            (SELECT GREATEST(0, FLOOR(%(environment_limit)s * %(burst_factor)s)::bigint - running)
             FROM environment_slots WHERE environment = %(environment)s),
            0
        )
    ) AS n
), candidates AS (
    SELECT c.id, c.sort_key
    FROM groups
    CROSS JOIN LATERAL (
        SELECT id, sort_key FROM runs
        WHERE environment = %(environment)s AND status = 'QUEUED'
          AND queue = groups.queue AND COALESCE(concurrency_key, '') = groups.ck
          AND available_at <= %(now)s
          AND task_id = ANY(%(task_ids)s)
        ORDER BY sort_key, id
        LIMIT LEAST(groups.room, (SELECT n FROM free))
    ) c
    WHERE groups.room > 0
), chosen AS (
    SELECT id FROM candidates ORDER BY sort_key, id LIMIT (SELECT n FROM free)
), claimed AS (
    UPDATE runs r SET
        status = 'EXECUTING',
        -- A run resuming from a durable wait continues its attempt (resume_state: 0004).
        attempt_number = r.attempt_number
            + CASE WHEN r.resume_state = 'RESUMING' THEN 0 ELSE 1 END,
        resume_state = CASE WHEN r.resume_state = 'RESUMING' THEN 'RESUMED' ELSE NULL END,
        lease_owner = %(worker_id)s,
        lease_expires_at = %(lease_expires_at)s,
        started_at = COALESCE(r.started_at, %(now)s),
        updated_at = %(now)s,
        max_attempts = COALESCE(
            r.max_attempts,
            (SELECT t.max_attempts FROM tasks t
             WHERE t.environment = r.environment AND t.id = r.task_id)
        )
    FROM chosen
    WHERE r.id = chosen.id AND r.status = 'QUEUED'
    RETURNING r.*
), started AS (
    INSERT INTO attempts (run_id, number, status, worker_id, started_at)
    SELECT id, attempt_number, 'EXECUTING', %(worker_id)s, %(now)s FROM claimed
    WHERE resume_state IS DISTINCT FROM 'RESUMED'
), resumed AS (
    UPDATE attempts a SET worker_id = %(worker_id)s, status = 'EXECUTING'
    FROM claimed c
    WHERE c.resume_state = 'RESUMED' AND a.run_id = c.id AND a.number = c.attempt_number
)
SELECT * FROM claimed ORDER BY sort_key, id;

-- name: run_finish_many
-- Fenced by attempt number and lease owner: a stale attempt's row simply does not match.
-- One statement (one transaction, one round trip in autocommit) per batch: runs, attempts and
-- events. Inputs and events travel as one JSON array each: psycopg dumps Python lists into
-- text arrays element by element in Python, while json.dumps is one C call.
--
-- Lock order: the environment's slot row first (the input rows depend on it, so it is locked
-- before any run row), then runs, then — in the slot trigger — the group counters. Claims,
-- cancels and the reaper take the same order, so they cannot deadlock with each other.
WITH env AS MATERIALIZED (
    SELECT environment FROM environment_slots
    WHERE environment = (SELECT environment FROM runs WHERE id = %(first_run_id)s)
    FOR UPDATE
), input AS (
    SELECT i.* FROM json_to_recordset(%(input)s::json) AS i(
        ord bigint, run_id text, attempt_number bigint, worker_id text, status text,
        attempt_status text, output text, error text, retry_at bigint, now bigint
    )
    LEFT JOIN env ON true
), finished AS (
    UPDATE runs r SET
        status = i.status,
        output = i.output,
        error = i.error,
        available_at = COALESCE(i.retry_at, r.available_at),
        finished_at = CASE WHEN i.status = 'QUEUED' THEN NULL ELSE i.now END,
        lease_owner = NULL,
        lease_expires_at = NULL,
        updated_at = i.now
    FROM input i
    WHERE r.id = i.run_id
      AND r.status = 'EXECUTING'
      AND r.attempt_number = i.attempt_number
      AND r.lease_owner = i.worker_id
    RETURNING r.id, i.ord, i.attempt_number, i.attempt_status, i.error, i.now
), attempts_done AS (
    UPDATE attempts a SET status = f.attempt_status, finished_at = f.now, error = f.error
    FROM finished f
    WHERE a.run_id = f.id AND a.number = f.attempt_number AND a.status = 'EXECUTING'
), events AS (
    -- The attempts' events (logs, then the status change), only for accepted inputs, in
    -- order (seq); owner is the ord of the input each event belongs to.
    INSERT INTO run_events (run_id, ts, kind, level, message, attributes)
    SELECT e.run_id, e.ts, e.kind, e.level, e.message, e.attributes
    FROM json_to_recordset(%(events)s::json) AS e(
        seq bigint, owner bigint, run_id text, ts bigint, kind text, level text, message text,
        attributes text
    )
    WHERE e.owner IN (SELECT ord FROM finished)
    ORDER BY e.seq
)
SELECT ord FROM finished;

-- name: run_release
-- A released attempt does not count: the attempt number goes back so the next claim reuses it.
UPDATE runs SET
    status = 'QUEUED',
    attempt_number = attempt_number - 1,
    available_at = %(now)s,
    lease_owner = NULL,
    lease_expires_at = NULL,
    updated_at = %(now)s
WHERE id = %(run_id)s
  AND status = 'EXECUTING'
  AND attempt_number = %(attempt_number)s
  AND lease_owner = %(worker_id)s;

-- name: attempt_release
UPDATE attempts SET status = 'RELEASED', finished_at = %(now)s
WHERE run_id = %(run_id)s AND number = %(attempt_number)s AND status = 'EXECUTING';

-- name: run_reap_expired
-- A lost worker's attempt counts as crashed; the run retries while attempts remain.
-- The environment's slot row is locked first (lock order: see run_finish_many).
WITH env AS MATERIALIZED (
    SELECT environment FROM environment_slots WHERE environment = %(environment)s FOR UPDATE
), expired AS (
    SELECT id FROM runs
    WHERE environment = (SELECT COALESCE(MAX(environment), %(environment)s) FROM env)
      AND status = 'EXECUTING'
      AND lease_expires_at < %(now)s
    FOR UPDATE SKIP LOCKED
), reaped AS (
    UPDATE runs r SET
        status = CASE WHEN r.attempt_number >= COALESCE(r.max_attempts, 1)
                      THEN 'CRASHED' ELSE 'QUEUED' END,
        error = CASE WHEN r.attempt_number >= COALESCE(r.max_attempts, 1)
                     THEN %(crash_error)s ELSE r.error END,
        finished_at = CASE WHEN r.attempt_number >= COALESCE(r.max_attempts, 1)
                           THEN %(now)s ELSE NULL END,
        available_at = %(now)s,
        lease_owner = NULL,
        lease_expires_at = NULL,
        updated_at = %(now)s
    FROM expired
    WHERE r.id = expired.id
    RETURNING r.id, r.attempt_number, r.status
), crashed AS (
    UPDATE attempts a SET status = 'CRASHED', finished_at = %(now)s, error = %(crash_error)s
    FROM reaped
    WHERE a.run_id = reaped.id AND a.number = reaped.attempt_number AND a.status = 'EXECUTING'
)
SELECT id, attempt_number, status FROM reaped;

-- name: run_cancel
-- The lease owner is kept so the executing worker sees the cancel and runs on_cancel.
-- The environment's slot row is locked first (lock order: see run_finish_many).
WITH RECURSIVE env AS MATERIALIZED (
    SELECT environment FROM environment_slots WHERE environment = %(environment)s FOR UPDATE
), tree(id) AS (
    SELECT id FROM runs
    WHERE environment = (SELECT COALESCE(MAX(environment), %(environment)s) FROM env)
      AND id = %(run_id)s
    UNION
    SELECT r.id FROM runs r JOIN tree ON r.parent_run_id = tree.id
), canceled AS (
    UPDATE runs SET
        status = 'CANCELED',
        error = %(error)s,
        finished_at = %(now)s,
        lease_expires_at = NULL,
        updated_at = %(now)s
    WHERE id IN (SELECT id FROM tree)
      AND status <> ALL(%(final_statuses)s)
    RETURNING id
), attempts_canceled AS (
    UPDATE attempts SET status = 'CANCELED', finished_at = %(now)s
    WHERE run_id IN (SELECT id FROM canceled) AND status = 'EXECUTING'
), events AS (
    INSERT INTO run_events (run_id, ts, kind, message)
    SELECT id, %(now)s, 'status', 'CANCELED' FROM canceled
)
SELECT id FROM canceled;

-- name: run_ownership
SELECT id, status, attempt_number, lease_owner FROM runs WHERE id = ANY(%(ids)s);

-- name: run_metadata_lock
SELECT metadata FROM runs WHERE id = %(run_id)s FOR UPDATE;

-- name: run_metadata_set
UPDATE runs SET metadata = %(metadata)s, updated_at = %(now)s WHERE id = %(run_id)s;

-- name: run_tags_lock
SELECT tags FROM runs WHERE id = %(run_id)s FOR UPDATE;

-- name: run_tags_set
UPDATE runs SET tags = %(tags)s, updated_at = %(now)s WHERE id = %(run_id)s;

-- name: run_event_insert
INSERT INTO run_events (run_id, ts, kind, level, message, attributes)
VALUES (%(run_id)s, %(ts)s, %(kind)s, %(level)s, %(message)s, %(attributes)s);

-- name: run_events_list
SELECT id, run_id, ts, kind, level, message, attributes FROM run_events
WHERE run_id = %(run_id)s AND id > %(after_id)s
ORDER BY id
LIMIT %(limit)s;

-- name: attempt_list
SELECT run_id, number, status, worker_id, started_at, finished_at, error FROM attempts
WHERE run_id = %(run_id)s
ORDER BY id;

-- name: batch_insert
INSERT INTO batches (id, environment, status, run_count, idempotency_key, created_at, completed_at)
VALUES (%(id)s, %(environment)s, 'COMPLETED', %(run_count)s, %(idempotency_key)s,
        %(created_at)s, %(created_at)s);

-- name: batch_get
SELECT id, environment, status, run_count, idempotency_key, created_at, completed_at,
       run_ids
FROM batches WHERE environment = %(environment)s AND id = %(id)s;

-- name: batch_runs
SELECT * FROM runs WHERE batch_id = %(batch_id)s ORDER BY batch_index;

-- name: idempotency_key_reset
UPDATE runs SET idempotency_key = NULL, idempotency_key_expires_at = NULL, updated_at = %(now)s
WHERE environment = %(environment)s AND task_id = %(task_id)s AND idempotency_key = %(key)s;

-- name: worker_upsert
INSERT INTO workers (id, environment, host, pid, doorbell_port, started_at, heartbeat_at,
                     stopped_at)
VALUES (%(id)s, %(environment)s, %(host)s, %(pid)s, %(doorbell_port)s, %(started_at)s,
        %(heartbeat_at)s, NULL)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at,
    doorbell_port = excluded.doorbell_port, stopped_at = NULL;

-- name: task_upsert
INSERT INTO tasks (environment, id, file_path, queue, max_attempts, retry, max_duration_s,
                   machine, description, payload_schema, worker_id, updated_at, ttl_ms)
VALUES (%(environment)s, %(id)s, %(file_path)s, %(queue)s, %(max_attempts)s, %(retry)s,
        %(max_duration_s)s, %(machine)s, %(description)s, %(payload_schema)s, %(worker_id)s,
        %(updated_at)s, %(ttl_ms)s)
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
FROM tasks WHERE environment = %(environment)s ORDER BY id;

-- name: worker_list_live
SELECT id, environment, host, pid, doorbell_port, started_at, heartbeat_at, stopped_at
FROM workers
WHERE environment = %(environment)s AND stopped_at IS NULL AND heartbeat_at >= %(since)s;

-- name: worker_stop
UPDATE workers SET stopped_at = %(now)s WHERE id = %(worker_id)s;

-- name: worker_heartbeat_runs
-- SKIP LOCKED: a run whose result is being written right now is skipped (that write ends its
-- lease), so a heartbeat never waits for run_finish_many — nor deadlocks with it, as the two
-- would otherwise lock the same worker's runs in different orders.
UPDATE runs SET lease_expires_at = %(lease_expires_at)s
WHERE id IN (
    SELECT id FROM runs
    WHERE lease_owner = %(worker_id)s AND status = 'EXECUTING'
      AND id = ANY(%(run_ids)s)
    FOR UPDATE SKIP LOCKED
);

-- name: worker_heartbeat
UPDATE workers SET heartbeat_at = %(now)s WHERE id = %(worker_id)s;

-- name: ready_notify
SELECT pg_notify('shipyard_ready', %(environment)s);

-- name: migrate_lock
SELECT pg_advisory_xact_lock(7262026);

-- name: migrations_table
CREATE TABLE IF NOT EXISTS shipyard_migrations (
    name        TEXT PRIMARY KEY,
    applied_at  BIGINT NOT NULL
);

-- name: migrations_applied
SELECT name FROM shipyard_migrations;

-- name: migration_record
INSERT INTO shipyard_migrations (name, applied_at) VALUES (%(name)s, %(applied_at)s);

-- name: batch_set_run_ids
UPDATE batches SET run_ids = %(run_ids)s WHERE id = %(id)s;

-- name: run_insert_bulk
-- Many runs without idempotency keys or tags in one statement (batch triggers); the rows
-- travel as one JSON array (one C json.dumps instead of 26 Python-dumped arrays).
INSERT INTO runs (
    id, environment, task_id, status, payload, metadata, tags, queue, concurrency_key,
    priority_ms, queued_at, sort_key, available_at, delay_until, ttl_ms, max_attempts,
    parent_run_id, root_run_id, depth, batch_id, batch_index, machine, max_duration_s,
    trigger_function, is_test, created_at, updated_at, ttl_expires_at
)
SELECT i.id, i.environment, i.task_id, i.status, i.payload, i.metadata, i.tags, i.queue,
       i.concurrency_key, i.priority_ms, i.queued_at, i.sort_key, i.available_at,
       i.delay_until, i.ttl_ms, i.max_attempts, i.parent_run_id, i.root_run_id, i.depth,
       i.batch_id, i.batch_index, i.machine, i.max_duration_s, i.trigger_function, i.is_test,
       i.created_at, i.created_at, i.ttl_expires_at
FROM json_to_recordset(%(rows)s::json) AS i(
    id text, environment text, task_id text, status text, payload text, metadata text,
    tags text, queue text, concurrency_key text, priority_ms bigint, queued_at bigint,
    sort_key bigint, available_at bigint, delay_until bigint, ttl_ms bigint,
    max_attempts bigint, parent_run_id text, root_run_id text, depth bigint, batch_id text,
    batch_index bigint, machine text, max_duration_s bigint, trigger_function text,
    is_test bigint, created_at bigint, ttl_expires_at bigint
)
RETURNING *;

-- name: queue_upsert
INSERT INTO queues (environment, name, concurrency_limit, paused, created_at, updated_at)
VALUES (%(environment)s, %(name)s, %(concurrency_limit)s, 0, %(now)s, %(now)s)
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
WHERE q.environment = %(environment)s
ORDER BY q.name;

-- name: queue_update
UPDATE queues SET
    paused = COALESCE(%(paused)s::bigint, paused),
    limit_override = CASE WHEN %(clear_override)s::bigint = 1 THEN NULL
                          ELSE COALESCE(%(limit_override)s::bigint, limit_override) END,
    updated_at = %(now)s
WHERE environment = %(environment)s AND name = %(name)s;

-- name: run_due_exists
SELECT 1 WHERE EXISTS (
    SELECT 1 FROM runs WHERE environment = %(environment)s AND status = 'DELAYED'
        AND delay_until <= %(now)s
) OR EXISTS (
    SELECT 1 FROM runs WHERE environment = %(environment)s AND status IN ('QUEUED', 'DELAYED')
        AND ttl_expires_at <= %(now)s AND started_at IS NULL
);

-- name: run_schedule_due
-- TTL applies only to runs that never started (retries and released runs never expire);
-- expiry is decided before promotion so a run due and expired at once expires.
WITH expired AS (
    UPDATE runs SET status = 'EXPIRED', error = %(expired_error)s, expired_at = %(now)s,
        finished_at = %(now)s, updated_at = %(now)s
    WHERE environment = %(environment)s
      AND status IN ('QUEUED', 'DELAYED')
      AND started_at IS NULL
      AND ttl_expires_at <= %(now)s
    RETURNING id
), promoted AS (
    UPDATE runs SET status = 'QUEUED', available_at = delay_until, updated_at = %(now)s
    WHERE environment = %(environment)s AND status = 'DELAYED' AND delay_until <= %(now)s
      AND id NOT IN (SELECT id FROM expired)
    RETURNING id
), events AS (
    INSERT INTO run_events (run_id, ts, kind, message)
    SELECT id, %(now)s, 'status', 'EXPIRED' FROM expired
    UNION ALL
    SELECT id, %(now)s, 'status', 'QUEUED' FROM promoted
)
SELECT 'expired', id FROM expired
UNION ALL
SELECT 'promoted', id FROM promoted;

-- name: run_reschedule
UPDATE runs SET
    delay_until = %(delay_until)s,
    available_at = %(delay_until)s,
    queued_at = %(delay_until)s,
    sort_key = %(delay_until)s - priority_ms,
    ttl_expires_at = CASE WHEN ttl_ms IS NULL THEN NULL ELSE %(delay_until)s + ttl_ms END,
    updated_at = %(now)s
WHERE environment = %(environment)s AND id = %(run_id)s AND status = 'DELAYED'
RETURNING *;

-- name: run_get_debounced
SELECT * FROM runs
WHERE environment = %(environment)s AND task_id = %(task_id)s
  AND debounce_key = %(debounce_key)s AND status = 'DELAYED'
FOR UPDATE;

-- name: run_debounce_push
-- Pushes only move later. Trailing mode also takes the newest trigger's data.
UPDATE runs SET
    delay_until = GREATEST(delay_until, %(delay_until)s),
    available_at = GREATEST(delay_until, %(delay_until)s),
    queued_at = GREATEST(delay_until, %(delay_until)s),
    sort_key = GREATEST(delay_until, %(delay_until)s) - priority_ms,
    ttl_expires_at = CASE WHEN ttl_ms IS NULL THEN NULL
                          ELSE GREATEST(delay_until, %(delay_until)s) + ttl_ms END,
    payload = CASE WHEN %(trailing)s::bigint = 1 THEN %(payload)s ELSE payload END,
    metadata = CASE WHEN %(trailing)s::bigint = 1 THEN %(metadata)s ELSE metadata END,
    tags = CASE WHEN %(trailing)s::bigint = 1 THEN %(tags)s ELSE tags END,
    max_attempts = CASE WHEN %(trailing)s::bigint = 1 THEN %(max_attempts)s::bigint
                        ELSE max_attempts END,
    max_duration_s = CASE WHEN %(trailing)s::bigint = 1 THEN %(max_duration_s)s::bigint
                          ELSE max_duration_s END,
    machine = CASE WHEN %(trailing)s::bigint = 1 THEN %(machine)s ELSE machine END,
    updated_at = %(now)s
WHERE id = %(id)s AND status = 'DELAYED'
RETURNING *;

-- name: run_debounce_release
-- The run keeps its time but stops absorbing triggers (max_delay reached).
UPDATE runs SET debounce_key = NULL, updated_at = %(now)s WHERE id = %(id)s;

-- name: run_tags_delete
DELETE FROM run_tags WHERE run_id = %(run_id)s;

-- name: environment_rate_lock
SELECT rate_tokens, rate_refilled_at FROM environment_slots
WHERE environment = %(environment)s FOR UPDATE;

-- name: environment_rate_set
UPDATE environment_slots SET rate_tokens = %(tokens)s, rate_refilled_at = %(now)s
WHERE environment = %(environment)s;

-- name: environment_slot_lock_for_run
SELECT environment FROM environment_slots
WHERE environment = (SELECT environment FROM runs WHERE id = %(run_id)s)
FOR UPDATE;

-- name: waitpoint_insert
INSERT INTO waitpoints (
    id, environment, kind, status, completes_at, timeout_at, idempotency_key,
    idempotency_key_expires_at, tags, target_id, created_at
) VALUES (
    %(id)s, %(environment)s, %(kind)s, 'PENDING', %(completes_at)s, %(timeout_at)s, %(idempotency_key)s,
    %(idempotency_key_expires_at)s, %(tags)s, %(target_id)s, %(now)s
)
ON CONFLICT DO NOTHING
RETURNING id, environment, kind, status, completes_at, timeout_at, idempotency_key,
    idempotency_key_expires_at, tags, output, output_is_error, target_id, created_at,
    completed_at;

-- name: waitpoint_get
SELECT id, environment, kind, status, completes_at, timeout_at, idempotency_key,
    idempotency_key_expires_at, tags, output, output_is_error, target_id, created_at,
    completed_at
FROM waitpoints WHERE environment = %(environment)s AND id = %(id)s;

-- name: waitpoint_get_by_id
SELECT id, environment, kind, status, completes_at, timeout_at, idempotency_key,
    idempotency_key_expires_at, tags, output, output_is_error, target_id, created_at,
    completed_at
FROM waitpoints WHERE id = %(id)s;

-- name: waitpoint_get_by_key
SELECT id, environment, kind, status, completes_at, timeout_at, idempotency_key,
    idempotency_key_expires_at, tags, output, output_is_error, target_id, created_at,
    completed_at
FROM waitpoints WHERE environment = %(environment)s AND idempotency_key = %(idempotency_key)s;

-- name: waitpoint_clear_key
UPDATE waitpoints SET idempotency_key = NULL, idempotency_key_expires_at = NULL
WHERE id = %(id)s;

-- name: waitpoint_list
SELECT id, environment, kind, status, completes_at, timeout_at, idempotency_key,
    idempotency_key_expires_at, tags, output, output_is_error, target_id, created_at,
    completed_at
FROM waitpoints WHERE environment = %(environment)s AND kind = 'MANUAL'
ORDER BY created_at DESC, id DESC;

-- name: waitpoint_recorded
SELECT rw.call, w.id, w.environment, w.kind, w.status, w.completes_at, w.timeout_at,
    w.idempotency_key, w.idempotency_key_expires_at, w.tags, w.output, w.output_is_error,
    w.target_id, w.created_at, w.completed_at
FROM run_waitpoints rw JOIN waitpoints w ON w.id = rw.waitpoint_id
WHERE rw.run_id = %(run_id)s AND rw.attempt_number = %(attempt_number)s AND rw.seq = %(seq)s;

-- name: waitpoint_link
INSERT INTO run_waitpoints (run_id, attempt_number, seq, waitpoint_id, call, created_at)
VALUES (%(run_id)s, %(attempt_number)s, %(seq)s, %(waitpoint_id)s, %(call)s, %(now)s)
ON CONFLICT DO NOTHING;

-- name: waitpoint_settle_one
-- A waitpoint that is already due (a past date, a child that already finished) resolves
-- before its run would suspend. Token timeouts are left to waitpoint_settle_due.
UPDATE waitpoints SET status = 'COMPLETED', completed_at = %(now)s
WHERE id = %(id)s AND status = 'PENDING' AND (
    (kind = 'DATETIME' AND completes_at <= %(now)s)
    OR (kind = 'RUN' AND EXISTS (
        SELECT 1 FROM runs r WHERE r.id = waitpoints.target_id
          AND r.status IN ('COMPLETED', 'CANCELED', 'FAILED', 'CRASHED', 'SYSTEM_FAILURE',
                           'EXPIRED', 'TIMED_OUT')))
    OR (kind = 'BATCH' AND NOT EXISTS (
        SELECT 1 FROM runs r WHERE r.batch_id = waitpoints.target_id
          AND r.status NOT IN ('COMPLETED', 'CANCELED', 'FAILED', 'CRASHED', 'SYSTEM_FAILURE',
                               'EXPIRED', 'TIMED_OUT')))
);

-- name: waitpoint_complete
UPDATE waitpoints SET status = 'COMPLETED', output = %(output)s, output_is_error = 0,
    completed_at = %(now)s
WHERE environment = %(environment)s AND id = %(id)s AND status = 'PENDING' AND kind = 'MANUAL';

-- name: waitpoint_due_exists
SELECT 1 WHERE EXISTS (
    SELECT 1 FROM runs WHERE environment = %(environment)s AND status = 'WAITING'
) OR EXISTS (
    SELECT 1 FROM waitpoints WHERE environment = %(environment)s AND status = 'PENDING'
      AND kind = 'MANUAL' AND timeout_at <= %(now)s
);

-- name: run_suspend
-- Fenced like a finish; the lease owner is kept (the worker holding the parked coroutine).
UPDATE runs SET status = 'WAITING', lease_expires_at = NULL, updated_at = %(now)s
WHERE id = %(run_id)s AND status = 'EXECUTING' AND attempt_number = %(attempt_number)s
  AND lease_owner = %(worker_id)s;

-- name: runs_wake
-- WAITING → QUEUED (queue position kept) for runs none of whose current waitpoints is pending.
UPDATE runs SET status = 'QUEUED', resume_state = 'RESUMING', available_at = %(now)s,
    updated_at = %(now)s
WHERE environment = %(environment)s AND status = 'WAITING' AND NOT EXISTS (
    SELECT 1 FROM run_waitpoints rw JOIN waitpoints w ON w.id = rw.waitpoint_id
    WHERE rw.run_id = runs.id AND rw.attempt_number = runs.attempt_number
      AND w.status = 'PENDING'
)
RETURNING id;

-- name: waitpoint_resolve_due
-- One statement (one round trip): time out due tokens, complete due dates and waitpoints of
-- final runs/batches, and WAITING → QUEUED the runs none of whose current waitpoints is still
-- pending. The CTEs share one snapshot, so the wake discounts what this statement resolved.
WITH timed AS (
    UPDATE waitpoints SET status = 'TIMED_OUT', completed_at = %(now)s,
        output = %(timeout_error)s, output_is_error = 1
    WHERE environment = %(environment)s AND status = 'PENDING' AND kind = 'MANUAL'
      AND timeout_at <= %(now)s
    RETURNING id
), settled AS (
    UPDATE waitpoints SET status = 'COMPLETED', completed_at = %(now)s
    WHERE environment = %(environment)s AND status = 'PENDING' AND (
        (kind = 'DATETIME' AND completes_at <= %(now)s)
        OR (kind = 'RUN' AND EXISTS (
            SELECT 1 FROM runs r WHERE r.id = waitpoints.target_id
              AND r.status IN ('COMPLETED', 'CANCELED', 'FAILED', 'CRASHED', 'SYSTEM_FAILURE', 'EXPIRED', 'TIMED_OUT')))
        OR (kind = 'BATCH' AND NOT EXISTS (
            SELECT 1 FROM runs r WHERE r.batch_id = waitpoints.target_id
              AND r.status NOT IN ('COMPLETED', 'CANCELED', 'FAILED', 'CRASHED', 'SYSTEM_FAILURE', 'EXPIRED', 'TIMED_OUT')))
    )
    RETURNING id
), woken AS (
    UPDATE runs SET status = 'QUEUED', resume_state = 'RESUMING', available_at = %(now)s,
        updated_at = %(now)s
    WHERE environment = %(environment)s AND status = 'WAITING' AND NOT EXISTS (
        SELECT 1 FROM run_waitpoints rw JOIN waitpoints w ON w.id = rw.waitpoint_id
        WHERE rw.run_id = runs.id AND rw.attempt_number = runs.attempt_number
          AND w.status = 'PENDING'
          AND w.id NOT IN (SELECT id FROM timed)
          AND w.id NOT IN (SELECT id FROM settled)
    )
    RETURNING id
), events AS (
    INSERT INTO run_events (run_id, ts, kind, message)
    SELECT id, %(now)s, 'status', 'QUEUED' FROM woken
)
-- Identical notifications in one transaction are delivered once.
SELECT id, pg_notify('shipyard_ready', %(environment)s) FROM woken;
