-- Named queries only the PostgreSQL store has (the shared ones are in sql/shared.sql).
-- Written with :name placeholders like every query; they become psycopg's %(name)s at load.
-- List parameters travel as JSON arrays (json.dumps is one C call; psycopg adapts a Python
-- list element by element), except in the claim, whose hot path binds arrays.
--
-- Lock order: a statement that changes slot counters locks the environment's slot row first
-- (environment_slot_lock), then runs, then the group counters (in the runs trigger, or in the
-- claim's and the finish's own statement: 0016).
-- Claims, finishes, cancels, suspends and the reaper take the same order, so they cannot
-- deadlock with each other.

-- fragment: woken_notified
-- The end of a wake that NOTIFYs in the same statement: its CTE "woken" (the ids), then the
-- environment's workers woken if it woke any. "woken" is referenced so that it runs; the ids
-- come back, and one NULL row when the NOTIFY went.
notified AS (
    SELECT pg_notify('shipyard_ready', :environment) WHERE EXISTS (SELECT 1 FROM woken)
)
SELECT id FROM woken
UNION ALL SELECT NULL FROM notified

-- name: run_insert
-- Runs in one statement; the rows travel as one JSON array (one C json.dumps instead of 30
-- Python-dumped parameters each). Conflicts (an id or a key already held) are skipped. Each
-- inserted run gets its 'created' event here (migration 0013); the statement's row count is
-- that of the events, one per inserted run.
WITH ins AS (
    INSERT INTO runs (
        id, environment, task_id, status, payload, metadata, tags, queue, concurrency_key,
        priority_ms, queued_at, sort_key, available_at, delay_until, ttl_ms, max_attempts,
        idempotency_key, idempotency_key_expires_at, parent_run_id, root_run_id, depth,
        batch_id, batch_index, machine, max_duration_s, trigger_function, is_test,
        created_at, updated_at, debounce_key, ttl_expires_at, version
    )
    SELECT i.id, i.environment, i.task_id, i.status, i.payload, i.metadata, i.tags, i.queue,
           i.concurrency_key, i.priority_ms, i.queued_at, i.sort_key, i.available_at,
           i.delay_until, i.ttl_ms, i.max_attempts, i.idempotency_key,
           i.idempotency_key_expires_at, i.parent_run_id, i.root_run_id, i.depth, i.batch_id,
           i.batch_index, i.machine, i.max_duration_s, i.trigger_function, i.is_test,
           i.created_at, i.created_at, i.debounce_key, i.ttl_expires_at, i.version
    FROM json_to_recordset(CAST(:rows AS json)) AS i(
        id text, environment text, task_id text, status text, payload text, metadata text,
        tags text, queue text, concurrency_key text, priority_ms bigint, queued_at bigint,
        sort_key bigint, available_at bigint, delay_until bigint, ttl_ms bigint,
        max_attempts bigint, idempotency_key text, idempotency_key_expires_at bigint,
        parent_run_id text, root_run_id text, depth bigint, batch_id text, batch_index bigint,
        machine text, max_duration_s bigint, trigger_function text, is_test bigint,
        created_at bigint, debounce_key text, ttl_expires_at bigint, version text
    )
    ON CONFLICT DO NOTHING
    RETURNING id, created_at, status, metadata
)
INSERT INTO run_events (run_id, ts, kind, message, attributes)
SELECT id, created_at, 'created', status, NULLIF(metadata, '{}') FROM ins ORDER BY id;

-- name: run_insert_bulk
-- Runs made from one template (a batch whose items share task and options): the shared
-- values are bound once, only each run's id and payload travel per run, as two JSON arrays
-- of strings zipped by position (ROWS FROM); position + :offset (the chunk's first run, see
-- rows.bulk_chunks) is the batch index. The server parses two strings per run instead of a
-- 31-key object, the client dumps no per-run dict. Every bound value is cast: untyped NULLs
-- in a SELECT list would be text. The 'created' events and the row count as in run_insert.
WITH ins AS (
    INSERT INTO runs (
        id, environment, task_id, status, payload, metadata, tags, queue, concurrency_key,
        priority_ms, queued_at, sort_key, available_at, delay_until, ttl_ms, max_attempts,
        idempotency_key, idempotency_key_expires_at, parent_run_id, root_run_id, depth,
        batch_id, batch_index, machine, max_duration_s, trigger_function, is_test,
        created_at, updated_at, debounce_key, ttl_expires_at, version
    )
    SELECT r.id, CAST(:environment AS text), CAST(:task_id AS text), CAST(:status AS text),
           r.payload, CAST(:metadata AS text), CAST(:tags AS text), CAST(:queue AS text),
           CAST(:concurrency_key AS text), CAST(:priority_ms AS bigint),
           CAST(:queued_at AS bigint), CAST(:sort_key AS bigint), CAST(:available_at AS bigint),
           CAST(:delay_until AS bigint), CAST(:ttl_ms AS bigint), CAST(:max_attempts AS bigint),
           CAST(:idempotency_key AS text), CAST(:idempotency_key_expires_at AS bigint),
           CAST(:parent_run_id AS text), CAST(:root_run_id AS text), CAST(:depth AS bigint),
           CAST(:batch_id AS text),
           CASE WHEN CAST(:batch_index AS bigint) IS NULL THEN NULL
                ELSE CAST(:offset AS bigint) + r.n - 1 END,
           CAST(:machine AS text), CAST(:max_duration_s AS bigint),
           CAST(:trigger_function AS text), CAST(:is_test AS bigint), CAST(:created_at AS bigint),
           CAST(:created_at AS bigint), CAST(:debounce_key AS text),
           CAST(:ttl_expires_at AS bigint), CAST(:version AS text)
    FROM ROWS FROM (
        json_array_elements_text(CAST(:ids AS json)),
        json_array_elements_text(CAST(:payloads AS json))
    ) WITH ORDINALITY AS r(id, payload, n)
    ON CONFLICT DO NOTHING
    RETURNING id, created_at, status, metadata
)
INSERT INTO run_events (run_id, ts, kind, message, attributes)
SELECT id, created_at, 'created', status, NULLIF(metadata, '{}') FROM ins ORDER BY id;

-- name: run_insert_notify
-- The common trigger in one statement (one round trip, one commit in autocommit): insert the
-- run, its 'created' event (migration 0013) and NOTIFY in the same transaction, only if the
-- row was inserted. No row back (a key conflict) means: resolve the keys in a transaction
-- (procedures.run_insert). A run without tags uses this one; run_insert_notify_tags adds
-- them (an INSERT of no rows still opens run_tags and its indexes: ~7 µs of server time).
WITH ins AS (
    INSERT INTO runs (
        id, environment, task_id, status, payload, metadata, tags, queue, concurrency_key,
        priority_ms, queued_at, sort_key, available_at, delay_until, ttl_ms, max_attempts,
        idempotency_key, idempotency_key_expires_at, parent_run_id, root_run_id, depth,
        batch_id, batch_index, machine, max_duration_s, trigger_function, is_test,
        created_at, updated_at, debounce_key, ttl_expires_at, version
    ) VALUES (
        :id, :environment, :task_id, :status, :payload, :metadata, :tags,
        :queue, :concurrency_key, :priority_ms, :queued_at, :sort_key,
        :available_at, :delay_until, :ttl_ms, :max_attempts, :idempotency_key,
        :idempotency_key_expires_at, :parent_run_id, :root_run_id, :depth,
        :batch_id, :batch_index, :machine, :max_duration_s, :trigger_function,
        :is_test, :created_at, :created_at, :debounce_key, :ttl_expires_at, :version
    )
    ON CONFLICT DO NOTHING
    RETURNING id, environment, created_at, status, metadata
), created AS (
    INSERT INTO run_events (run_id, ts, kind, message, attributes)
    SELECT id, created_at, 'created', status, NULLIF(metadata, '{}') FROM ins
)
SELECT pg_notify('shipyard_ready', ins.environment) FROM ins;

