-- The resolver's peek (waitpoint_due_exists, every tick on every worker) finds the dates and
-- token timeouts that fell due by probing these, in due order. Through waitpoints_pending
-- (environment, kind) it read every pending token of the environment per tick: 5,000 runs
-- parked at tokens meant 5,000 rows read four times a second per worker (issue 16).
-- Tokens without a timeout are not in waitpoints_timeouts ("timeout_at <= now" implies NOT NULL).
CREATE INDEX waitpoints_dates ON waitpoints (environment, completes_at)
    WHERE status = 'PENDING' AND kind = 'DATETIME';
CREATE INDEX waitpoints_timeouts ON waitpoints (environment, timeout_at)
    WHERE status = 'PENDING' AND kind = 'MANUAL' AND timeout_at IS NOT NULL;
