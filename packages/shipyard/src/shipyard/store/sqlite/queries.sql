-- Named queries only the SQLite store has (the shared ones are in sql/shared.sql).
-- List parameters travel as JSON arrays and are expanded with json_each. SQLite's write
-- transaction (BEGIN IMMEDIATE) holds the whole database, so no query takes a row lock.

-- name: run_insert
-- Bound positionally by the driver (store/sqlite/store.py), in rows.INSERT_COLUMNS order.
INSERT INTO runs (
    id, environment, task_id, status, payload, metadata, tags, queue, concurrency_key,
    priority_ms, queued_at, sort_key, available_at, delay_until, ttl_ms, max_attempts,
    idempotency_key, idempotency_key_expires_at, parent_run_id, root_run_id, depth,
    batch_id, batch_index, machine, max_duration_s, trigger_function, is_test,
    created_at, updated_at, debounce_key, ttl_expires_at, version
) VALUES (
    :id, :environment, :task_id, :status, :payload, :metadata, :tags, :queue, :concurrency_key,
    :priority_ms, :queued_at, :sort_key, :available_at, :delay_until, :ttl_ms, :max_attempts,
    :idempotency_key, :idempotency_key_expires_at, :parent_run_id, :root_run_id, :depth,
    :batch_id, :batch_index, :machine, :max_duration_s, :trigger_function, :is_test,
    :created_at, :created_at, :debounce_key, :ttl_expires_at, :version
)
ON CONFLICT DO NOTHING;

-- name: run_insert_bulk
-- Runs made from one template: the shared values are bound once, each run's id and payload
-- come from one JSON array of [id, payload] pairs read by json_each in C; its position +
-- :offset is the batch index. A third of an executemany's time, whose cost was binding 32
-- values per row.
INSERT INTO runs (
    id, environment, task_id, status, payload, metadata, tags, queue, concurrency_key,
    priority_ms, queued_at, sort_key, available_at, delay_until, ttl_ms, max_attempts,
    idempotency_key, idempotency_key_expires_at, parent_run_id, root_run_id, depth,
    batch_id, batch_index, machine, max_duration_s, trigger_function, is_test,
    created_at, updated_at, debounce_key, ttl_expires_at, version
)
SELECT
    json_extract(j.value, '$[0]'), :environment, :task_id, :status,
    json_extract(j.value, '$[1]'), :metadata, :tags, :queue, :concurrency_key,
    :priority_ms, :queued_at, :sort_key, :available_at, :delay_until, :ttl_ms, :max_attempts,
    :idempotency_key, :idempotency_key_expires_at, :parent_run_id, :root_run_id, :depth,
    :batch_id, CASE WHEN :batch_index IS NULL THEN NULL ELSE :offset + j.key END, :machine,
    :max_duration_s, :trigger_function, :is_test,
    :created_at, :created_at, :debounce_key, :ttl_expires_at, :version
FROM json_each(:rows) AS j
-- WHERE true: SQLite's parser needs it between a SELECT's FROM and an upsert clause.
WHERE true
ON CONFLICT DO NOTHING;

-- name: run_list
SELECT * FROM runs
WHERE environment = :environment
  AND (:cursor IS NULL OR id < :cursor)
  AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)))
  AND (:task_ids IS NULL OR task_id IN (SELECT value FROM json_each(:task_ids)))
  AND (:tag IS NULL OR id IN (SELECT run_id FROM run_tags WHERE tag = :tag))
  AND (:batch_id IS NULL OR batch_id = :batch_id)
  AND (:schedule_id IS NULL OR schedule_id = :schedule_id)
  AND (:created_from IS NULL OR created_at >= :created_from)
  AND (:created_to IS NULL OR created_at <= :created_to)
ORDER BY id DESC
LIMIT :limit;