-- name: run_insert_notify_tags
-- run_insert_notify, and the run's tags.
WITH ins AS (
    INSERT INTO runs (
        id, environment, task_id, status, payload, metadata, tags, queue, concurrency_key,
        priority_ms, queued_at, sort_key, available_at, delay_until, ttl_ms, max_attempts,
        idempotency_key, idempotency_key_expires_at, parent_run_id, root_run_id, depth,
        batch_id, batch_index, machine, max_duration_s, trigger_function, is_test,
        created_at, updated_at, debounce_key, ttl_expires_at, version
    ) VALUES (
        :id, :environment, :task_id, :status, :payload, :metadata, :tags,
        :queue, :concurrency_key, :priority_ms, :queued_at, :sort_key,
        :available_at, :delay_until, :ttl_ms, :max_attempts, :idempotency_key,
        :idempotency_key_expires_at, :parent_run_id, :root_run_id, :depth,
        :batch_id, :batch_index, :machine, :max_duration_s, :trigger_function,
        :is_test, :created_at, :created_at, :debounce_key, :ttl_expires_at, :version
    )
    ON CONFLICT DO NOTHING
    RETURNING id, environment, created_at, status, metadata
), created AS (
    INSERT INTO run_events (run_id, ts, kind, message, attributes)
    SELECT id, created_at, 'created', status, NULLIF(metadata, '{}') FROM ins
), tagged AS (
    INSERT INTO run_tags (run_id, tag)
    SELECT ins.id, t.tag FROM ins, unnest(CAST(:tag_list AS text[])) AS t(tag)
    ON CONFLICT DO NOTHING
)
SELECT pg_notify('shipyard_ready', ins.environment) FROM ins;

-- name: run_list
SELECT * FROM runs
WHERE environment = :environment
  AND (CAST(:cursor AS text) IS NULL OR id < :cursor)
  AND (CAST(:statuses AS json) IS NULL
       OR status IN (SELECT json_array_elements_text(CAST(:statuses AS json))))
  AND (CAST(:task_ids AS json) IS NULL
       OR task_id IN (SELECT json_array_elements_text(CAST(:task_ids AS json))))
  AND (CAST(:tag AS text) IS NULL
       OR id IN (SELECT run_id FROM run_tags WHERE tag = :tag))
  AND (CAST(:batch_id AS text) IS NULL OR batch_id = :batch_id)
  AND (CAST(:schedule_id AS text) IS NULL OR schedule_id = :schedule_id)
  AND (CAST(:created_from AS bigint) IS NULL OR created_at >= :created_from)
  AND (CAST(:created_to AS bigint) IS NULL OR created_at <= :created_to)
ORDER BY id DESC
LIMIT :limit;

-- name: run_list_children
-- run_list of one run's children: by the parent index (a partial one: hence IS NOT NULL).
SELECT * FROM runs
WHERE parent_run_id = :parent_run_id AND parent_run_id IS NOT NULL
  AND environment = :environment
  AND (CAST(:cursor AS text) IS NULL OR id < :cursor)
  AND (CAST(:statuses AS json) IS NULL
       OR status IN (SELECT json_array_elements_text(CAST(:statuses AS json))))
  AND (CAST(:task_ids AS json) IS NULL
       OR task_id IN (SELECT json_array_elements_text(CAST(:task_ids AS json))))
  AND (CAST(:tag AS text) IS NULL
       OR id IN (SELECT run_id FROM run_tags WHERE tag = :tag))
  AND (CAST(:batch_id AS text) IS NULL OR batch_id = :batch_id)
  AND (CAST(:schedule_id AS text) IS NULL OR schedule_id = :schedule_id)
  AND (CAST(:created_from AS bigint) IS NULL OR created_at >= :created_from)
  AND (CAST(:created_to AS bigint) IS NULL OR created_at <= :created_to)
ORDER BY id DESC
LIMIT :limit;

-- name: batch_list
SELECT id, environment, status, run_count, idempotency_key, created_at, completed_at
FROM batches
WHERE environment = :environment AND (CAST(:cursor AS text) IS NULL OR id < :cursor)
ORDER BY id DESC
LIMIT :limit;

-- name: run_stats
SELECT (created_at - CAST(:created_from AS bigint)) / CAST(:bucket_ms AS bigint) AS bucket,
       status, COUNT(*) AS runs
FROM runs
WHERE environment = :environment AND created_at >= CAST(:created_from AS bigint)
GROUP BY 1, 2;

-- name: run_pending_exists
SELECT 1 FROM runs
WHERE environment = :environment AND status = 'PENDING_VERSION'
  AND task_id IN (SELECT json_array_elements_text(CAST(:task_ids AS json)))
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
  AND task_id IN (SELECT json_array_elements_text(CAST(:task_ids AS json)))
RETURNING id;

-- name: run_get_debounced
SELECT * FROM runs
WHERE environment = :environment AND task_id = :task_id
  AND debounce_key = :debounce_key AND status = 'DELAYED'
FOR UPDATE;

-- name: run_ready_exists
-- The claim's lock-free peek, and a worker's want of more runs (procedures.worker_share);
-- task ids as a JSON array, as SQLite's.
SELECT 1 FROM runs
WHERE environment = :environment
  AND status = 'QUEUED'
  AND available_at <= :now
  AND task_id IN (SELECT json_array_elements_text(CAST(:task_ids AS json)))
  -- The version lock, as in run_claim_limited.
  AND (version IS NULL OR version = :version OR NOT EXISTS (
      SELECT 1 FROM workers w
      WHERE w.environment = :environment AND w.version = runs.version
        AND w.stopped_at IS NULL AND w.heartbeat_at >= :live_since))
LIMIT 1;

-- name: bookkeeping_generic_plans
-- A worker's claim or finish: its statements run their generic plan from the first execution
-- (PostgresStore._bookkeeping).
SET LOCAL plan_cache_mode TO force_generic_plan;

-- name: bookkeeping_async_commit
-- A worker's claim or finish, with SHIPYARD_POSTGRES_ASYNC_COMMIT: this transaction's commit
-- returns before its WAL is flushed (the WAL writer flushes it within ~3 × wal_writer_delay).
SET LOCAL synchronous_commit TO off;

-- name: environment_slot_lock
-- Every transaction that moves the slot counters of an environment takes this lock first, so
-- the counters a claim reads next are exact (every status change that moves a counter updates
-- this row too, in that order). Taking it also moves in the slots that finishes freed (0018:
-- a finish inserts them into slot_releases without this lock): the release rows committed
-- before this statement are deleted and subtracted from environment_slots and
-- concurrency_slots, in the lock's transaction. A finish's rows appear only when it commits, so
-- the counters never count a slot free early; rows committed while this statement waited for
-- the lock wait for the next one. Nothing after the lock waits: the slot row is this
-- transaction's, the group rows change only under it, and only a holder deletes release rows.
WITH lock AS MATERIALIZED (
    SELECT running FROM environment_slots WHERE environment = :environment FOR UPDATE
), r AS (
    DELETE FROM slot_releases
    WHERE environment = :environment AND EXISTS (SELECT 1 FROM lock)
    RETURNING queue, concurrency_key, released
), environment_moved AS (
    UPDATE environment_slots SET running = running - (SELECT sum(released) FROM r)
    WHERE environment = :environment AND EXISTS (SELECT 1 FROM r)
), groups_moved AS (
    INSERT INTO concurrency_slots AS s (environment, queue, concurrency_key, running)
    SELECT :environment, queue, concurrency_key, -sum(released) FROM r
    GROUP BY queue, concurrency_key
    ORDER BY queue, concurrency_key
    ON CONFLICT (environment, queue, concurrency_key)
    DO UPDATE SET running = s.running + EXCLUDED.running
)
SELECT running FROM lock;

