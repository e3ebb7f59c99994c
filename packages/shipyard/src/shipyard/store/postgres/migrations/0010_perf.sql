-- Slot counters kept per statement, not per row.
--
-- 0003's row-level trigger updated the environment's slot row and the group's row once per
-- run: a claim or a finish of 100 runs wrote 200 versions of two rows in one transaction, each
-- update walking the growing chain of the previous ones. This statement-level trigger sums the
-- changes of the statement per (environment, queue, concurrency key) from its transition
-- tables and applies each sum once: environment rows first, then group rows, each in key
-- order (the lock order every slot-changing statement keeps). A run holds a slot exactly
-- while its status is DEQUEUED or EXECUTING, as before; deletes keep 0003's row trigger.
DROP TRIGGER runs_slots_update ON runs;

CREATE FUNCTION shipyard_slot_changes() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    -- Environments first (lock order); a statement that moved no slot writes nothing.
    INSERT INTO environment_slots AS s (environment, running)
    SELECT d.environment, sum(d.delta)
    FROM (
        SELECT n.environment,
               CASE WHEN n.status IN ('DEQUEUED', 'EXECUTING') THEN 1 ELSE -1 END AS delta
        FROM new_runs n JOIN old_runs o ON o.id = n.id
        WHERE (n.status IN ('DEQUEUED', 'EXECUTING')) <> (o.status IN ('DEQUEUED', 'EXECUTING'))
    ) d
    GROUP BY d.environment
    HAVING sum(d.delta) <> 0
    ORDER BY d.environment
    ON CONFLICT (environment) DO UPDATE SET running = s.running + EXCLUDED.running;
    INSERT INTO concurrency_slots AS s (environment, queue, concurrency_key, running)
    SELECT d.environment, d.queue, d.ck, sum(d.delta)
    FROM (
        -- A slot is taken in the run's new group and given back in its old one.
        SELECT n.environment, n.queue, COALESCE(n.concurrency_key, '') AS ck, 1 AS delta
        FROM new_runs n JOIN old_runs o ON o.id = n.id
        WHERE n.status IN ('DEQUEUED', 'EXECUTING')
          AND o.status NOT IN ('DEQUEUED', 'EXECUTING')
        UNION ALL
        SELECT o.environment, o.queue, COALESCE(o.concurrency_key, ''), -1
        FROM new_runs n JOIN old_runs o ON o.id = n.id
        WHERE o.status IN ('DEQUEUED', 'EXECUTING')
          AND n.status NOT IN ('DEQUEUED', 'EXECUTING')
    ) d
    GROUP BY d.environment, d.queue, d.ck
    HAVING sum(d.delta) <> 0
    ORDER BY d.environment, d.queue, d.ck
    ON CONFLICT (environment, queue, concurrency_key)
    DO UPDATE SET running = s.running + EXCLUDED.running;
    RETURN NULL;
END;
$$;

CREATE TRIGGER runs_slots_update
AFTER UPDATE ON runs
REFERENCING OLD TABLE AS old_runs NEW TABLE AS new_runs
FOR EACH STATEMENT
EXECUTE FUNCTION shipyard_slot_changes();

-- Fewer indexes on the hot table: a status change is not a HOT update, so every index whose
-- predicate the new row matches gets an entry, on every trigger, claim and finish.
-- runs_ready duplicated the claim's runs_ready_by_group (same status, environment first);
-- runs_leased served only the reaper, which now reads runs_owner: both hold just the
-- EXECUTING runs, a few hundred at most.
DROP INDEX runs_ready;
DROP INDEX runs_leased;

-- Retention (run_retention) deletes the runs that finished longest ago, a batch at a time:
-- a range of this index, however many runs the table holds.
CREATE INDEX runs_finished ON runs (environment, finished_at) WHERE finished_at IS NOT NULL;