-- name: run_list_children
-- run_list of one run's children: by the parent index (a partial one: hence IS NOT NULL),
-- named, as the planner would rather walk the environment's runs in id order.
SELECT * FROM runs INDEXED BY runs_by_parent
WHERE parent_run_id = :parent_run_id AND parent_run_id IS NOT NULL
  AND environment = :environment
  AND (:cursor IS NULL OR id < :cursor)
  AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)))
  AND (:task_ids IS NULL OR task_id IN (SELECT value FROM json_each(:task_ids)))
  AND (:tag IS NULL OR id IN (SELECT run_id FROM run_tags WHERE tag = :tag))
  AND (:batch_id IS NULL OR batch_id = :batch_id)
  AND (:schedule_id IS NULL OR schedule_id = :schedule_id)
  AND (:created_from IS NULL OR created_at >= :created_from)
  AND (:created_to IS NULL OR created_at <= :created_to)
ORDER BY id DESC
LIMIT :limit;

-- name: batch_list
SELECT id, environment, status, run_count, idempotency_key, created_at, completed_at
FROM batches
WHERE environment = :environment AND (:cursor IS NULL OR id < :cursor)
ORDER BY id DESC
LIMIT :limit;

-- name: run_stats
SELECT (created_at - :created_from) / :bucket_ms AS bucket, status, COUNT(*) AS runs
FROM runs
WHERE environment = :environment AND created_at >= :created_from
GROUP BY bucket, status;

-- name: run_get_debounced
SELECT * FROM runs
WHERE environment = :environment AND task_id = :task_id AND debounce_key = :debounce_key
  AND status = 'DELAYED';