-- name: run_claim_limited
-- Runs after environment_slot_lock in the same transaction, so its snapshot sees every
-- committed slot change. Mirrors store/claims.py (the SQLite claim runs the same rules in
-- Python): each (queue, concurrency key) group that has queued runs gets
-- room = min(override ?? code limit ?? environment limit, environment limit) − running
-- (none when paused); the environment as a whole gets floor(limit × burst) − running; the
-- oldest priority-adjusted runs within those rooms are leased. Groups are found with a skip
-- scan: one index probe per group. max_attempts is locked at the first claim. (:env,
-- :env_limit, :wid, :burst and :lease are short names that keep the text under psycopg's
-- 4,096-character cache: store/sql.py _unindent.)
WITH RECURSIVE g(queue, ck) AS (
    (SELECT queue, COALESCE(concurrency_key, '') FROM runs
     WHERE environment = :env AND status = 'QUEUED'
     ORDER BY queue, COALESCE(concurrency_key, '') LIMIT 1)
    UNION ALL
    SELECT n.queue, n.ck FROM g, LATERAL (
        SELECT queue, COALESCE(concurrency_key, '') AS ck FROM runs
        WHERE environment = :env AND status = 'QUEUED'
          AND (queue, COALESCE(concurrency_key, '')) > (g.queue, g.ck)
        ORDER BY queue, COALESCE(concurrency_key, '') LIMIT 1
    ) n
), mine AS (
    -- The runs the claiming worker holds per group, as it counts them (its share below).
    SELECT h ->> 0 AS queue, h ->> 1 AS ck, CAST(h ->> 2 AS bigint) AS n
    FROM json_array_elements(CAST(:held AS json)) AS h
), groups AS (
    -- A worker claiming a share (other workers want runs too) stops at ceil(limit × share)
    -- of each group's runs (ClaimShare.capacity in store/claims.py, SQLite's rule); alone
    -- (share 1) at the limit.
    SELECT g.queue, g.ck,
           LEAST(lim.n - COALESCE(s.running, 0),
                 CAST(CEIL(lim.n * CAST(:share AS double precision)) AS bigint)
                     - COALESCE(m.n, 0)) AS room
    FROM g
    LEFT JOIN queues q ON q.environment = :env AND q.name = g.queue
    CROSS JOIN LATERAL (
        SELECT LEAST(COALESCE(q.limit_override, q.concurrency_limit, :env_limit),
                     :env_limit) AS n
    ) lim
    LEFT JOIN concurrency_slots s ON s.environment = :env AND s.queue = g.queue
        AND s.concurrency_key = g.ck
    LEFT JOIN mine m ON m.queue = g.queue AND m.ck = g.ck
    WHERE COALESCE(q.paused, 0) = 0
), free AS (
    -- :limit, plus the slots a suspend earlier in this transaction gave back (the setting
    -- run_suspend_pending leaves; unset, or '' once a transaction that set it has ended: 0).
    SELECT LEAST(
        :limit + CAST(COALESCE(NULLIF(current_setting('shipyard.freed', true), ''), '0')
                      AS bigint),
        COALESCE(
            (SELECT GREATEST(0, FLOOR(:env_limit * :burst)::bigint - running)
             FROM environment_slots WHERE environment = :env),
            0
        )
    ) AS n
), candidates AS (
    SELECT c.id, c.sort_key
    FROM groups
    CROSS JOIN LATERAL (
        SELECT id, sort_key FROM runs
        WHERE environment = :env AND status = 'QUEUED'
          AND queue = groups.queue AND COALESCE(concurrency_key, '') = groups.ck
          AND available_at <= :now
          AND task_id = ANY(:task_ids)
          -- The version lock (0006): a run locked to a version goes only to a worker of
          -- that version while one is live; else to any worker (which relocks it below).
          AND (version IS NULL OR version = :version OR NOT EXISTS (
              SELECT 1 FROM workers w
              WHERE w.environment = :env AND w.version = runs.version
                AND w.stopped_at IS NULL AND w.heartbeat_at >= :live_since))
        ORDER BY sort_key, id
        LIMIT LEAST(groups.room, (SELECT n FROM free))
    ) c
    WHERE groups.room > 0
), chosen AS MATERIALIZED (
    SELECT id, CAST('QUEUED' AS text) AS status
    FROM candidates ORDER BY sort_key, id LIMIT (SELECT n FROM free)
), written AS MATERIALIZED (
    -- This statement writes its status events and slot changes itself (below), so the runs
    -- trigger skips it (0016). Evaluated before the first run changes (claimed joins it).
    SELECT set_config('shipyard.changes_written', 'on', true) AS flag
), claimed AS (
    UPDATE runs r SET
        status = 'EXECUTING',
        -- A run resuming from a durable wait continues its attempt (resume_state: 0004).
        attempt_number = r.attempt_number
            + CASE WHEN r.resume_state = 'RESUMING' THEN 0 ELSE 1 END,
        resume_state = CASE WHEN r.resume_state = 'RESUMING' THEN 'RESUMED' ELSE NULL END,
        lease_owner = :wid,
        lease_expires_at = :lease,
        -- Never earlier than the run's last change: a claim's time is taken when it is sent,
        -- and a run triggered after that (ready at once) may commit before the claim runs.
        started_at = COALESCE(r.started_at, GREATEST(:now, r.updated_at)),
        updated_at = GREATEST(:now, r.updated_at),
        -- The run locks to the claiming worker's version (0006).
        version = COALESCE(CAST(:version AS TEXT), r.version),
        max_attempts = COALESCE(
            r.max_attempts,
            (SELECT t.max_attempts FROM tasks t
             WHERE t.environment = r.environment AND t.id = r.task_id)
        )
    FROM chosen CROSS JOIN written
    -- By primary key, whatever the statistics say. Written "r.status = 'QUEUED'", the
    -- condition would let the planner read runs_ready_by_group (status = 'QUEUED') whole and
    -- filter it by id — its pick when statistics say few runs are queued (analyzed while the
    -- queue was short), one walk of every queued run per claim at 10⁶ queued. Compared with
    -- a column of the (materialized) chosen rows, it proves no partial index's predicate.
    WHERE r.id = chosen.id AND r.status = chosen.status
    RETURNING r.*
), started AS (
    INSERT INTO attempts (run_id, number, status, worker_id, started_at)
    SELECT id, attempt_number, 'EXECUTING', :wid, updated_at FROM claimed
    WHERE resume_state IS DISTINCT FROM 'RESUMED'
), resumed AS (
    UPDATE attempts a SET worker_id = :wid, status = 'EXECUTING'
    FROM claimed c
    WHERE c.resume_state = 'RESUMED' AND a.run_id = c.id AND a.number = c.attempt_number
), events AS (
    -- What the runs trigger writes for a status change (0016): QUEUED → EXECUTING.
    INSERT INTO run_events (run_id, ts, kind, message)
    SELECT id, updated_at, 'status', status FROM claimed ORDER BY id
), env_taken AS (
    -- Each claimed run takes a slot of the environment (its row is locked since
    -- environment_slot_lock) and of its group.
    UPDATE environment_slots SET running = running + (SELECT count(*) FROM claimed)
    WHERE environment = :env AND EXISTS (SELECT 1 FROM claimed)
), groups_taken AS (
    INSERT INTO concurrency_slots AS s (environment, queue, concurrency_key, running)
    SELECT :env, queue, COALESCE(concurrency_key, ''), count(*) FROM claimed
    GROUP BY 2, 3 ORDER BY 2, 3
    ON CONFLICT (environment, queue, concurrency_key)
    DO UPDATE SET running = s.running + EXCLUDED.running
), woken AS (
    SELECT pg_notify('shipyard_feed', '') FROM claimed LIMIT 1
)
SELECT c.* FROM claimed c LEFT JOIN woken ON true ORDER BY c.sort_key, c.id;

