-- Realtime: the change feed readers follow, output streams and input streams.
--
-- Every run's event log now starts with a 'created' event (message: its first status;
-- attributes: the metadata it was created with, if any), so a reader of the feed sees runs
-- appear and can replay their metadata; creating a run is still not a status change. The feed
-- is run_events' created, status, metadata, tag and input events, read by id (SQLite commits
-- one writer at a time, so ids grow in commit order). tx is PostgreSQL's: the transaction that
-- wrote the event (NULL here).
ALTER TABLE run_events ADD COLUMN tx INTEGER;
CREATE INDEX run_events_feed ON run_events (id)
    WHERE kind IN ('created', 'status', 'metadata', 'tag', 'input');

CREATE TRIGGER runs_created_event AFTER INSERT ON runs
BEGIN
    INSERT INTO run_events (run_id, ts, kind, message, attributes)
    VALUES (NEW.id, NEW.created_at, 'created', NEW.status, NULLIF(NEW.metadata, '{}'));
END;

-- An output stream of a run: its next chunk index and its size so far. Appending takes the
-- stream's row first, so indexes are dense and committed in order.
CREATE TABLE streams (
    run_id       TEXT NOT NULL,
    stream_id    TEXT NOT NULL,
    next_index   INTEGER NOT NULL DEFAULT 0,
    total_bytes  INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (run_id, stream_id)
);

CREATE TABLE stream_chunks (
    run_id     TEXT NOT NULL,
    stream_id  TEXT NOT NULL,
    idx        INTEGER NOT NULL,
    data       TEXT NOT NULL,
    ts         INTEGER NOT NULL,
    PRIMARY KEY (run_id, stream_id, idx)
) WITHOUT ROWID;

-- Data sent to a run's input stream, kept until a listener takes it (consumed_at).
CREATE TABLE input_stream_data (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id       TEXT NOT NULL,
    stream_id    TEXT NOT NULL,
    data         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    consumed_at  INTEGER
);
CREATE INDEX input_stream_data_pending ON input_stream_data (run_id, stream_id, id)
    WHERE consumed_at IS NULL;

-- A run suspended on .wait() of an input stream: the token (a MANUAL waitpoint) a send
-- completes.
CREATE TABLE input_stream_waits (
    waitpoint_id  TEXT PRIMARY KEY,
    run_id        TEXT NOT NULL,
    stream_id     TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX input_stream_waits_by_stream ON input_stream_waits (run_id, stream_id);

-- Streams go with their run (retention deletes runs).
CREATE TRIGGER runs_delete_streams AFTER DELETE ON runs
BEGIN
    DELETE FROM stream_chunks WHERE run_id = OLD.id;
    DELETE FROM streams WHERE run_id = OLD.id;
    DELETE FROM input_stream_data WHERE run_id = OLD.id;
    DELETE FROM input_stream_waits WHERE run_id = OLD.id;
END;
