-- Every status change of a run appends a 'status' event (message: the new status; ts: the
-- run's updated_at, which every status change sets to the caller's now) in the same
-- transaction, whichever statement made it: a claim, a finish, a cancel and its cascade, the
-- reaper, a wake, a promotion or an expiry, a suspend. The store's code never writes one.
CREATE TRIGGER runs_status_event AFTER UPDATE OF status ON runs
WHEN NEW.status IS NOT OLD.status
BEGIN
    INSERT INTO run_events (run_id, ts, kind, message)
    VALUES (NEW.id, NEW.updated_at, 'status', NEW.status);
END;

-- Tokens are listed newest first (ids sort by creation time), a page at a time.
CREATE INDEX waitpoints_tokens ON waitpoints (environment, id) WHERE kind = 'MANUAL';
