-- Where a run's next wake starts checking its links (issue 16, durable waits).
--
-- A WAITING run is woken when none of its current attempt's waitpoint links is pending, and
-- every link it ever made stays (run_waitpoints records its durable calls). So each wake
-- checked every link of the attempt: a parent running trigger_and_wait in a loop checked one
-- more per iteration, O(n²) over the loop (on PostgreSQL a wake averaged 0.43 ms of server
-- time over a 200-iteration loop, 1.86 ms over 1,000). A wake leaves every link it checked settled,
-- and a run's later durable calls link at higher sequence numbers, so the wake records the
-- next one (wait_floor_seq, for the attempt in wait_floor_attempt) and later wakes of that
-- attempt check only the links from there on; a new attempt starts from 0 again.
ALTER TABLE runs ADD COLUMN wait_floor_attempt BIGINT;
ALTER TABLE runs ADD COLUMN wait_floor_seq BIGINT;