-- name: run_ready_exists
-- INDEXED BY (here and in the claim's group queries): statistics left by an ANALYZE while the
-- queue was short (sqlite_stat1 says the environment has a run or two) make the planner prefer
-- runs_by_environment — every run the environment ever had — to the ready set's index.
SELECT 1 FROM runs INDEXED BY runs_ready_by_group
WHERE environment = :environment
  AND status = 'QUEUED'
  AND available_at <= :now
  AND task_id IN (SELECT value FROM json_each(:task_ids))
  -- The version lock, as in group_ready_runs.
  AND (version IS NULL OR version = :version OR NOT EXISTS (
      SELECT 1 FROM workers w
      WHERE w.environment = :environment AND w.version = runs.version
        AND w.stopped_at IS NULL AND w.heartbeat_at >= :live_since))
LIMIT 1;

-- name: run_pending_exists
SELECT 1 FROM runs
WHERE environment = :environment AND status = 'PENDING_VERSION'
  AND task_id IN (SELECT value FROM json_each(:task_ids))
LIMIT 1;

-- name: run_promote_pending
-- PENDING_VERSION → QUEUED for the tasks a worker brings. A run triggered before anything
-- knew its task was put on the task's default queue (task/<id>): it moves to the queue the
-- task registered (tasks, written earlier in the same registration).
UPDATE runs SET
    status = 'QUEUED',
    queue = CASE WHEN queue = 'task/' || task_id
                 THEN COALESCE((SELECT t.queue FROM tasks t
                                WHERE t.environment = runs.environment AND t.id = runs.task_id),
                               queue)
                 ELSE queue END,
    updated_at = :now
WHERE environment = :environment AND status = 'PENDING_VERSION'
  AND task_id IN (SELECT value FROM json_each(:task_ids))
RETURNING id;

-- name: environment_running
SELECT running FROM environment_slots WHERE environment = :environment;

-- name: ready_group_first
SELECT queue, COALESCE(concurrency_key, '') FROM runs INDEXED BY runs_ready_by_group
WHERE environment = :environment AND status = 'QUEUED'
ORDER BY queue, COALESCE(concurrency_key, '')
LIMIT 1;

-- name: ready_group_next
-- One index probe per (queue, concurrency key) group that has queued runs (a skip scan). Two
-- probes joined: SQLite only bounds an index search by the first column of a row-value
-- comparison, which would walk every queued run of the queue.
SELECT * FROM (
    SELECT queue, COALESCE(concurrency_key, '') FROM runs INDEXED BY runs_ready_by_group
    WHERE environment = :environment AND status = 'QUEUED'
      AND queue = :queue AND COALESCE(concurrency_key, '') > :concurrency_key
    ORDER BY queue, COALESCE(concurrency_key, '')
    LIMIT 1
)
UNION ALL
SELECT * FROM (
    SELECT queue, COALESCE(concurrency_key, '') FROM runs INDEXED BY runs_ready_by_group
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
SELECT id, sort_key FROM runs INDEXED BY runs_ready_by_group
WHERE environment = :environment AND status = 'QUEUED'
  AND queue = :queue AND COALESCE(concurrency_key, '') = :concurrency_key
  AND available_at <= :now
  AND task_id IN (SELECT value FROM json_each(:task_ids))
  -- The version lock (0006): a run locked to a version goes only to a worker of that
  -- version while one is live; else to any worker (which relocks it in run_claim_ids).
  AND (version IS NULL OR version = :version OR NOT EXISTS (
      SELECT 1 FROM workers w
      WHERE w.environment = :environment AND w.version = runs.version
        AND w.stopped_at IS NULL AND w.heartbeat_at >= :live_since))
ORDER BY sort_key, id
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
    -- Never earlier than the run's last change (as PostgreSQL's run_claim_limited).
    started_at = COALESCE(started_at, MAX(:now, updated_at)),
    updated_at = MAX(:now, updated_at),
    -- The run locks to the claiming worker's version (0006).
    version = COALESCE(:version, version),
    max_attempts = COALESCE(
        max_attempts,
        (SELECT t.max_attempts FROM tasks t
         WHERE t.environment = runs.environment AND t.id = runs.task_id)
    )
WHERE environment = :environment AND id IN (SELECT value FROM json_each(:ids))
  AND status = 'QUEUED'
RETURNING *;

-- name: attempt_resume
UPDATE attempts SET worker_id = :worker_id, status = 'EXECUTING'
WHERE run_id = :run_id AND number = :number;

-- name: attempt_insert
INSERT INTO attempts (run_id, number, status, worker_id, started_at)
VALUES (:run_id, :number, 'EXECUTING', :worker_id, :now);

-- name: run_leased
-- A worker's own leased runs (the runs_owner index): after a connection was lost in the
-- middle of a claim that committed, the worker finds the runs it never received. INDEXED BY
-- (here and in run_next_due): statistics from an ANALYZE while the table held a run or two
-- make the planner walk runs_by_environment, every run of the environment, instead.
SELECT * FROM runs INDEXED BY runs_owner
WHERE environment = :environment AND status = 'EXECUTING' AND lease_owner = :worker_id
ORDER BY sort_key, id;

-- name: run_next_due
-- When the scheduler has work next: the earliest DELAYED run's time, and the earliest TTL of
-- a run that never started (two probes of the partial indexes runs_delayed and runs_ttl).
SELECT
    (SELECT delay_until FROM runs INDEXED BY runs_delayed
     WHERE environment = :environment AND status = 'DELAYED'
     ORDER BY delay_until LIMIT 1) AS delay_until,
    (SELECT ttl_expires_at FROM runs INDEXED BY runs_ttl WHERE environment = :environment
        AND status IN ('QUEUED', 'DELAYED', 'PENDING_VERSION')
        AND ttl_expires_at IS NOT NULL AND started_at IS NULL
     ORDER BY ttl_expires_at LIMIT 1) AS ttl_expires_at;

-- name: run_finish_set
-- A batch of finishes (store/sqlite/finish.py), each fenced by attempt number and
-- lease owner as run_finish: one JSON array of [run_id, attempt_number, worker_id, status,
-- output, error, retry_at, now], read by json_each in C. The runs triggers write each
-- accepted run's status event and give back its slot, as for run_finish. RETURNING names the
-- accepted runs (SQLite's RETURNING cannot read the FROM clause). The unary + keep the
-- planner off runs_by_environment and runs_owner: it reads the input, then each run by id
-- (left to itself, it walked the environment's runs once per input).
UPDATE runs SET
    status = json_extract(i.value, '$[3]'),
    output = json_extract(i.value, '$[4]'),
    error = json_extract(i.value, '$[5]'),
    available_at = COALESCE(json_extract(i.value, '$[6]'), available_at),
    finished_at = CASE WHEN json_extract(i.value, '$[3]') = 'QUEUED' THEN NULL
                       ELSE json_extract(i.value, '$[7]') END,
    lease_owner = NULL,
    lease_expires_at = NULL,
    updated_at = json_extract(i.value, '$[7]')
FROM json_each(:input) AS i
WHERE runs.id = json_extract(i.value, '$[0]')
  AND +runs.environment = :environment
  AND +runs.status = 'EXECUTING'
  AND runs.attempt_number = json_extract(i.value, '$[1]')
  AND +runs.lease_owner = json_extract(i.value, '$[2]')
RETURNING id;

-- name: attempt_finish_set
-- The attempts of the runs run_finish_set accepted: [run_id, number, status, now, error].
UPDATE attempts SET
    status = json_extract(i.value, '$[2]'),
    finished_at = json_extract(i.value, '$[3]'),
    error = json_extract(i.value, '$[4]')
FROM json_each(:input) AS i
WHERE attempts.run_id = json_extract(i.value, '$[0]')
  AND attempts.number = json_extract(i.value, '$[1]')
  AND attempts.status = 'EXECUTING';

-- name: run_reap_expired
-- A lost worker's attempt counts as crashed; the run retries while attempts remain.
-- INDEXED BY: left to itself the planner walks runs_by_environment, every run the
-- environment ever had, on each reaper pass; runs_owner holds only the EXECUTING ones.
UPDATE runs INDEXED BY runs_owner SET
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

-- name: run_ownership
SELECT id, status, attempt_number, lease_owner FROM runs
WHERE environment = :environment AND id IN (SELECT value FROM json_each(:ids));

-- name: run_metadata_get
SELECT metadata FROM runs WHERE environment = :environment AND id = :run_id;

-- name: run_tags_get
SELECT tags FROM runs WHERE environment = :environment AND id = :run_id;

-- name: environment_rate_get
SELECT rate_tokens, rate_refilled_at FROM environment_slots WHERE environment = :environment;

-- name: worker_heartbeat_runs
UPDATE runs SET lease_expires_at = :lease_expires_at
WHERE environment = :environment AND lease_owner = :worker_id AND status = 'EXECUTING'
  AND id IN (SELECT value FROM json_each(:run_ids));

-- name: waitpoint_list
-- Tokens newest first (ids sort by creation), filtered and paged here; output is not read.
SELECT id, environment, kind, status, completes_at, timeout_at, idempotency_key,
    idempotency_key_expires_at, tags, NULL AS output, output_is_error, target_id, created_at,
    completed_at
FROM waitpoints
WHERE environment = :environment AND kind = 'MANUAL'
  AND (:cursor IS NULL OR id < :cursor)
  AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)))
  AND (:idempotency_key IS NULL OR idempotency_key = :idempotency_key)
  AND (:created_from IS NULL OR created_at >= :created_from)
  AND (:created_to IS NULL OR created_at <= :created_to)
  AND (:tags IS NULL OR NOT EXISTS (
      SELECT 1 FROM json_each(:tags) AS wanted
      WHERE wanted.value NOT IN (SELECT value FROM json_each(waitpoints.tags))))
