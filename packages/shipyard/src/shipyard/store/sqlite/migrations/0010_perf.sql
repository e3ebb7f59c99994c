-- The same two indexes as PostgreSQL's 0010 go (both backends keep one schema): every index
-- whose predicate a row matches costs an entry on each trigger, claim and finish. runs_ready
-- duplicated runs_ready_by_group for the claim; the reaper reads runs_owner, which holds the
-- same EXECUTING runs as runs_leased did. (SQLite's slot triggers stay per row: they update
-- the counter rows in place.)
DROP INDEX runs_ready;
DROP INDEX runs_leased;

-- Retention (run_retention) deletes the runs that finished longest ago, a batch at a time:
-- a range of this index, however many runs the table holds.
CREATE INDEX runs_finished ON runs (environment, finished_at) WHERE finished_at IS NOT NULL;
