-- A claim or a finish writes its own status events and slot changes (issue 16, PostgreSQL
-- drain).
--
-- 0005's status events and 0010/0012's slot counters were two statement triggers on every
-- UPDATE of runs, each a PL/pgSQL call with its own plans over the statement's transition
-- tables: about a third of the database's CPU in a claim → finish cycle of no-op runs
-- (bench/claim_cycle.py, 72 → 48 µs per run with both triggers emptied). The claim and the
-- finish know what they changed — every run they touch goes QUEUED → EXECUTING (one slot
-- taken in its group) or EXECUTING → its result (one slot given back) — and write the same
-- events and counter changes in their own statement (queries.sql: run_claim_limited,
-- run_finish_many), at a fraction of the cost. Every other status change keeps the trigger.
--
-- One trigger instead of two (one call per statement), which does nothing for a statement
-- that says it wrote its own changes: such a statement sets the transaction-local setting
-- shipyard.changes_written to 'on' before it changes a run, and this trigger, at the end of
-- that statement, sets it back to '' and returns. The setting lives only from that statement's
-- first changed run to its end: the next statement that changes runs sees it unset. A
-- statement that set it and changed no run wrote nothing either way.
CREATE FUNCTION shipyard_run_changes() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF current_setting('shipyard.changes_written', true) = 'on' THEN
        PERFORM set_config('shipyard.changes_written', '', true);
        RETURN NULL;
    END IF;
    -- 0012's slot counters: environments first, then groups, each in key order.
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
    -- 0007's status events, and the feed's wake-up.
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

DROP TRIGGER runs_slots_update ON runs;
DROP TRIGGER runs_status_events ON runs;
DROP FUNCTION shipyard_slot_changes();
DROP FUNCTION shipyard_status_events();

CREATE TRIGGER runs_changes
AFTER UPDATE ON runs
REFERENCING OLD TABLE AS old_runs NEW TABLE AS new_runs
FOR EACH STATEMENT
EXECUTE FUNCTION shipyard_run_changes();

-- Workers analyze the growing tables as they outgrow their statistics (store/postgres/
-- statistics.py), in the middle of a drain. No query finds rows by these columns (a few
-- compare them on rows found by id), so their statistics would never be read: without them
-- ANALYZE of runs takes ~90 instead of ~120–200 ms at 20,000 runs, of attempts ~15
-- instead of ~25.
ALTER TABLE runs
    ALTER COLUMN payload SET STATISTICS 0,
    ALTER COLUMN output SET STATISTICS 0,
    ALTER COLUMN error SET STATISTICS 0,
    ALTER COLUMN metadata SET STATISTICS 0,
    ALTER COLUMN tags SET STATISTICS 0;
ALTER TABLE run_events
    ALTER COLUMN message SET STATISTICS 0,
    ALTER COLUMN attributes SET STATISTICS 0;
ALTER TABLE attempts ALTER COLUMN error SET STATISTICS 0;