ORDER BY id DESC
LIMIT :limit;

-- name: migrations_table
CREATE TABLE IF NOT EXISTS shipyard_migrations (
    name        TEXT PRIMARY KEY,
    applied_at  INTEGER NOT NULL
);

-- name: feed_position
-- The feed's head: ids grow in commit order (one writer at a time).
SELECT COALESCE(MAX(id), 0) FROM run_events;

-- name: feed_events
-- Events after :after_id up to :until_id; status: the run's status as of the event;
-- started: whether it had started executing by then.
SELECT e.id, e.run_id, e.ts, e.kind, e.message, e.attributes, e.tx,
       CASE WHEN e.kind IN ('created', 'status') THEN e.message ELSE (
           SELECT s.message FROM run_events s
           WHERE s.run_id = e.run_id AND s.id < e.id AND s.kind IN ('created', 'status')
           ORDER BY s.id DESC LIMIT 1) END AS status,
       EXISTS (SELECT 1 FROM run_events x WHERE x.run_id = e.run_id AND x.id <= e.id
               AND x.kind = 'status' AND x.message = 'EXECUTING') AS started
FROM run_events e JOIN runs r ON r.id = e.run_id
WHERE e.kind IN ('created', 'status', 'metadata', 'tag', 'input')
  AND e.id > :after_id AND e.id <= :until_id
  AND r.environment = :environment
  AND (:run_ids IS NULL OR e.run_id IN (SELECT value FROM json_each(:run_ids)))
  AND (:tags IS NULL OR EXISTS (
      SELECT 1 FROM run_tags t
      WHERE t.run_id = e.run_id AND t.tag IN (SELECT value FROM json_each(:tags))))
  AND (:created_from IS NULL OR r.created_at >= :created_from)
