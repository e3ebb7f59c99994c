-- Slot counters without a quadratic join (issue 16, PostgreSQL drain).
--
-- 0010's slot counters joined the statement's transition tables (old_runs, new_runs) on id,
-- three times per statement. PL/pgSQL plans a trigger's statement at its first call in a
-- session, for that call's transition tables, and keeps the plan: in a session whose first
-- status change was one run's, every later claim or finish of 100 runs compared 100 × 100
-- ids per join, inside the transaction that holds the environment's slot row
-- (bench/claim_cycle.py: ~160 → ~120 µs of server CPU per run). 0007's status events keep
-- their join: planned as a hash join (nested loops off for that function), they cost more
-- in a worker's drain than they saved (bench/burndown.py), see docs/benchmarks.md.

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
