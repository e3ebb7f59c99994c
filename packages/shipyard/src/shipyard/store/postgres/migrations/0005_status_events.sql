-- Every status change of a run appends a 'status' event (message: the new status; ts: the
-- run's updated_at, which every status change sets to the caller's now) in the same
-- transaction, whichever statement made it: a claim, a finish, a cancel and its cascade, the
-- reaper, a wake, a promotion or an expiry, a suspend. The store's code never writes one.
--
-- A statement-level trigger with transition tables: one call per statement however many
-- runs it changes (a claim of 100 runs is one INSERT … SELECT, not 100 plpgsql calls). It
-- fires at the end of the statement, so events a statement writes itself (an attempt's logs
-- in run_finish_many) get lower ids than the status change's. PostgreSQL allows no column
-- list (UPDATE OF status) with transition tables: the join keeps only changed statuses.
CREATE FUNCTION shipyard_status_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO run_events (run_id, ts, kind, message)
    SELECT n.id, n.updated_at, 'status', n.status
    FROM new_runs n JOIN old_runs o ON o.id = n.id
    WHERE n.status IS DISTINCT FROM o.status
    ORDER BY n.id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER runs_status_events
AFTER UPDATE ON runs
REFERENCING OLD TABLE AS old_runs NEW TABLE AS new_runs
FOR EACH STATEMENT
EXECUTE FUNCTION shipyard_status_events();

-- Tokens are listed newest first (ids sort by creation time), a page at a time.
CREATE INDEX waitpoints_tokens ON waitpoints (environment, id) WHERE kind = 'MANUAL';