-- name: run_finish_many
-- Fenced by attempt number and lease owner: a stale attempt's row simply does not match.
-- One statement (one transaction, one round trip in autocommit) per batch: runs, attempts and
-- the accepted attempts' events, then the runs' status events (0016) and the slots they free,
-- as slot_releases rows (0018: not under the environment's slot row, which this statement never
-- waits for). Inputs and events travel as one JSON array each.
WITH written AS MATERIALIZED (
    -- This statement's word that it writes its status events and slot changes itself (0016),
    -- before the first run changes (input joins it).
    SELECT set_config('shipyard.changes_written', 'on', true) AS flag
), input AS (
    SELECT i.* FROM json_to_recordset(CAST(:input AS json)) AS i(
        ord bigint, run_id text, attempt_number bigint, worker_id text, status text,
        attempt_status text, output text, error text, retry_at bigint, now bigint,
        metadata text, metadata_base text
    )
    LEFT JOIN written ON true
), finished AS (
    UPDATE runs r SET
        status = i.status,
        -- The attempt's last metadata operations applied (NULL: none, or unchanged): to the
        -- row run_finish_metadata_get locked, or to metadata_base, when the row still holds it
        -- (else the finish is not taken here; the store retries it with the row locked).
        metadata = COALESCE(i.metadata, r.metadata),
        output = i.output,
        error = i.error,
        available_at = COALESCE(i.retry_at, r.available_at),
        finished_at = CASE WHEN i.status = 'QUEUED' THEN NULL ELSE i.now END,
        lease_owner = NULL,
        lease_expires_at = NULL,
        updated_at = i.now
    FROM input i
    -- By primary key only ("= ANY (ARRAY(...))"; environment and status by "IS NOT DISTINCT
    -- FROM", which no index serves), as run_suspend_pending. Written "status = 'EXECUTING'",
    -- the planner read runs_owner (the EXECUTING runs) with a bitmap scan, which walks every
    -- entry of a run claimed since the last vacuum (bitmap scans never mark dead entries):
    -- 33,400 entries per finish 30,000 runs into a drain, whose finishes went from ~6 to
    -- ~11 ms per 100 runs (bench/claim_cycle.py --runs 40000).
    WHERE r.id = ANY (ARRAY(SELECT run_id FROM input))
      AND r.id = i.run_id
      AND r.environment IS NOT DISTINCT FROM :environment
      AND r.status IS NOT DISTINCT FROM 'EXECUTING'
      AND r.attempt_number = i.attempt_number
      AND r.lease_owner = i.worker_id
      AND (i.metadata_base IS NULL OR r.metadata = i.metadata_base)
    RETURNING r.id, i.ord, i.attempt_number, i.attempt_status, i.error, i.now, r.status,
        r.queue, COALESCE(r.concurrency_key, '') AS ck
), attempts_done AS (
    UPDATE attempts a SET status = f.attempt_status, finished_at = f.now, error = f.error
    FROM finished f
    WHERE a.run_id = f.id AND a.number = f.attempt_number AND a.status = 'EXECUTING'
), events AS (
    -- Only for accepted inputs, in order (seq; owner is the ord of the input each event
    -- belongs to), then the status changes (0016: what the runs trigger writes), so an
    -- attempt's own events get lower ids than its run's status change.
    INSERT INTO run_events (run_id, ts, kind, level, message, attributes)
    SELECT x.run_id, x.ts, x.kind, x.level, x.message, x.attributes FROM (
        SELECT 0 AS part, e.seq AS pos, e.run_id, e.ts, e.kind, e.level, e.message,
               e.attributes
        FROM json_to_recordset(CAST(:events AS json)) AS e(
            seq bigint, owner bigint, run_id text, ts bigint, kind text, level text,
            message text, attributes text
        )
        WHERE e.owner IN (SELECT ord FROM finished)
        UNION ALL
        SELECT 1, 0, f.id, f.now, 'status', NULL, f.status, NULL FROM finished f
    ) x
    ORDER BY x.part, x.pos, x.run_id
), freed AS (
    -- Each finished run gives back its slot (it was EXECUTING; no result holds one): rows of
    -- their own, which the next holder of the slot row moves into the counters (0018).
    INSERT INTO slot_releases (environment, queue, concurrency_key, released)
    SELECT :environment, queue, ck, count(*) FROM finished
    GROUP BY queue, ck
), feed_woken AS (
    SELECT pg_notify('shipyard_feed', '') FROM finished LIMIT 1
)
SELECT f.ord FROM finished f LEFT JOIN feed_woken ON true;

-- name: run_finish_metadata_get
-- The stored metadata of the runs whose finish carries their last metadata operations, locked
-- until the finish in the same transaction (after environment_slot_lock, as every writer).
SELECT id, metadata FROM runs
WHERE environment = :environment
  AND id IN (SELECT value FROM json_array_elements_text(CAST(:ids AS json)))
ORDER BY id
FOR UPDATE;

-- name: run_schedule_pass
-- A scheduler pass in one statement (one round trip, where the shared procedure takes six):
-- expire runs whose TTL passed unstarted, promote due DELAYED runs (a run due and expired at
-- once expires, as in the procedure), wake the workers if any was promoted, and report the
-- next times something falls due (kind 'next', either may be NULL). Both UPDATEs read one
-- snapshot, so the promotion leaves out the runs the expiry takes.
WITH expired AS (
    UPDATE runs SET status = 'EXPIRED', error = :expired_error, expired_at = :now,
        finished_at = :now, updated_at = :now
    WHERE environment = :environment
      AND status IN ('QUEUED', 'DELAYED', 'PENDING_VERSION')
      AND started_at IS NULL
      AND ttl_expires_at <= :now
    RETURNING id
), promoted AS (
    UPDATE runs SET status = 'QUEUED', available_at = delay_until, updated_at = :now
    WHERE environment = :environment AND status = 'DELAYED' AND delay_until <= :now
      AND NOT (started_at IS NULL AND ttl_expires_at IS NOT NULL AND ttl_expires_at <= :now)
    RETURNING id
), woken AS (
    SELECT pg_notify('shipyard_ready', :environment) WHERE EXISTS (SELECT 1 FROM promoted)
)
SELECT 'expired' AS kind, id, CAST(NULL AS bigint) AS at FROM expired
UNION ALL SELECT 'promoted', id, NULL FROM promoted
UNION ALL SELECT 'woken', NULL, NULL FROM woken
UNION ALL SELECT 'next', NULL, (
    SELECT delay_until FROM runs WHERE environment = :environment AND status = 'DELAYED'
        AND delay_until > :now
    ORDER BY delay_until LIMIT 1)
UNION ALL SELECT 'next', NULL, (
    SELECT ttl_expires_at FROM runs WHERE environment = :environment
        AND status IN ('QUEUED', 'DELAYED', 'PENDING_VERSION')
        AND ttl_expires_at IS NOT NULL AND started_at IS NULL AND ttl_expires_at > :now
    ORDER BY ttl_expires_at LIMIT 1);

-- name: run_leased
-- A worker's own leased runs (the runs_owner index): after a connection was lost in the
-- middle of a claim that committed, the worker finds the runs it never received.
SELECT * FROM runs
WHERE environment = :environment AND status = 'EXECUTING' AND lease_owner = :worker_id
ORDER BY sort_key, id;

-- name: run_next_due
-- When the scheduler has work next: the earliest DELAYED run's time, and the earliest TTL of
-- a run that never started (two probes of the partial indexes runs_delayed and runs_ttl).
SELECT
    (SELECT delay_until FROM runs WHERE environment = :environment AND status = 'DELAYED'
     ORDER BY delay_until LIMIT 1) AS delay_until,
    (SELECT ttl_expires_at FROM runs WHERE environment = :environment
        AND status IN ('QUEUED', 'DELAYED', 'PENDING_VERSION')
        AND ttl_expires_at IS NOT NULL AND started_at IS NULL
     ORDER BY ttl_expires_at LIMIT 1) AS ttl_expires_at;

-- name: run_reap_expired
-- A lost worker's attempt counts as crashed; the run retries while attempts remain. Runs
-- being finished right now are skipped (their finish ends the lease anyway).
UPDATE runs r SET
    status = CASE WHEN r.attempt_number >= COALESCE(r.max_attempts, 1)
                  THEN 'CRASHED' ELSE 'QUEUED' END,
    error = CASE WHEN r.attempt_number >= COALESCE(r.max_attempts, 1)
                 THEN :crash_error ELSE r.error END,
    finished_at = CASE WHEN r.attempt_number >= COALESCE(r.max_attempts, 1)
                       THEN :now ELSE NULL END,
    available_at = :now,
    lease_owner = NULL,
    lease_expires_at = NULL,
    updated_at = :now
WHERE r.id IN (
    -- IS TRUE: runs_owner (the EXECUTING runs) alone, never runs_by_environment too.
    SELECT id FROM runs
    WHERE (environment = :environment) IS TRUE AND status = 'EXECUTING'
      AND lease_expires_at < :now
    FOR UPDATE SKIP LOCKED
)
RETURNING r.id, r.attempt_number, r.status;

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
  AND status NOT IN (SELECT json_array_elements_text(CAST(:final_statuses AS json)))
RETURNING id;

-- name: run_ownership
-- "= ANY (ARRAY(...))": probes of the primary key; "IN (SELECT ...)" may plan as a hash join
-- over a scan of every run when statistics are old. The environment by "IS NOT DISTINCT FROM"
-- (no index serves it): "environment = ..." let the planner read runs_by_environment, every
-- run the environment ever had, every tick on every worker, when statistics say it has few.
SELECT id, status, attempt_number, lease_owner FROM runs
WHERE environment IS NOT DISTINCT FROM :environment
  AND id = ANY (ARRAY(SELECT json_array_elements_text(CAST(:ids AS json))));

-- name: run_metadata_get
SELECT metadata FROM runs WHERE environment = :environment AND id = :run_id FOR UPDATE;

-- name: run_tags_get
SELECT tags FROM runs WHERE environment = :environment AND id = :run_id FOR UPDATE;

-- name: environment_rate_get
SELECT rate_tokens, rate_refilled_at FROM environment_slots
WHERE environment = :environment FOR UPDATE;

-- name: worker_heartbeat_runs
-- SKIP LOCKED: a run whose result is being written right now is skipped (that write ends its
-- lease), so a heartbeat never waits for run_finish_many — nor deadlocks with it, as the two
-- would otherwise lock the same worker's runs in different orders.
--
-- By primary key, as run_finish_many (environment and status by "IS NOT DISTINCT FROM"): with
-- "status = 'EXECUTING'" the planner may read runs_owner by a bitmap scan, every entry of a run
-- claimed since the last vacuum, once a second per worker.
UPDATE runs SET lease_expires_at = :lease_expires_at
WHERE id IN (
    SELECT id FROM runs
    WHERE id = ANY (ARRAY(SELECT json_array_elements_text(CAST(:run_ids AS json))))
      AND environment IS NOT DISTINCT FROM :environment
      AND status IS NOT DISTINCT FROM 'EXECUTING'
      AND lease_owner = :worker_id
    FOR UPDATE SKIP LOCKED
);

-- name: waitpoint_list
-- Tokens newest first (ids sort by creation), filtered and paged here; output is not read.
SELECT id, environment, kind, status, completes_at, timeout_at, idempotency_key,
    idempotency_key_expires_at, tags, NULL AS output, output_is_error, target_id, created_at,
    completed_at
FROM waitpoints
WHERE environment = :environment AND kind = 'MANUAL'
  AND (CAST(:cursor AS text) IS NULL OR id < :cursor)
  AND (CAST(:statuses AS json) IS NULL
       OR status IN (SELECT json_array_elements_text(CAST(:statuses AS json))))
  AND (CAST(:idempotency_key AS text) IS NULL OR idempotency_key = :idempotency_key)
  AND (CAST(:created_from AS bigint) IS NULL OR created_at >= :created_from)
  AND (CAST(:created_to AS bigint) IS NULL OR created_at <= :created_to)
  AND (CAST(:tags AS jsonb) IS NULL OR CAST(tags AS jsonb) @> CAST(:tags AS jsonb))
ORDER BY id DESC
LIMIT :limit;

-- name: ready_notify
SELECT pg_notify('shipyard_ready', :environment);

-- name: wants_notify
-- A worker's want of more runs changed: its peers recount their share (worker/share.py).
SELECT pg_notify('shipyard_wants', :environment);

-- name: migrate_lock
SELECT pg_advisory_xact_lock(7262026);

-- name: migrations_table
CREATE TABLE IF NOT EXISTS shipyard_migrations (
    name        TEXT PRIMARY KEY,
    applied_at  BIGINT NOT NULL
);

-- name: feed_position
-- Where a reader stands after reading everything visible now (store/feed.py).
SELECT CAST(pg_current_snapshot() AS text);

-- name: feed_events
-- The rows of the transactions visible in :until but not in :since (their tx is at least
-- since's xmax, or was in progress then), after :after_id; both conditions on tx use the
-- run_events_feed index. status: the run's status as of the event (a run's events are
-- committed in id order); started: whether it had started executing by then.
SELECT e.id, e.run_id, e.ts, e.kind, e.message, e.attributes,
       CAST(CAST(e.tx AS text) AS bigint) AS tx,
       CASE WHEN e.kind IN ('created', 'status') THEN e.message ELSE (
           SELECT s.message FROM run_events s
           WHERE s.run_id = e.run_id AND s.id < e.id AND s.kind IN ('created', 'status')
           ORDER BY s.id DESC LIMIT 1) END AS status,
       EXISTS (SELECT 1 FROM run_events x WHERE x.run_id = e.run_id AND x.id <= e.id
               AND x.kind = 'status' AND x.message = 'EXECUTING') AS started
FROM run_events e JOIN runs r ON r.id = e.run_id
WHERE e.kind IN ('created', 'status', 'metadata', 'tag', 'input')
  AND (e.tx >= CAST(:since_xmax AS xid8) OR e.tx = ANY(CAST(:since_xip AS xid8[])))
  AND pg_visible_in_snapshot(e.tx, CAST(:until AS pg_snapshot))
  AND e.id > :after_id
  AND r.environment = :environment
  AND (CAST(:run_ids AS json) IS NULL
       OR e.run_id IN (SELECT json_array_elements_text(CAST(:run_ids AS json))))
  AND (CAST(:tags AS json) IS NULL OR EXISTS (
      SELECT 1 FROM run_tags t
      WHERE t.run_id = e.run_id
        AND t.tag IN (SELECT json_array_elements_text(CAST(:tags AS json)))))
  AND (CAST(:created_from AS bigint) IS NULL OR r.created_at >= :created_from)
ORDER BY e.id
LIMIT :limit;

-- name: feed_runs
SELECT * FROM runs
WHERE environment = :environment
  AND id IN (SELECT json_array_elements_text(CAST(:ids AS json)));

-- name: feed_snapshot_runs
-- The newest :limit matching runs, in id order (byte order, as SQLite sorts them).
SELECT * FROM (
    SELECT * FROM runs
    WHERE environment = :environment
      AND (CAST(:run_ids AS json) IS NULL
           OR id IN (SELECT json_array_elements_text(CAST(:run_ids AS json))))
      AND (CAST(:tags AS json) IS NULL OR id IN (
          SELECT run_id FROM run_tags
          WHERE tag IN (SELECT json_array_elements_text(CAST(:tags AS json)))))
      AND (CAST(:created_from AS bigint) IS NULL OR created_at >= :created_from)
      AND (CAST(:after_run_id AS text) IS NULL
           OR id COLLATE "C" > CAST(:after_run_id AS text) COLLATE "C")
    ORDER BY id COLLATE "C" DESC
    LIMIT :limit
) AS newest
ORDER BY id COLLATE "C";

-- name: stream_heads
SELECT r.id, r.status, s.stream_id, s.next_index
FROM runs r LEFT JOIN streams s ON s.run_id = r.id
WHERE r.environment = :environment
  AND r.id IN (SELECT json_array_elements_text(CAST(:run_ids AS json)));

-- name: input_run_lock
-- A send and a .wait() of one run take its row in turn, so data is never both kept and
-- missed by a token created at the same moment.
SELECT status FROM runs WHERE environment = :environment AND id = :run_id FOR UPDATE;

-- name: feed_notify
SELECT pg_notify('shipyard_feed', '');

-- name: feed_metadata_history
-- What a run's metadata was made of before :before_id: its creation's, then each change's
-- operations (a run's events are in commit order by id).
SELECT e.run_id, e.id, e.kind, e.attributes FROM run_events e
WHERE e.run_id IN (SELECT json_array_elements_text(CAST(:run_ids AS json)))
  AND e.kind IN ('created', 'metadata') AND e.id < :before_id
  AND EXISTS (SELECT 1 FROM runs r WHERE r.id = e.run_id AND r.environment = :environment)
ORDER BY e.id;

-- name: schedule_delete_declarative_except
DELETE FROM schedules
WHERE environment = :environment AND type = :type
  AND task_id NOT IN (SELECT json_array_elements_text(CAST(:task_ids AS json)))
RETURNING task_id;

-- name: schedule_lock_many
-- The schedules a chunk fires, locked in id order before the compare-and-set (whose join
-- order is the planner's), so schedulers firing overlapping chunks cannot deadlock.
SELECT id FROM schedules
WHERE id = ANY (ARRAY(SELECT json_array_elements_text(CAST(:ids AS json))))
  AND environment = :environment
ORDER BY id
FOR UPDATE;

-- name: schedule_advance_many
-- The compare-and-set of many ticks at once; the ids of the schedules it moved on.
UPDATE schedules AS s SET
    next_run = j.next_run,
    next_run_at = j.next_run_at,
    last_run = COALESCE(j.last_run, s.last_run),
    updated_at = :now
FROM json_to_recordset(CAST(:rows AS json))
    AS j(id text, expected bigint, next_run bigint, next_run_at bigint, last_run bigint)
-- "= ANY (ARRAY(...))": found by primary key, not by a scan of every schedule.
WHERE s.id = ANY (ARRAY(SELECT r ->> 'id' FROM json_array_elements(CAST(:rows AS json)) AS r))
  AND s.id = j.id
  AND s.environment = :environment
  AND s.active = 1
  AND s.next_run = j.expected
RETURNING s.id;

-- name: waitpoint_block_get
-- The waitpoint a run is about to suspend on, FOR SHARE: a completion committing meanwhile is
-- waited for and then seen (no suspend); one that starts after waits for the suspend to commit,
-- and then wakes the run in its own transaction. So no WAITING run is left for a poll to find.
SELECT id, environment, kind, status, completes_at, timeout_at, idempotency_key,
    idempotency_key_expires_at, tags, output, output_is_error, target_id, created_at,
    completed_at
FROM waitpoints WHERE environment = :environment AND id = :id
FOR SHARE;

-- name: run_suspend_pending
-- run_suspend for every block of a batch whose waitpoint is still pending, in one statement
-- (waitpoint_block_many: one firing of the slot and status triggers per batch, not one per
-- run). Each row is fenced like a finish; the ids suspended come back, and one NULL row.
--
-- How many it suspended is also left in the transaction's setting shipyard.freed, where the
-- claim that follows in the same transaction (waitpoint_block_and_claim) adds those slots to
-- its limit: sent in the same round trip, not after reading these rows (a round trip and a
-- sync fewer per suspend; the setting ends with the transaction).
--
-- The batch statements of a suspend find their rows by primary key only: "= ANY (ARRAY(...))",
-- and "IS NOT DISTINCT FROM" (the same test as "=" on these NOT NULL columns, but one no index
-- serves) for the environment and status. On tables filled since their last analyze (a new
-- install's first minute, a burst) the planner takes "environment = ..." for a selective
-- condition and used the environment's indexes (or the partial ones of a status) instead:
-- scans of every run or waitpoint of the environment, per block — a 100-run suspend took
-- 20-40 ms of server time, growing with the tables, under the environment's slot lock.
WITH i AS MATERIALIZED (
    SELECT * FROM json_to_recordset(CAST(:input AS json)) AS i(
        run_id text, attempt_number bigint, worker_id text, waitpoint_id text, now bigint
    )
), pending AS MATERIALIZED (
    SELECT w.id FROM waitpoints w
    WHERE w.id = ANY (ARRAY(SELECT waitpoint_id FROM i))
      AND w.environment IS NOT DISTINCT FROM :environment
      AND w.status IS NOT DISTINCT FROM 'PENDING'
), ok AS MATERIALIZED (
    SELECT * FROM i WHERE waitpoint_id IN (SELECT id FROM pending)
), suspended AS (
    UPDATE runs r SET status = 'WAITING', lease_expires_at = NULL, updated_at = ok.now
    FROM ok
    WHERE r.id = ANY (ARRAY(SELECT run_id FROM ok))
      AND r.id = ok.run_id
      AND r.environment IS NOT DISTINCT FROM :environment
      AND r.status IS NOT DISTINCT FROM 'EXECUTING'
      AND r.attempt_number = ok.attempt_number AND r.lease_owner = ok.worker_id
    RETURNING r.id
), freed AS (
    SELECT set_config('shipyard.freed', CAST((SELECT count(*) FROM suspended) AS text), true)
)
SELECT id FROM suspended
UNION ALL SELECT NULL FROM freed;

-- name: waitpoint_get_many
-- waitpoint_get for many ids in one statement (waitpoint_reads: a batch of runs reaching their
-- durable calls together); each found row once, matched to its asks by id.
SELECT id, environment, kind, status, completes_at, timeout_at, idempotency_key,
    idempotency_key_expires_at, tags, output, output_is_error, target_id, created_at,
    completed_at
FROM waitpoints
WHERE environment IS NOT DISTINCT FROM :environment
  AND id = ANY (ARRAY(SELECT value FROM json_array_elements_text(CAST(:ids AS json))));

-- name: waitpoint_recorded_many
-- waitpoint_recorded for many (run, attempt, seq) in one statement; ``ord`` is the ask's
-- position: primary-key probes of run_waitpoints, then of waitpoints (see run_suspend_pending:
-- a join with "w.environment = ..." was planned as a scan of every waitpoint of the environment).
WITH i AS MATERIALIZED (
    SELECT * FROM json_to_recordset(CAST(:input AS json)) AS i(
        ord bigint, run_id text, attempt_number bigint, seq bigint
    )
), rw AS MATERIALIZED (
    SELECT i.ord, rw.call, rw.waitpoint_id FROM run_waitpoints rw JOIN i
      ON rw.run_id = i.run_id AND rw.attempt_number = i.attempt_number AND rw.seq = i.seq
    WHERE rw.run_id = ANY (ARRAY(SELECT run_id FROM i))
)
SELECT rw.ord, rw.call, w.id, w.environment, w.kind, w.status, w.completes_at, w.timeout_at,
    w.idempotency_key, w.idempotency_key_expires_at, w.tags, w.output, w.output_is_error,
    w.target_id, w.created_at, w.completed_at
FROM rw JOIN waitpoints w ON w.id = rw.waitpoint_id
WHERE w.id = ANY (ARRAY(SELECT waitpoint_id FROM rw))
  AND w.environment IS NOT DISTINCT FROM :environment;

-- name: waitpoint_insert_many
-- New waitpoints (no idempotency keys) from one JSON array, in one statement; their ids back.
INSERT INTO waitpoints (
    id, environment, kind, status, completes_at, timeout_at, idempotency_key,
    idempotency_key_expires_at, tags, target_id, created_at
)
SELECT i.id, i.environment, i.kind, 'PENDING', i.completes_at, i.timeout_at, NULL, NULL,
       i.tags, i.target_id, i.now
FROM json_to_recordset(CAST(:input AS json)) AS i(
    id text, environment text, kind text, completes_at bigint, timeout_at bigint, tags text,
    target_id text, now bigint
)
ORDER BY i.id
ON CONFLICT DO NOTHING
RETURNING id, environment, kind, status, completes_at, timeout_at, idempotency_key,
    idempotency_key_expires_at, tags, output, output_is_error, target_id, created_at,
    completed_at;

-- name: waitpoint_link_many
-- waitpoint_link for every block of a batch (only runs of the environment; a call already
-- linked keeps its waitpoint).
INSERT INTO run_waitpoints (run_id, attempt_number, seq, waitpoint_id, call, created_at)
SELECT i.run_id, i.attempt_number, i.seq, i.waitpoint_id, i.call, i.now
FROM json_to_recordset(CAST(:input AS json)) AS i(
    run_id text, attempt_number bigint, seq bigint, waitpoint_id text, call text, now bigint
)
-- Primary-key probes (see run_suspend_pending; an EXISTS was hashed over every run of the
-- environment).
WHERE i.run_id = ANY (ARRAY(
    SELECT id FROM runs
    WHERE id = ANY (ARRAY(
        SELECT b ->> 'run_id' FROM json_array_elements(CAST(:input AS json)) AS b))
      AND environment IS NOT DISTINCT FROM :environment
))
ON CONFLICT DO NOTHING;

-- name: waitpoint_settle_many
-- waitpoint_settle_one for the waitpoints of a batch of blocks (primary-key probes here and in
-- the next two statements: see run_suspend_pending).
UPDATE waitpoints SET status = 'COMPLETED', completed_at = :now
WHERE environment IS NOT DISTINCT FROM :environment AND status IS NOT DISTINCT FROM 'PENDING'
  AND id = ANY (ARRAY(SELECT value FROM json_array_elements_text(CAST(:ids AS json))))
  AND (
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

-- name: waitpoint_block_get_many
-- waitpoint_block_get for the waitpoints of a batch of blocks (FOR SHARE, in id order).
SELECT id, environment, kind, status, completes_at, timeout_at, idempotency_key,
    idempotency_key_expires_at, tags, output, output_is_error, target_id, created_at,
    completed_at
FROM waitpoints
WHERE environment IS NOT DISTINCT FROM :environment
  AND id = ANY (ARRAY(SELECT value FROM json_array_elements_text(CAST(:ids AS json))))
ORDER BY id
FOR SHARE;

-- name: waitpoint_block_check
-- Fails the batch's transaction (division by zero) if a waitpoint it blocks on does not exist,
-- before anything is linked or suspended: the store reports it as not found, and the engine
-- then blocks each call alone, so only the bad one fails.
SELECT CAST(1 / (CASE WHEN count(*) = :count THEN 1 ELSE 0 END) AS int) FROM waitpoints
WHERE environment IS NOT DISTINCT FROM :environment
  AND id = ANY (ARRAY(SELECT value FROM json_array_elements_text(CAST(:ids AS json))));

-- name: runs_wake_notify
-- runs_wake, and the environment's workers woken in the same statement if any run was
-- (waitpoint_resolve_due in one round trip). The woken CTE is referenced so it runs.
WITH woken AS (
    UPDATE runs SET {{run_wake_set}}
    WHERE environment = :environment AND status = 'WAITING' AND {{run_unblocked}}
    RETURNING id
), {{woken_notified}};

-- name: waitpoint_settle_finished
-- The run and batch waitpoints of runs a finish just ended, settled in the finish's own
-- transaction (waitpoints_by_target finds them; a parent's trigger_and_wait resolves with its
-- child's finish: no resolver transaction). "= ANY (ARRAY(...))" and a scalar subquery
-- instead of NOT EXISTS: runs are found by primary key and batch index whatever the
-- statistics say (IN (subquery) let the planner scan every run: test_claim_plans); no
-- "batch_id IS NOT NULL" (it let the planner walk runs_by_batch whole): a NULL target in the
-- array matches nothing.
UPDATE waitpoints SET status = 'COMPLETED', completed_at = :now
WHERE status IS NOT DISTINCT FROM 'PENDING' AND environment IS NOT DISTINCT FROM :environment
  AND target_id = ANY (ARRAY(
      SELECT value FROM json_array_elements_text(CAST(:ids AS json))
      UNION
      SELECT r.batch_id FROM runs r
      WHERE r.id = ANY (ARRAY(SELECT value FROM json_array_elements_text(CAST(:ids AS json))))))
  AND (
    (kind = 'RUN' AND EXISTS (SELECT 1 FROM runs r WHERE r.id = waitpoints.target_id
                              AND r.status IN ('COMPLETED', 'CANCELED', 'FAILED', 'CRASHED', 'SYSTEM_FAILURE', 'EXPIRED', 'TIMED_OUT')))
    OR (kind = 'BATCH' AND (SELECT 1 FROM runs r WHERE r.batch_id = waitpoints.target_id
                            AND r.status NOT IN ('COMPLETED', 'CANCELED', 'FAILED', 'CRASHED', 'SYSTEM_FAILURE', 'EXPIRED', 'TIMED_OUT') LIMIT 1) IS NULL)
  );

-- name: runs_wake_parents
-- runs_wake for the runs waiting on the waitpoints of the runs a finish just ended (settled by
-- waitpoint_settle_finished, a statement earlier in the same transaction), and NOTIFY if any.
--
-- This statement, runs_wake_parents_quiet, parents_queued_notify and waitpoint_settle_finished
-- run in every finish that ends runs, under the environment's slot lock. They find rows by
-- primary key and waitpoints_by_target only; environment, status and resume state are tested
-- with "IS NOT DISTINCT FROM" (as "=" on these NOT NULL columns, but no index serves it).
-- Written "status = 'QUEUED'", parents_queued_notify read runs_ready_by_group (every queued
-- run) and filtered it by id: 29,800 rows and ~8 ms per finish with 30,000 runs queued, the
-- drain's cost growing with its backlog; the same held for the WAITING runs (runs_waiting)
-- and the pending waitpoints (waitpoints_pending) of runs parked at waits.
WITH woken AS (
    UPDATE runs SET {{run_wake_set}}
    WHERE environment IS NOT DISTINCT FROM :environment AND status IS NOT DISTINCT FROM 'WAITING'
      AND id = ANY (ARRAY(
      SELECT rw.run_id FROM waitpoints w JOIN run_waitpoints rw ON rw.waitpoint_id = w.id
      WHERE w.target_id = ANY (ARRAY(
      SELECT value FROM json_array_elements_text(CAST(:ids AS json))
      UNION
      SELECT r.batch_id FROM runs r
      WHERE r.id = ANY (ARRAY(SELECT value FROM json_array_elements_text(CAST(:ids AS json))))))
        AND w.environment IS NOT DISTINCT FROM :environment
        AND w.status IS NOT DISTINCT FROM 'COMPLETED'))
      AND {{run_unblocked}}
    RETURNING id
), {{woken_notified}};

-- name: runs_wake_parents_quiet
-- runs_wake_parents without its NOTIFY: a claim follows in the same transaction, and
-- parents_queued_notify after it wakes workers only for the parents it left queued.
UPDATE runs SET {{run_wake_set}}
WHERE environment IS NOT DISTINCT FROM :environment AND status IS NOT DISTINCT FROM 'WAITING'
  AND id = ANY (ARRAY(
  SELECT rw.run_id FROM waitpoints w JOIN run_waitpoints rw ON rw.waitpoint_id = w.id
  WHERE w.target_id = ANY (ARRAY(
  SELECT value FROM json_array_elements_text(CAST(:ids AS json))
  UNION
  SELECT r.batch_id FROM runs r
  WHERE r.id = ANY (ARRAY(SELECT value FROM json_array_elements_text(CAST(:ids AS json))))))
    AND w.environment IS NOT DISTINCT FROM :environment
    AND w.status IS NOT DISTINCT FROM 'COMPLETED'))
  AND {{run_unblocked}};

-- name: children_left_notify
-- After the claim in a suspend's transaction: NOTIFY if a child inserted with the blocks is
-- not EXECUTING, i.e. the claim did not take it (another worker's task, no free slot, a
-- limit, a delay), so workers and their schedulers look at commit; nothing when it took them
-- all. By primary key only, as parents_queued_notify.
SELECT pg_notify('shipyard_ready', :environment) WHERE EXISTS (
    SELECT 1 FROM runs
    WHERE id = ANY (ARRAY(SELECT value FROM json_array_elements_text(CAST(:ids AS json))))
      AND environment IS NOT DISTINCT FROM :environment
      AND status IS DISTINCT FROM 'EXECUTING'
);

-- name: parents_queued_notify
-- After runs_wake_parents_quiet and the claim: NOTIFY if a run waiting on the finished runs'
-- waitpoints is still queued (the claim did not take it); nothing when it took them all.
SELECT pg_notify('shipyard_ready', :environment) WHERE EXISTS (
    SELECT 1 FROM runs
    WHERE environment IS NOT DISTINCT FROM :environment
      AND status IS NOT DISTINCT FROM 'QUEUED' AND resume_state IS NOT DISTINCT FROM 'RESUMING'
      AND id = ANY (ARRAY(
      SELECT rw.run_id FROM waitpoints w JOIN run_waitpoints rw ON rw.waitpoint_id = w.id
      WHERE w.target_id = ANY (ARRAY(
      SELECT value FROM json_array_elements_text(CAST(:ids AS json))
      UNION
      SELECT r.batch_id FROM runs r
      WHERE r.id = ANY (ARRAY(SELECT value FROM json_array_elements_text(CAST(:ids AS json))))))
        AND w.environment IS NOT DISTINCT FROM :environment
        AND w.status IS NOT DISTINCT FROM 'COMPLETED'))
);

-- name: runs_wake_waitpoint
-- runs_wake for the runs linked to one waitpoint (:id) that its completion just settled: a
-- token, an input stream's wait. The runs are found through the waitpoint's links and read by
-- primary key ("= ANY (ARRAY(...))", "IS NOT DISTINCT FROM": see runs_wake_parents), so a
-- completion's cost does not grow with the runs waiting (runs_wake re-checks every WAITING
-- run of the environment: ~13 ms per token with 5,000 parked).
UPDATE runs SET {{run_wake_set}}
WHERE id = ANY (ARRAY(SELECT rw.run_id FROM run_waitpoints rw WHERE rw.waitpoint_id = :id))
  AND environment IS NOT DISTINCT FROM :environment AND status IS NOT DISTINCT FROM 'WAITING'
  AND {{run_unblocked}}
RETURNING id;

-- name: runs_wake_waitpoint_notify
-- runs_wake_waitpoint, and the environment's workers woken in the same statement if any run
-- was (a token's completion in one round trip). The woken CTE is referenced so it runs.
WITH woken AS (
    UPDATE runs SET {{run_wake_set}}
    WHERE id = ANY (ARRAY(SELECT rw.run_id FROM run_waitpoints rw WHERE rw.waitpoint_id = :id))
      AND environment IS NOT DISTINCT FROM :environment
      AND status IS NOT DISTINCT FROM 'WAITING'
      AND {{run_unblocked}}
    RETURNING id
), {{woken_notified}};

-- name: runs_wake
-- WAITING → QUEUED (queue position kept) for runs none of whose current waitpoints is pending.
UPDATE runs SET {{run_wake_set}}
WHERE environment = :environment AND status = 'WAITING' AND {{run_unblocked}}
RETURNING id;

-- name: tables_outgrown
-- The engine's growing tables (store/postgres/statistics.py) with at least 1,000 live rows and
-- more than twice the rows their statistics counted (reltuples is -1 before the first ANALYZE).
SELECT s.relname
FROM pg_stat_user_tables s
JOIN pg_class c ON c.oid = s.relid
WHERE s.schemaname = current_schema()
  AND s.relname = ANY(:tables)
  AND s.n_live_tup >= 1000
  AND s.n_live_tup > 2 * GREATEST(c.reltuples, 0);

-- name: releases_dead_rows
-- slot_releases (0018) once it holds :rows dead rows (store/postgres/statistics.py).
SELECT 1 FROM pg_stat_user_tables
WHERE schemaname = current_schema() AND relname = 'slot_releases' AND n_dead_tup >= :rows;

-- name: statistics_lock
-- One worker of an install analyzes at a time (released at the end of its transaction).
SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || ':statistics'));
