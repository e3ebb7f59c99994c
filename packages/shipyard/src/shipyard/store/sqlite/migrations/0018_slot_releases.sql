-- PostgreSQL's finishes record the slots they free in slot_releases (its 0018), moved into the
-- slot counters by the next claim. SQLite runs one writer at a time, so its finishes change the
-- counters themselves; the table is here, empty, for the queries both backends share
-- (queue_list subtracts what it holds).
CREATE TABLE slot_releases (
    environment      TEXT NOT NULL,
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    queue            TEXT NOT NULL,
    concurrency_key  TEXT NOT NULL,
    released         INTEGER NOT NULL
);
