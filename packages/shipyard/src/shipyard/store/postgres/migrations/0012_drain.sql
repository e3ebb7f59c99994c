-- The status-change triggers without a quadratic join (issue 16, PostgreSQL drain).
--
-- 0010's slot counters and 0005/0007's status events joined the statement's transition
-- tables (old_runs, new_runs) on id. PostgreSQL estimates one row for a transition table, so
-- it planned a nested loop: a claim or a finish of 100 runs compared 100 × 100 ids, up to
-- four times per statement, inside the transaction that holds the environment's slot row.

-- Slot counters need no join: a run holds a slot exactly while its status is DEQUEUED or
-- EXECUTING, so a statement's change of a counter is (rows holding one after it) − (rows
-- holding one before it), summed per environment or per group. A run that holds a slot
-- before and after in the same group adds +1 and −1: nothing, as 0010's join left it out.
-- Same lock order as 0010: environment rows first, then group rows, each in key order.
CREATE OR REPLACE FUNCTION shipyard_slot_changes() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO environment_slots AS s (environment, running)
    SELECT d.environment, sum(d.delta)
    FROM (
        SELECT n.environment, 1 AS delta FROM new_runs n
        WHERE n.status IN ('DEQUEUED', 'EXECUTING')
        UNION ALL
        SELECT o.environment, -1 FROM old_runs o
        WHERE o.status IN ('DEQUEUED', 'EXECUTING')
    ) d
    GROUP BY d.environment
    HAVING sum(d.delta) <> 0
    ORDER BY d.environment
    ON CONFLICT (environment) DO UPDATE SET running = s.running + EXCLUDED.running;
    INSERT INTO concurrency_slots AS s (environment, queue, concurrency_key, running)
    SELECT d.environment, d.queue, d.ck, sum(d.delta)
    FROM (
        SELECT n.environment, n.queue, COALESCE(n.concurrency_key, '') AS ck, 1 AS delta
        FROM new_runs n
        WHERE n.status IN ('DEQUEUED', 'EXECUTING')
        UNION ALL
        SELECT o.environment, o.queue, COALESCE(o.concurrency_key, ''), -1
        FROM old_runs o
        WHERE o.status IN ('DEQUEUED', 'EXECUTING')
    ) d
    GROUP BY d.environment, d.queue, d.ck
    HAVING sum(d.delta) <> 0
    ORDER BY d.environment, d.queue, d.ck
    ON CONFLICT (environment, queue, concurrency_key)
    DO UPDATE SET running = s.running + EXCLUDED.running;
    RETURN NULL;
END;
$$;

-- Status events need the old status of each row: the join stays, as a hash join (nested
-- loops off for this function's statements only; the transition tables have no index).
CREATE OR REPLACE FUNCTION shipyard_status_events() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT
SET enable_nestloop = off
SET enable_mergejoin = off AS $$
BEGIN
    INSERT INTO run_events (run_id, ts, kind, message)
    SELECT n.id, n.updated_at, 'status', n.status
    FROM new_runs n JOIN old_runs o ON o.id = n.id
    WHERE n.status IS DISTINCT FROM o.status
    ORDER BY n.id;
    IF FOUND THEN
        PERFORM pg_notify('shipyard_feed', '');
    END IF;
    RETURN NULL;
END;
$$;