ORDER BY e.id
LIMIT :limit;

-- name: feed_runs
SELECT * FROM runs
WHERE environment = :environment AND id IN (SELECT value FROM json_each(:ids));

-- name: feed_snapshot_runs
-- The newest :limit matching runs, in id order.
SELECT * FROM (
    SELECT * FROM runs
    WHERE environment = :environment
      AND (:run_ids IS NULL OR id IN (SELECT value FROM json_each(:run_ids)))
      AND (:tags IS NULL OR id IN (
          SELECT run_id FROM run_tags WHERE tag IN (SELECT value FROM json_each(:tags))))
      AND (:created_from IS NULL OR created_at >= :created_from)
      AND (:after_run_id IS NULL OR id > :after_run_id)
    ORDER BY id DESC
    LIMIT :limit
) AS newest
ORDER BY id;

-- name: stream_heads
SELECT r.id, r.status, s.stream_id, s.next_index
FROM runs r LEFT JOIN streams s ON s.run_id = r.id
WHERE r.environment = :environment AND r.id IN (SELECT value FROM json_each(:run_ids));

-- name: input_run_lock
SELECT status FROM runs WHERE environment = :environment AND id = :run_id;

-- name: feed_metadata_history
-- What a run's metadata was made of before :before_id: its creation's, then each change's
-- operations (a run's events are in commit order by id).
SELECT e.run_id, e.id, e.kind, e.attributes FROM run_events e
WHERE e.run_id IN (SELECT value FROM json_each(:run_ids))
  AND e.kind IN ('created', 'metadata') AND e.id < :before_id
  AND EXISTS (SELECT 1 FROM runs r WHERE r.id = e.run_id AND r.environment = :environment)
ORDER BY e.id;

-- name: schedule_delete_declarative_except
DELETE FROM schedules
WHERE environment = :environment AND type = :type
  AND task_id NOT IN (SELECT value FROM json_each(:task_ids))
RETURNING task_id;

-- name: schedule_lock_many
-- (PostgreSQL only: SQLite's write transaction already holds the database.)
SELECT 1;

-- name: schedule_advance_many
-- The compare-and-set of many ticks at once; the ids of the schedules it moved on. The id list
-- drives the loop (primary key lookups); each row reads its own values from the list.
UPDATE schedules SET
    next_run = (SELECT json_extract(j.value, '$.next_run') FROM json_each(:rows) AS j
                WHERE json_extract(j.value, '$.id') = schedules.id),
    next_run_at = (SELECT json_extract(j.value, '$.next_run_at') FROM json_each(:rows) AS j
                   WHERE json_extract(j.value, '$.id') = schedules.id),
    last_run = COALESCE((SELECT json_extract(j.value, '$.last_run') FROM json_each(:rows) AS j
                         WHERE json_extract(j.value, '$.id') = schedules.id), last_run),
    updated_at = :now
WHERE id IN (SELECT json_extract(value, '$.id') FROM json_each(:rows))
  -- "+": not through the environment's indexes (a scan of every schedule); by id.
  AND +environment = :environment
  AND +active = 1
  AND next_run = (SELECT json_extract(j.value, '$.expected') FROM json_each(:rows) AS j
                  WHERE json_extract(j.value, '$.id') = schedules.id)
RETURNING id;

-- name: waitpoint_block_get
-- The waitpoint a run is about to suspend on (SQLite: one writer at a time, so no completion
-- can commit between this read and the suspend).
SELECT id, environment, kind, status, completes_at, timeout_at, idempotency_key,
    idempotency_key_expires_at, tags, output, output_is_error, target_id, created_at,
    completed_at
FROM waitpoints WHERE environment = :environment AND id = :id;

-- name: waitpoint_settle_finished
-- The run and batch waitpoints of runs a finish just ended, settled in the finish's own
-- transaction (waitpoints_by_target finds them; a parent's trigger_and_wait resolves with its
-- child's finish: no resolver transaction).
UPDATE waitpoints SET status = 'COMPLETED', completed_at = :now
WHERE status = 'PENDING' AND environment = :environment
  AND target_id IN (SELECT value FROM json_each(:ids)
      UNION SELECT r.batch_id FROM runs r WHERE r.id IN (SELECT value FROM json_each(:ids)) AND r.batch_id IS NOT NULL)
  AND (
    (kind = 'RUN' AND EXISTS (SELECT 1 FROM runs r WHERE r.id = waitpoints.target_id
                              AND r.status IN ('COMPLETED', 'CANCELED', 'FAILED', 'CRASHED', 'SYSTEM_FAILURE', 'EXPIRED', 'TIMED_OUT')))
    OR (kind = 'BATCH' AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.batch_id = waitpoints.target_id
                                       AND r.status NOT IN ('COMPLETED', 'CANCELED', 'FAILED', 'CRASHED', 'SYSTEM_FAILURE', 'EXPIRED', 'TIMED_OUT')))
  );

-- name: runs_wake_parents
-- runs_wake for the runs waiting on the waitpoints of the runs a finish just ended.
UPDATE runs SET {{run_wake_set}}
WHERE environment = :environment AND status = 'WAITING'
  AND id IN (SELECT rw.run_id FROM waitpoints w JOIN run_waitpoints rw ON rw.waitpoint_id = w.id
                 WHERE w.target_id IN (SELECT value FROM json_each(:ids)
      UNION SELECT r.batch_id FROM runs r WHERE r.id IN (SELECT value FROM json_each(:ids)) AND r.batch_id IS NOT NULL)
                   AND w.environment = :environment AND w.status = 'COMPLETED')
      AND {{run_unblocked}}
RETURNING id;

-- name: runs_wake_waitpoint
-- runs_wake for the runs linked to one waitpoint (:id) that its completion just settled: a
-- token, an input stream's wait. The runs are found through the waitpoint's links and read by
-- primary key, so a completion's cost does not grow with the runs waiting (runs_wake re-checks
-- every WAITING run of the environment: ~12 ms per token with 5,000 parked). The unary "+"
-- keeps SQLite off runs_waiting, which those conditions would otherwise pick.
UPDATE runs SET {{run_wake_set}}
WHERE id IN (SELECT rw.run_id FROM run_waitpoints rw WHERE rw.waitpoint_id = :id)
  AND +environment = :environment AND +status = 'WAITING'
  AND {{run_unblocked}}
RETURNING id;

-- name: runs_wake
-- WAITING → QUEUED (queue position kept) for runs none of whose current waitpoints is pending.
-- INDEXED BY: with statistics saying the environment holds few runs, SQLite walks every run
-- of the environment (runs_by_environment) instead of the waiting ones.
UPDATE runs INDEXED BY runs_waiting
SET {{run_wake_set}}
WHERE environment = :environment AND status = 'WAITING' AND {{run_unblocked}}
RETURNING id;
