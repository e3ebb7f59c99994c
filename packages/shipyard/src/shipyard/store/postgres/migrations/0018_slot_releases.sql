-- A finish gives its runs' slots back without the environment's slot row (issue 16,
-- two-process drain).
--
-- Every claim and every finish of an environment took its slot row (environment_slots) first
-- and kept it to their commit, WAL flush included, so the finish-and-claim transactions of
-- two workers ran one after the other: in a 10,000-run, two-process drain a third of the time
-- went to waiting there while the cores were a quarter idle. A finish now counts the slots it
-- frees in a row of its own worker here (one per worker and (queue, concurrency key) group,
-- updated in place), and commits without the slot row; the next claim, holding the slot row,
-- moves what the finishes committed into environment_slots and concurrency_slots
-- (slot_releases_fold) before it reads them. A finish that waits for nothing under the slot
-- row cannot be part of a lock cycle with a cancel, a reap or a suspend that holds it.
--
-- released is what the worker's committed finishes freed and no claim has moved yet; a claim
-- skips a row whose finish is still in flight (it holds the row) and moves it next time, so
-- a claim never counts a slot free before the finish that frees it has committed.
CREATE TABLE slot_releases (
    environment      TEXT NOT NULL,
    worker_id        TEXT NOT NULL,
    queue            TEXT NOT NULL,
    concurrency_key  TEXT NOT NULL,
    released         BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (environment, worker_id, queue, concurrency_key)
) WITH (fillfactor = 50);
