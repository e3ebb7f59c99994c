-- A finish gives its runs' slots back without the environment's slot row (issue 16,
-- two-process drain).
--
-- Every claim and every finish of an environment took its slot row (environment_slots) first
-- and kept it to their commit, WAL flush included, so the finish-and-claim transactions of
-- two workers ran one after the other: in a 10,000-run, two-process drain a third of the time
-- went to waiting there while the cores were a quarter idle. A finish now inserts the slots it
-- frees here, one row per (queue, concurrency key) group it freed slots of, and commits
-- without the slot row; whoever takes the slot row next (environment_slot_lock: a claim, a
-- cancel, a reap) deletes the rows committed so far and moves them into environment_slots and
-- concurrency_slots before it reads them. A finish that waits for nothing under the slot row cannot be part of a lock
-- cycle with a cancel, a reap or a suspend that holds it, and inserting locks no row a claim
-- holds: a finish waits for no claim. A claim never sees a finish's rows before it commits,
-- so it never counts a slot free early.
CREATE TABLE slot_releases (
    environment      TEXT NOT NULL,
    id               BIGINT GENERATED ALWAYS AS IDENTITY,
    queue            TEXT NOT NULL,
    concurrency_key  TEXT NOT NULL,
    released         BIGINT NOT NULL,
    PRIMARY KEY (environment, id)
);
